"""On-demand environment actions: push staging to live, create a staging environment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from scheduler.actions import ActionContext, ActionResult, Options, Scope, change, define, outcome
from scheduler.domain import Target, TaskStatus

if TYPE_CHECKING:
    from scheduler.kinsta.models import Environment


class PushToLiveOptions(Options):
    push_db: bool = True
    push_files: bool = True
    run_search_and_replace: bool = True
    file_list: tuple[str, ...] = ()


class CreateStagingOptions(Options):
    display_name: str = Field("Staging", min_length=1, max_length=100)
    premium: bool = False


def _staging_only(environment: str) -> str | None:
    if environment != "live":
        return None
    return (
        "push_to_live pushes a staging environment to live: set environment: staging "
        "(or the staging environment's name)"
    )


def push_to_live(ctx: ActionContext, target: Target, options: PushToLiveOptions) -> ActionResult:
    """Push this (staging) environment onto the site's live environment. The live environment is
    locked too, so no other job changes it meanwhile."""
    if target.environment_name == "live":
        return ActionResult(
            TaskStatus.FAILED, "push_to_live pushes a staging environment; this one is live"
        )
    environments = ctx.client.environments.list(target.site_id)
    live = next((e for e in environments if e.name == "live"), None)
    if live is None:
        return ActionResult(TaskStatus.FAILED, "the site has no live environment")
    with ctx.exclusive(live.id, f"{target.site_name}/live"):
        accepted = ctx.client.environments.push(
            target.site_id,
            target.environment_id,
            live.id,
            push_db=options.push_db,
            push_files=options.push_files,
            run_search_and_replace=options.run_search_and_replace,
            file_list=list(options.file_list) or None,
        )
        result = outcome(*ctx.wait(accepted))
    details = {
        "source": target.environment_name,
        "target": "live",
        "push_db": options.push_db,
        "push_files": options.push_files,
    }
    message = (
        f"pushed {target.environment_name} to live"
        if result.status is TaskStatus.SUCCEEDED
        else result.message
    )
    return ActionResult(result.status, message, details)


def create_staging(
    ctx: ActionContext, target: Target, options: CreateStagingOptions
) -> ActionResult:
    """Clone this environment into a new staging environment named `display_name`; skipped
    when the site already has one by that name."""
    name = options.display_name or "Staging"
    existing = ctx.client.environments.list(target.site_id)
    if any(name.casefold() in (e.display_name.casefold(), e.name.casefold()) for e in existing):
        return ActionResult(TaskStatus.SKIPPED, f"the site already has an environment {name!r}")

    def named(e: Environment) -> bool:
        return name.casefold() in (e.display_name.casefold(), e.name.casefold())

    result = change(
        ctx,
        lambda: ctx.client.environments.clone(
            target.site_id, name, target.environment_id, is_premium=options.premium
        ),
        lambda: any(named(e) for e in ctx.client.environments.list(target.site_id)),
        f"an environment {name!r} on {target.site_name}",
    )
    if result.status is not TaskStatus.SUCCEEDED:
        return result
    created = next(
        (e for e in ctx.client.environments.list(target.site_id) if e.display_name == name),
        None,
    )
    details = {"environment_id": created.id if created else None, "display_name": name}
    return ActionResult(
        TaskStatus.SUCCEEDED, f"created {name} from {target.environment_name}", details
    )


PUSH_TO_LIVE = define(
    "push_to_live",
    push_to_live,
    PushToLiveOptions,
    scope=Scope.SITE,
    targets=_staging_only,
    on_demand=True,
    one_operation=True,
    requests=2.0,
    typical_s=120.0,
)
CREATE_STAGING = define(
    "create_staging",
    create_staging,
    CreateStagingOptions,
    scope=Scope.SITE,
    on_demand=True,
    one_operation=True,
    requests=3.0,
    typical_s=180.0,
)
