"""What every endpoint handler shares: the request it is given and the answers it gives.

Bodies and status codes follow openapi.json and REFERENCE.md; the server checks every response
against the spec too, so a drift shows up as a response violation. A missing resource is
answered with 404 where the operation documents it (or where Kinsta answers it undocumented:
spec.UNDOCUMENTED_STATUSES), else with the error status it does document. What Kinsta refuses
(rules.py) is answered 400 with Kinsta's message shape, {"message", "status"}.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scheduler.sandbox.state import Fleet, SandboxEnvironment

NOT_FOUND = "Could not find data or the user does not have permissions to retrieve it"
BAD_REQUEST = "Bad request format"
SERVER_ERROR = "Error occurred while processing your request"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    path_params: dict[str, str]
    query: dict[str, list[str]]
    body: bytes | None
    documented: frozenset[int] = field(default_factory=frozenset)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else {}

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


Response = tuple[int, Any]
Handler = Callable[[Fleet, Request], Response]


def error(status: int, message: str) -> Response:
    return status, {"message": message, "status": status}


def missing(request: Request) -> Response:
    for status, message in ((404, NOT_FOUND), (400, BAD_REQUEST)):
        if status in request.documented:
            return error(status, message)
    return error(500, SERVER_ERROR)


def refused(message: str) -> Response:
    """Kinsta refuses the request as it stands (rules.py)."""
    return error(400, message)


def accepted(operation_id: str, message: str) -> Response:
    return 202, {"operation_id": operation_id, "message": message, "status": 202}


def env_from(fleet: Fleet, request: Request, value: Any) -> SandboxEnvironment | None:
    return fleet.environment(str(value)) if value else None
