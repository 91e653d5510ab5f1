"""The company, its sites and their environments: listed, made, cloned, pushed, deleted."""

from __future__ import annotations

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
from scheduler.sandbox.state import Fleet, SandboxSite


def validate_api_key(fleet: Fleet, request: Request) -> Response:
    return 200, {
        "name": "sandbox-key",
        "expires_at": None,
        "company": fleet.company_id,
        "status": "active",
    }


def get_company_users(fleet: Fleet, request: Request) -> Response:
    if request.path_params["id"] != fleet.company_id:
        return missing(request)
    return 200, {"company": {"users": [{"user": dict(u)} for u in fleet.users]}}


def get_available_regions(fleet: Fleet, request: Request) -> Response:
    if request.path_params["id"] != fleet.company_id:
        return missing(request)
    regions = [{"name": name, "region": region} for name, region in rules.REGIONS]
    return 200, {"company": {"available_regions": regions}}


def get_sites(fleet: Fleet, request: Request) -> Response:
    if request.arg("company") != fleet.company_id:
        return missing(request)
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
        return missing(request)
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
        return missing(request)
    return 200, {"site": {"environments": [env.to_json() for env in site.environments]}}


def _create_site(kind: str, message: str) -> Handler:
    def handle(fleet: Fleet, request: Request) -> Response:
        body = request.json()
        if body.get("company") != fleet.company_id:
            return missing(request)
        source = env_from(fleet, request, body.get("source_env_id"))
        if kind == "site:clone" and source is None:
            return missing(request)
        if kind != "site:clone" and (problem := rules.unknown_region(body.get("region"))):
            return refused(problem)
        pending = fleet.new_id()

        def effect() -> dict[str, str]:
            site_id = fleet.add_site(str(body["display_name"]))
            if source is not None:
                new_site = fleet.site(site_id)
                assert new_site is not None
                new_site.environments[0].copy_from(source)
            return {"idSite": site_id}

        operation = fleet.start_operation(kind, pending, None, effect)
        return accepted(operation.operation_id, message)

    return handle


def delete_site(fleet: Fleet, request: Request) -> Response:
    site = fleet.site(request.path_params["site_id"])
    if site is None:
        return missing(request)

    def effect() -> None:
        fleet.sites.remove(site)

    operation = fleet.start_operation("sites:delete", site.id, None, effect)
    return accepted(operation.operation_id, "Deleting site in progress")


# --- environments ---------------------------------------------------------------------------


def _create_environment(kind: str, message: str) -> Handler:
    def handle(fleet: Fleet, request: Request) -> Response:
        site = fleet.site(request.path_params["site_id"])
        body = request.json()
        source = env_from(fleet, request, body.get("source_env_id"))
        if site is None or (kind == "environment:clone" and source is None):
            return missing(request)
        premium = bool(body["is_premium"])
        claim = None if premium else f"standard-staging:{site.id}"

        def effect() -> dict[str, str]:
            return {
                "idEnv": fleet.add_environment(site, str(body["display_name"]), premium, source)
            }

        with fleet.lock:  # the environments there and the ones being made
            if claim is not None and (_has_standard_staging(site) or fleet.claimed(claim)):
                return refused(rules.STANDARD_STAGING_TAKEN)
            operation = fleet.start_operation(kind, site.id, None, effect, claim)
        return accepted(operation.operation_id, message)

    return handle


def _has_standard_staging(site: SandboxSite) -> bool:
    return any(e.name != "live" and not e.is_premium for e in site.environments)


def push_environment(fleet: Fleet, request: Request) -> Response:
    body = request.json()
    source = env_from(fleet, request, body.get("source_env_id"))
    target = env_from(fleet, request, body.get("target_env_id"))
    if source is None or target is None:
        return missing(request)

    def effect() -> None:
        if body.get("push_files", True):
            target.copy_from(source)

    fleet.add_system_backup(target, f"Before push from {source.display_name}")
    operation = fleet.start_operation("environments:push", target.id, target, effect)
    return accepted(operation.operation_id, "Pushing environment in progress")


def delete_environment(fleet: Fleet, request: Request) -> Response:
    env = fleet.environment(request.path_params["env_id"])
    if env is None:
        return missing(request)
    operation = fleet.start_operation(
        "environments:delete", env.id, env, lambda: fleet.delete_environment(env.id)
    )
    return accepted(operation.operation_id, "Deleting environment in progress")


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
}
