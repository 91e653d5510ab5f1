"""On-demand environment actions: push staging to live, create a staging environment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.actions import ActionContext, ActionResult, change, outcome
from scheduler.domain import Target, TaskStatus
from scheduler.kinsta.models import Environment


def push_to_live(ctx: ActionContext, target: Target, options: Mapping[str, Any]) -> ActionResult:
    """Push this (staging) environment onto the site's live environment. The live environment is
    locked too, so no other job changes it meanwhile."""
    if target.environment_name == "live":
        return ActionResult(
            TaskStatus.FAILED, "push_to_live pushes a staging environment; this one is live"
        )
    environments = ctx.client.get_site_environments(target.site_id)
    live = next((e for e in environments if e.name == "live"), None)
    if live is None:
        return ActionResult(TaskStatus.FAILED, "the site has no live environment")
    with ctx.exclusive(live.id, f"{target.site_name}/live"):
        accepted = ctx.client.push_environment(
            target.site_id,
            target.environment_id,
            live.id,
            push_db=bool(options.get("push_db", True)),
            push_files=bool(options.get("push_files", True)),
            run_search_and_replace=bool(options.get("run_search_and_replace", True)),
            file_list=list(options.get("file_list") or ()) or None,
        )
        result = outcome(*ctx.wait(accepted))
    details = {
        "source": target.environment_name,
        "target": "live",
        "push_db": bool(options.get("push_db", True)),
        "push_files": bool(options.get("push_files", True)),
    }
    message = (
        f"pushed {target.environment_name} to live"
        if result.status is TaskStatus.SUCCEEDED
        else result.message
    )
    return ActionResult(result.status, message, details)


def create_staging(ctx: ActionContext, target: Target, options: Mapping[str, Any]) -> ActionResult:
    """Clone this environment into a new staging environment named `display_name`; skipped
    when the site already has one by that name."""
    name = str(options.get("display_name") or "Staging")
    existing = ctx.client.get_site_environments(target.site_id)
    if any(name.casefold() in (e.display_name.casefold(), e.name.casefold()) for e in existing):
        return ActionResult(TaskStatus.SKIPPED, f"the site already has an environment {name!r}")

    def named(e: Environment) -> bool:
        return name.casefold() in (e.display_name.casefold(), e.name.casefold())

    result = change(
        ctx,
        lambda: ctx.client.clone_environment(
            target.site_id, name, target.environment_id, is_premium=bool(options.get("premium"))
        ),
        lambda: any(named(e) for e in ctx.client.get_site_environments(target.site_id)),
        f"an environment {name!r} on {target.site_name}",
    )
    if result.status is not TaskStatus.SUCCEEDED:
        return result
    created = next(
        (e for e in ctx.client.get_site_environments(target.site_id) if e.display_name == name),
        None,
    )
    details = {"environment_id": created.id if created else None, "display_name": name}
    return ActionResult(
        TaskStatus.SUCCEEDED, f"created {name} from {target.environment_name}", details
    )
