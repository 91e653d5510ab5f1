"""The sandbox's endpoint handlers: (fleet, request) -> (status, body), by the spec's operationId.

Bodies and status codes follow ../shared/kinsta-api/openapi.json and REFERENCE.md; the server
checks every response against the spec as well, so a drift shows up as a response violation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scheduler.sandbox.state import Fleet

NOT_FOUND = "Could not find data or the user does not have permissions to retrieve it"
BAD_REQUEST = "Bad request format"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    path_params: dict[str, str]
    query: dict[str, list[str]]
    body: bytes | None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


Response = tuple[int, Any]
Handler = Callable[[Fleet, Request], Response]


def _status(status: int, message: str) -> Response:
    return status, {"message": message, "status": status}


def validate_api_key(fleet: Fleet, request: Request) -> Response:
    return 200, {
        "name": "sandbox-key",
        "expires_at": None,
        "company": fleet.company_id,
        "status": "active",
    }


def get_sites(fleet: Fleet, request: Request) -> Response:
    if request.arg("company") != fleet.company_id:
        return _status(404, NOT_FOUND)
    include = request.arg("include_environments") == "true"
    sites = [site.to_json(include_environments=include) for site in fleet.sites]
    return 200, {"company": {"sites": sites}}


def get_site(fleet: Fleet, request: Request) -> Response:
    site = fleet.site(request.path_params["site_id"])
    if site is None:
        return _status(404, NOT_FOUND)
    environments = [
        {k: v for k, v in env.to_json().items() if k in _SITE_ENV_KEYS} for env in site.environments
    ]
    body = site.to_json(include_environments=False)
    body.pop("siteLabels")
    body.update(company_id=fleet.company_id, environments=environments)
    return 200, {"site": body}


_SITE_ENV_KEYS = {
    "id",
    "name",
    "display_name",
    "is_premium",
    "is_blocked",
    "domains",
    "primaryDomain",
}


def get_site_environments(fleet: Fleet, request: Request) -> Response:
    site = fleet.site(request.path_params["site_id"])
    if site is None:
        return _status(404, NOT_FOUND)
    return 200, {"site": {"environments": [env.to_json() for env in site.environments]}}


def _tool(kind: str, message: str) -> Handler:
    def handle(fleet: Fleet, request: Request) -> Response:
        env = fleet.environment(str((request.json() or {}).get("environment_id")))
        if env is None:
            # The tool endpoints document only 202, 401 and 500.
            return _status(500, "Error occurred while processing your request")
        operation = fleet.start_operation(kind, env)
        return 202, {"operation_id": operation.operation_id, "message": message, "status": 202}

    return handle


def get_operation(fleet: Fleet, request: Request) -> Response:
    status, message = fleet.operation_status(request.path_params["operation_id"])
    return _status(status, message)


HANDLERS: dict[str, Handler] = {
    "validateApiKey": validate_api_key,
    "getSites": get_sites,
    "getSiteById": get_site,
    "getSiteEnvironments": get_site_environments,
    "clearSiteCache": _tool("cache:clear", "Clearing site cache in progress"),
    "restartPhpEngine": _tool("php:restart", "Restarting PHP in progress"),
    "getOperationStatus": get_operation,
}
