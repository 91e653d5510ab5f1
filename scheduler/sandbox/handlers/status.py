"""Read-only answers: an environment's logs and an operation's status."""

from __future__ import annotations

from typing import Any

from scheduler.sandbox.handlers.base import Handler, Request, Response, missing
from scheduler.sandbox.state import Fleet


def get_logs(fleet: Fleet, request: Request) -> Response:
    env = fleet.environment(request.path_params["env_id"])
    if env is None:
        return missing(request)
    lines = int(request.arg("lines") or 1000)
    text = "\n".join(env.log_lines.get(request.arg("file_name") or "error", [])[-lines:])
    return 200, {"environment": {"container_info": {"logs": text}}}


def get_operation(fleet: Fleet, request: Request) -> Response:
    status, message, data = fleet.operation_status(request.path_params["operation_id"])
    body: dict[str, Any] = {"message": message, "status": status}
    if data is not None:
        body["data"] = data
    return status, body


HANDLERS: dict[str, Handler] = {
    "getLogs": get_logs,
    "getOperationStatus": get_operation,
}
