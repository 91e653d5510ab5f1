"""An environment's domains: listed, added, deleted (never the primary one)."""

from __future__ import annotations

from scheduler.sandbox import rules
from scheduler.sandbox.handlers.base import (
    Handler,
    Request,
    Response,
    accepted,
    missing,
    refused,
)
from scheduler.sandbox.state import Fleet, SiteDomain


def get_site_domains(fleet: Fleet, request: Request) -> Response:
    env = fleet.environment(request.path_params["env_id"])
    if env is None:
        return missing(request)
    with fleet.lock:
        domains = [{"id": env.domain_id, "name": env.domain, "uses_cloudflare_dns": True}]
        domains += [
            {"id": d.id, "name": d.name, "uses_cloudflare_dns": True} for d in env.extra_domains
        ]
    return 200, {"environment": {"site_domains": domains}}


def add_site_domain(fleet: Fleet, request: Request) -> Response:
    env = fleet.environment(request.path_params["env_id"])
    if env is None:
        return missing(request)
    name = str(request.json()["domain_name"])
    if problem := rules.invalid_domain(name):
        return refused(problem)
    domain_id = fleet.new_id()
    operation = fleet.start_operation(
        "sites:add-domain",
        env.id,
        env,
        lambda: env.extra_domains.append(SiteDomain(domain_id, name)),
    )
    return accepted(operation.operation_id, "Adding site domain in progress")


def delete_site_domain(fleet: Fleet, request: Request) -> Response:
    env = fleet.environment(request.path_params["env_id"])
    ids = {str(i) for i in request.json().get("domain_ids", [])}
    if env is None or not ids or not ids <= {d.id for d in env.extra_domains}:
        return missing(request)  # the primary domain cannot be removed here

    def effect() -> None:
        env.extra_domains = [d for d in env.extra_domains if d.id not in ids]

    operation = fleet.start_operation("sites:delete-domain", env.id, env, effect)
    return accepted(operation.operation_id, "Deleting site domain in progress")


HANDLERS: dict[str, Handler] = {
    "getSiteDomains": get_site_domains,
    "addSiteDomain": add_site_domain,
    "deleteSiteDomain": delete_site_domain,
}
