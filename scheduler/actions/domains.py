"""On-demand domain actions: add a domain to an environment, remove one."""

from __future__ import annotations

from pydantic import Field

from scheduler.actions import ActionContext, ActionResult, Options, change, define
from scheduler.domain import Target, TaskStatus


class DomainOptions(Options):
    domain: str = Field(pattern=r"^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
    wildcardless: bool | None = None


def add_domain(ctx: ActionContext, target: Target, options: DomainOptions) -> ActionResult:
    """Add `domain`; skipped when the environment has it already."""
    name = options.domain.casefold()
    if any(d.name.casefold() == name for d in ctx.client.domains.list(target.environment_id)):
        return ActionResult(TaskStatus.SKIPPED, f"{name} is already on {target.key}")
    env_id = target.environment_id
    result = change(
        ctx,
        lambda: ctx.client.domains.add(env_id, name, is_wildcardless=options.wildcardless),
        lambda: any(d.name.casefold() == name for d in ctx.client.domains.list(env_id)),
        f"{name} on {target.key}",
    )
    message = f"added {name}" if result.status is TaskStatus.SUCCEEDED else result.message
    return ActionResult(result.status, message, {"domain": name})


def remove_domain(ctx: ActionContext, target: Target, options: DomainOptions) -> ActionResult:
    """Remove `domain`; skipped when it is not there; never the primary domain."""
    name = options.domain.casefold()
    if target.primary_domain and target.primary_domain.casefold() == name:
        return ActionResult(TaskStatus.FAILED, f"{name} is the primary domain; not removed")
    found = [d for d in ctx.client.domains.list(target.environment_id) if d.name.casefold() == name]
    if not found:
        return ActionResult(TaskStatus.SKIPPED, f"{name} is not on {target.key}")
    env_id, domain_id = target.environment_id, found[0].id
    result = change(
        ctx,
        lambda: ctx.client.domains.remove(env_id, [domain_id]),
        lambda: all(d.id != domain_id for d in ctx.client.domains.list(env_id)),
        f"{name} gone from {target.key}",
    )
    message = f"removed {name}" if result.status is TaskStatus.SUCCEEDED else result.message
    return ActionResult(result.status, message, {"domain": name})


ADD_DOMAIN = define(
    "add_domain",
    add_domain,
    DomainOptions,
    on_demand=True,
    one_operation=True,
    requests=2.0,
    typical_s=20.0,
)
REMOVE_DOMAIN = define(
    "remove_domain",
    remove_domain,
    DomainOptions,
    on_demand=True,
    one_operation=True,
    requests=2.0,
    typical_s=15.0,
)
