"""PHP actions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.actions import ActionContext, ActionResult, outcome
from scheduler.domain import Target, TaskStatus
from scheduler.kinsta.models import Environment


def restart_php(ctx: ActionContext, target: Target, options: Mapping[str, Any]) -> ActionResult:
    """Restart the environment's PHP engine (POST /sites/tools/restart-php)."""
    accepted = ctx.client.restart_php(target.environment_id)
    return outcome(*ctx.wait(accepted))


def current_environment(ctx: ActionContext, target: Target) -> Environment | None:
    """The target's environment as Kinsta reports it now."""
    found = ctx.client.get_site_environments(target.site_id)
    return next((env for env in found if env.id == target.environment_id), None)


def engine_version(env: Environment | None) -> str | None:
    """An environment's PHP version ("php8.3" -> "8.3")."""
    if env is None or env.container_info is None:
        return None
    return (env.container_info.php_engine_version or "").removeprefix("php") or None


def php_version(ctx: ActionContext, target: Target) -> str | None:
    return engine_version(current_environment(ctx, target))


def set_php_version(ctx: ActionContext, target: Target, options: Mapping[str, Any]) -> ActionResult:
    """Move the environment to PHP `version` (PUT /sites/tools/modify-php-version); skipped
    when it is already there."""
    wanted = str(options["version"])
    before = php_version(ctx, target)
    if before == wanted:
        return ActionResult(
            TaskStatus.SKIPPED, f"already on PHP {wanted}", {"php": {"before": before}}
        )
    result = outcome(*ctx.wait(ctx.client.set_php_version(target.environment_id, wanted)))
    return ActionResult(result.status, result.message, {"php": {"before": before, "after": wanted}})


def reconcile_php_version(
    ctx: ActionContext, target: Target, options: Mapping[str, Any]
) -> ActionResult:
    """After an uncertain request: did the version change? Read it until it does or the polling
    deadline passes."""
    wanted = str(options["version"])
    if ctx.wait_until(lambda: php_version(ctx, target) == wanted):
        return ActionResult(
            TaskStatus.SUCCEEDED,
            f"the request's answer was lost, but reading back shows PHP {wanted} in place",
            {"php": {"after": wanted}, "reconciled": True},
        )
    return ActionResult(
        TaskStatus.FAILED,
        f"uncertain: the request may have reached Kinsta, but PHP {wanted} is not in place; "
        "not repeated",
        {"reconciled": True},
    )
