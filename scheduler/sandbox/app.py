"""The sandbox's endpoint handlers: (fleet, request) -> (status, body), by the spec's operationId.

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

from scheduler.sandbox import rules
from scheduler.sandbox.state import Fleet, SandboxEnvironment, SandboxSite, SiteDomain, _uuid

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


def _status(status: int, message: str) -> Response:
    return status, {"message": message, "status": status}


def _missing(request: Request) -> Response:
    for status, message in ((404, NOT_FOUND), (400, BAD_REQUEST)):
        if status in request.documented:
            return _status(status, message)
    return _status(500, SERVER_ERROR)


def _refused(message: str) -> Response:
    """Kinsta refuses the request as it stands (rules.py)."""
    return _status(400, message)


def _accepted(operation_id: str, message: str) -> Response:
    return 202, {"operation_id": operation_id, "message": message, "status": 202}


def _env_from(fleet: Fleet, request: Request, value: Any) -> SandboxEnvironment | None:
    return fleet.environment(str(value)) if value else None


# --- company, sites -------------------------------------------------------------------------


def validate_api_key(fleet: Fleet, request: Request) -> Response:
    return 200, {
        "name": "sandbox-key",
        "expires_at": None,
        "company": fleet.company_id,
        "status": "active",
    }


def get_company_users(fleet: Fleet, request: Request) -> Response:
    if request.path_params["id"] != fleet.company_id:
        return _missing(request)
    return 200, {"company": {"users": [{"user": dict(u)} for u in fleet.users]}}


def get_available_regions(fleet: Fleet, request: Request) -> Response:
    if request.path_params["id"] != fleet.company_id:
        return _missing(request)
    regions = [{"name": name, "region": region} for name, region in rules.REGIONS]
    return 200, {"company": {"available_regions": regions}}


def get_sites(fleet: Fleet, request: Request) -> Response:
    if request.arg("company") != fleet.company_id:
        return _missing(request)
    include = request.arg("include_environments") == "true"
    with fleet.lock:
        sites = [site.to_json(include_environments=include) for site in fleet.sites]
    return 200, {"company": {"sites": sites}}


_SITE_ENV_KEYS = {
    "id",
    "name",
    "display_name",
    "is_premium",
    "is_blocked",
    "domains",
    "primaryDomain",
}


def get_site(fleet: Fleet, request: Request) -> Response:
    site = fleet.site(request.path_params["site_id"])
    if site is None:
        return _missing(request)
    environments = [
        {k: v for k, v in e.to_json().items() if k in _SITE_ENV_KEYS} for e in site.environments
    ]
    body = site.to_json(include_environments=False)
    body.pop("siteLabels")
    body.update(company_id=fleet.company_id, environments=environments)
    return 200, {"site": body}


def get_site_environments(fleet: Fleet, request: Request) -> Response:
    site = fleet.site(request.path_params["site_id"])
    if site is None:
        return _missing(request)
    return 200, {"site": {"environments": [env.to_json() for env in site.environments]}}


def _create_site(kind: str, message: str) -> Handler:
    def handle(fleet: Fleet, request: Request) -> Response:
        body = request.json()
        if body.get("company") != fleet.company_id:
            return _missing(request)
        source = _env_from(fleet, request, body.get("source_env_id"))
        if kind == "site:clone" and source is None:
            return _missing(request)
        if kind != "site:clone" and (problem := rules.unknown_region(body.get("region"))):
            return _refused(problem)
        pending = _uuid(fleet._rng)

        def effect() -> dict[str, str]:
            site_id = fleet.add_site(str(body["display_name"]))
            if source is not None:
                new_site = fleet.site(site_id)
                assert new_site is not None
                new_site.environments[0].copy_from(source)
            return {"idSite": site_id}

        operation = fleet.start_operation(kind, pending, None, effect)
        return _accepted(operation.operation_id, message)

    return handle


def delete_site(fleet: Fleet, request: Request) -> Response:
    site = fleet.site(request.path_params["site_id"])
    if site is None:
        return _missing(request)

    def effect() -> None:
        fleet.sites.remove(site)

    operation = fleet.start_operation("sites:delete", site.id, None, effect)
    return _accepted(operation.operation_id, "Deleting site in progress")


# --- environments ---------------------------------------------------------------------------


def _create_environment(kind: str, message: str) -> Handler:
    def handle(fleet: Fleet, request: Request) -> Response:
        site = fleet.site(request.path_params["site_id"])
        body = request.json()
        source = _env_from(fleet, request, body.get("source_env_id"))
        if site is None or (kind == "environment:clone" and source is None):
            return _missing(request)
        premium = bool(body["is_premium"])
        claim = None if premium else f"standard-staging:{site.id}"

        def effect() -> dict[str, str]:
            return {
                "idEnv": fleet.add_environment(site, str(body["display_name"]), premium, source)
            }

        with fleet.lock:  # the environments there and the ones being made
            if claim is not None and (_has_standard_staging(site) or fleet.claimed(claim)):
                return _refused(rules.STANDARD_STAGING_TAKEN)
            operation = fleet.start_operation(kind, site.id, None, effect, claim)
        return _accepted(operation.operation_id, message)

    return handle


def _has_standard_staging(site: SandboxSite) -> bool:
    return any(e.name != "live" and not e.is_premium for e in site.environments)


def push_environment(fleet: Fleet, request: Request) -> Response:
    body = request.json()
    source = _env_from(fleet, request, body.get("source_env_id"))
    target = _env_from(fleet, request, body.get("target_env_id"))
    if source is None or target is None:
        return _missing(request)

    def effect() -> None:
        if body.get("push_files", True):
            target.copy_from(source)

    fleet.add_system_backup(target, f"Before push from {source.display_name}")
    operation = fleet.start_operation("environments:push", target.id, target, effect)
    return _accepted(operation.operation_id, "Pushing environment in progress")


def delete_environment(fleet: Fleet, request: Request) -> Response:
    env = fleet.environment(request.path_params["env_id"])
    if env is None:
        return _missing(request)
    operation = fleet.start_operation(
        "environments:delete", env.id, env, lambda: fleet.delete_environment(env.id)
    )
    return _accepted(operation.operation_id, "Deleting environment in progress")


# --- tools, edge and CDN --------------------------------------------------------------------


def _tool(
    kind: str,
    message: str,
    change: Callable[[SandboxEnvironment, dict[str, Any]], Any] | None = None,
    refuse: Callable[[dict[str, Any]], str | None] | None = None,
) -> Handler:
    def handle(fleet: Fleet, request: Request) -> Response:
        body = request.json()
        env = _env_from(fleet, request, body.get("environment_id"))
        if env is None:
            return _missing(request)
        # A cache the environment lacks is not found, with Kinsta's one not-found message.
        if kind == "cdn-cache:clear" and (
            env.cdn_cache_id is None or body.get("cdn_cache_id") != env.cdn_cache_id
        ):
            return _missing(request)
        if kind == "edgeCache:clear" and env.edge_cache_id is None:
            return _missing(request)
        if refuse is not None and (problem := refuse(body)):
            return _refused(problem)
        effect = (lambda: change(env, body)) if change is not None else None
        operation = fleet.start_operation(kind, env.id, env, effect)
        return _accepted(operation.operation_id, message)

    return handle


def _set_php(env: SandboxEnvironment, body: dict[str, Any]) -> None:
    env.php_version = str(body["php_version"])


def _unsupported_php(body: dict[str, Any]) -> str | None:
    return rules.unsupported_php(body.get("php_version"))


def get_denied_ips(fleet: Fleet, request: Request) -> Response:
    env = _env_from(fleet, request, request.arg("environment_id"))
    if env is None:
        return _missing(request)
    return 200, {"environment": {"id": env.id, "ip_list": list(env.denied_ips)}}


def update_denied_ips(fleet: Fleet, request: Request) -> Response:
    body = request.json()
    env = _env_from(fleet, request, body.get("environment_id"))
    if env is None:
        return _missing(request)
    with fleet.lock:
        env.denied_ips = [str(ip) for ip in body["ip_list"]]
    return 200, {"result": None}


# --- plugins and themes ---------------------------------------------------------------------


def _list_items(kind: str) -> Handler:
    def handle(fleet: Fleet, request: Request) -> Response:
        env = fleet.environment(request.path_params["env_id"])
        if env is None:
            return _missing(request)
        with fleet.lock:
            items = getattr(env, kind)
            data = [item.to_json() for item in items.values()]
        key = "wp_plugins" if kind == "plugins" else "wp_themes"
        return 200, {
            "environment": {
                "id": env.id,
                "container_info": {"id": env.container_id, key: {"data": data}},
            }
        }

    return handle


def _update_item(kind: str) -> Handler:
    singular = "plugin" if kind == "plugins" else "theme"

    def handle(fleet: Fleet, request: Request) -> Response:
        env = fleet.environment(request.path_params["env_id"])
        body = request.json()
        items = getattr(env, kind) if env else {}
        if env is None or body.get("name") not in items:
            return _missing(request)
        item = items[body["name"]]
        version = str(body["update_version"])

        def effect() -> None:
            if item.version != version:
                item.version = version
                fleet.item_updated(env, item.name)

        operation = fleet.start_operation(f"wp-{singular}:update", env.id, env, effect)
        return _accepted(operation.operation_id, f"Updating WordPress {singular} in progress")

    return handle


def _bulk_update(kind: str) -> Handler:
    singular = "plugin" if kind == "plugins" else "theme"

    def handle(fleet: Fleet, request: Request) -> Response:
        env = fleet.environment(request.path_params["env_id"])
        names = [str(entry.get("name")) for entry in request.json().get(kind, [])]
        items = getattr(env, kind) if env else {}
        if env is None or not names or any(n not in items for n in names):
            return _missing(request)

        def effect() -> None:
            for name in names:
                if items[name].version != items[name].latest:
                    items[name].version = items[name].latest
                    fleet.item_updated(env, name)

        operation = fleet.start_operation(f"wp-{kind}:bulk-update", env.id, env, effect)
        # Documented as HTTP 200 with a body status of 202 (REFERENCE.md 3.6).
        return 200, {
            "operation_id": operation.operation_id,
            "message": f"Bulk-updating WordPress {singular}s in progress",
            "status": 202,
        }

    return handle


# --- domains --------------------------------------------------------------------------------


def get_site_domains(fleet: Fleet, request: Request) -> Response:
    env = fleet.environment(request.path_params["env_id"])
    if env is None:
        return _missing(request)
    with fleet.lock:
        domains = [{"id": env.domain_id, "name": env.domain, "uses_cloudflare_dns": True}]
        domains += [
            {"id": d.id, "name": d.name, "uses_cloudflare_dns": True} for d in env.extra_domains
        ]
    return 200, {"environment": {"site_domains": domains}}


def add_site_domain(fleet: Fleet, request: Request) -> Response:
    env = fleet.environment(request.path_params["env_id"])
    if env is None:
        return _missing(request)
    name = str(request.json()["domain_name"])
    if problem := rules.invalid_domain(name):
        return _refused(problem)
    domain_id = _uuid(fleet._rng)
    operation = fleet.start_operation(
        "sites:add-domain",
        env.id,
        env,
        lambda: env.extra_domains.append(SiteDomain(domain_id, name)),
    )
    return _accepted(operation.operation_id, "Adding site domain in progress")


def delete_site_domain(fleet: Fleet, request: Request) -> Response:
    env = fleet.environment(request.path_params["env_id"])
    ids = {str(i) for i in request.json().get("domain_ids", [])}
    if env is None or not ids or not ids <= {d.id for d in env.extra_domains}:
        return _missing(request)  # the primary domain cannot be removed here

    def effect() -> None:
        env.extra_domains = [d for d in env.extra_domains if d.id not in ids]

    operation = fleet.start_operation("sites:delete-domain", env.id, env, effect)
    return _accepted(operation.operation_id, "Deleting site domain in progress")


# --- backups --------------------------------------------------------------------------------


def get_backups(fleet: Fleet, request: Request) -> Response:
    env = fleet.environment(request.path_params["env_id"])
    if env is None:
        return _missing(request)
    with fleet.lock:
        backups = [b.to_json() for b in env.backups]
    return 200, {"environment": {"display_name": env.display_name, "backups": backups}}


def get_downloadable_backups(fleet: Fleet, request: Request) -> Response:
    env = fleet.environment(request.path_params["env_id"])
    if env is None:
        return _missing(request)
    return 200, {"environment": {"display_name": env.display_name, "downloadable_backups": []}}


def add_manual_backup(fleet: Fleet, request: Request) -> Response:
    env = fleet.environment(request.path_params["env_id"])
    if env is None:
        return _missing(request)
    tag = str(request.json().get("tag", ""))
    claim = f"manual-backup:{env.id}"
    with fleet.lock:  # count the ones kept and the ones being taken, and take one, at once
        taken = sum(1 for b in env.backups if b.type == "manual") + fleet.claimed(claim)
        if problem := rules.too_many_backups(taken):
            return _refused(problem)
        operation = fleet.start_operation(
            "backups:add-manual", env.id, env, lambda: fleet.add_manual_backup(env, tag), claim
        )
    return _accepted(operation.operation_id, "Adding a manual backup to environment in progress")


def restore_backup(fleet: Fleet, request: Request) -> Response:
    target = fleet.environment(request.path_params["target_env_id"])
    body = request.json()
    found = fleet.backup(int(body.get("backup_id", 0)))
    users = {u["id"] for u in fleet.users}
    if target is None or found is None or body.get("notified_user_id") not in users:
        return _missing(request)
    _, backup = found
    fleet.add_system_backup(target, f"Before restoring backup {backup.id}")
    operation = fleet.start_operation(
        "backups:restore", target.id, target, lambda: target.restore(backup)
    )
    return _accepted(operation.operation_id, "Restoring a backup to environment in progress")


def remove_backup(fleet: Fleet, request: Request) -> Response:
    backup_id = request.path_params["backup_id"]
    found = fleet.backup(int(backup_id)) if backup_id.isdigit() else None
    if found is None:
        return _missing(request)
    env, backup = found
    operation = fleet.start_operation(
        "backups:remove", env.id, env, lambda: env.backups.remove(backup)
    )
    return _accepted(
        operation.operation_id,
        "Removing a backup in progress. Use the operation_id to check the status.",
    )


# --- logs and operations --------------------------------------------------------------------


def get_logs(fleet: Fleet, request: Request) -> Response:
    env = fleet.environment(request.path_params["env_id"])
    if env is None:
        return _missing(request)
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
    "validateApiKey": validate_api_key,
    "getCompanyUsers": get_company_users,
    "getAvailableRegions": get_available_regions,
    "getSites": get_sites,
    "getSiteById": get_site,
    "addWordPressSite": _create_site("sites:add", "Adding site in progress"),
    "cloneWordPressSite": _create_site("site:clone", "Cloning site in progress"),
    "addPlainWordPressSite": _create_site("sites:add-plain", "Adding plain site in progress"),
    "deleteWordpressSite": delete_site,
    "getSiteEnvironments": get_site_environments,
    "addWordPressEnvironment": _create_environment(
        "environment:add", "Adding environment in progress"
    ),
    "cloneWordPressEnvironment": _create_environment(
        "environment:clone", "Cloning environment in progress"
    ),
    "addPlainEnvironment": _create_environment(
        "environment:add-plain", "Creating plain environment in progress"
    ),
    "pushWordPressEnvironment": push_environment,
    "deleteWordpressEnvironment": delete_environment,
    "clearSiteCache": _tool("cache:clear", "Clearing site cache in progress"),
    "restartPhpEngine": _tool("php:restart", "Restarting PHP in progress"),
    "modifyPhpVersion": _tool(
        "php:modify-version", "Modifying PHP version in progress", _set_php, _unsupported_php
    ),
    "clearSiteEdgeCache": _tool("edgeCache:clear", "Clearing site edge cache in progress"),
    "clearSiteCDNCache": _tool("cdn-cache:clear", "Clearing site CDN cache in progress"),
    "getDeniedIPs": get_denied_ips,
    "updateDeniedIPs": update_denied_ips,
    "getPlugins": _list_items("plugins"),
    "getThemes": _list_items("themes"),
    "updatePlugin": _update_item("plugins"),
    "updateTheme": _update_item("themes"),
    "bulkUpdatePlugins": _bulk_update("plugins"),
    "bulkUpdateThemes": _bulk_update("themes"),
    "getSiteDomains": get_site_domains,
    "addSiteDomain": add_site_domain,
    "deleteSiteDomain": delete_site_domain,
    "getBackups": get_backups,
    "getDownloadableBackups": get_downloadable_backups,
    "addManualBackup": add_manual_backup,
    "restoreBackup": restore_backup,
    "removeBackup": remove_backup,
    "getLogs": get_logs,
    "getOperationStatus": get_operation,
}
