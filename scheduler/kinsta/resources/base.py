"""Resource: one group of endpoints, sharing its client's session (one httpx client, one rate
governor, one retry policy). Each group is a small class on KinstaClient (`client.sites`,
`client.backups`, ...), as in stripe-python's services."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from scheduler.kinsta.session import ApiSession, OperationAccepted, read_accepted, read_model

M = TypeVar("M", bound=BaseModel)


class Resource:
    def __init__(self, session: ApiSession) -> None:
        self._session = session

    def _get(self, path: str, model: type[M], *, params: dict[str, str] | None = None) -> M:
        """A read, parsed as `model`."""
        if params is None:
            return read_model(self._session.request("GET", path), model)
        return read_model(self._session.request("GET", path, params=params), model)

    def _start(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> OperationAccepted:
        """An asynchronous action: Kinsta answers with the operation to follow."""
        if body is None:
            return read_accepted(self._session.request(method, path))
        return read_accepted(self._session.request(method, path, json=body))


def flags(**values: Any) -> dict[str, Any]:
    """Optional body fields: only those given."""
    return {k: v for k, v in values.items() if v is not None}
