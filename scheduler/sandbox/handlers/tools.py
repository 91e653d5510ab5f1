"""Tools on an environment: caches (site, edge, CDN), PHP (restart, version), denied IPs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scheduler.sandbox import rules
from scheduler.sandbox.handlers.base import (
    Handler,
    Request,
    Response,
    accepted,
    env_from,
    missing,
    refused,
)
from scheduler.sandbox.state import Fleet, SandboxEnvironment


def _tool(
    kind: str,
    message: str,
    change: Callable[[SandboxEnvironment, dict[str, Any]], Any] | None = None,
    refuse: Callable[[dict[str, Any]], str | None] | None = None,
) -> Handler:
    def handle(fleet: Fleet, request: Request) -> Response:
        body = request.json()
        env = env_from(fleet, request, body.get("environment_id"))
        if env is None:
            return missing(request)
        # A cache the environment lacks is not found, with Kinsta's one not-found message.
        if kind == "cdn-cache:clear" and (
            env.cdn_cache_id is None or body.get("cdn_cache_id") != env.cdn_cache_id
        ):
            return missing(request)
        if kind == "edgeCache:clear" and env.edge_cache_id is None:
            return missing(request)
        if refuse is not None and (problem := refuse(body)):
            return refused(problem)
        effect = (lambda: change(env, body)) if change is not None else None
        operation = fleet.start_operation(kind, env.id, env, effect)
        return accepted(operation.operation_id, message)

    return handle


def _set_php(env: SandboxEnvironment, body: dict[str, Any]) -> None:
    env.php_version = str(body["php_version"])


def _unsupported_php(body: dict[str, Any]) -> str | None:
    return rules.unsupported_php(body.get("php_version"))


def get_denied_ips(fleet: Fleet, request: Request) -> Response:
    env = env_from(fleet, request, request.arg("environment_id"))
    if env is None:
        return missing(request)
    return 200, {"environment": {"id": env.id, "ip_list": list(env.denied_ips)}}


def update_denied_ips(fleet: Fleet, request: Request) -> Response:
    body = request.json()
    env = env_from(fleet, request, body.get("environment_id"))
    if env is None:
        return missing(request)
    with fleet.lock:
        env.denied_ips = [str(ip) for ip in body["ip_list"]]
    return 200, {"result": None}


HANDLERS: dict[str, Handler] = {
    "clearSiteCache": _tool("cache:clear", "Clearing site cache in progress"),
    "restartPhpEngine": _tool("php:restart", "Restarting PHP in progress"),
    "modifyPhpVersion": _tool(
        "php:modify-version", "Modifying PHP version in progress", _set_php, _unsupported_php
    ),
    "clearSiteEdgeCache": _tool("edgeCache:clear", "Clearing site edge cache in progress"),
    "clearSiteCDNCache": _tool("cdn-cache:clear", "Clearing site CDN cache in progress"),
    "getDeniedIPs": get_denied_ips,
    "updateDeniedIPs": update_denied_ips,
}
