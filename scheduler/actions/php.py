"""PHP actions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from scheduler.actions import (
    ActionContext,
    ActionResult,
    NoOptions,
    Options,
    Repeat,
    change,
    define,
    outcome,
)
from scheduler.domain import Target, TaskStatus

if TYPE_CHECKING:
    from scheduler.kinsta.models import Environment


class PhpVersionOptions(Options):
    version: str = Field(pattern=r"^\d+\.\d+$", description="for example 8.3")


def restart_php(ctx: ActionContext, target: Target, options: NoOptions) -> ActionResult:
    """Restart the environment's PHP engine (POST /sites/tools/restart-php)."""
    accepted = ctx.client.tools.restart_php(target.environment_id)
    return outcome(*ctx.wait(accepted))


def current_environment(ctx: ActionContext, target: Target) -> Environment | None:
    """The target's environment as Kinsta reports it now."""
    found = ctx.client.environments.list(target.site_id)
    return next((env for env in found if env.id == target.environment_id), None)


def engine_version(env: Environment | None) -> str | None:
    """An environment's PHP version ("php8.3" -> "8.3")."""
    if env is None or env.container_info is None:
        return None
    return (env.container_info.php_engine_version or "").removeprefix("php") or None


def php_version(ctx: ActionContext, target: Target) -> str | None:
    return engine_version(current_environment(ctx, target))


def set_php_version(ctx: ActionContext, target: Target, options: PhpVersionOptions) -> ActionResult:
    """Move the environment to PHP `version` (PUT /sites/tools/modify-php-version); skipped
    when it is already there. After an uncertain answer the version is read back."""
    wanted = options.version
    before = php_version(ctx, target)
    if before == wanted:
        return ActionResult(
            TaskStatus.SKIPPED, f"already on PHP {wanted}", {"php": {"before": before}}
        )
    result = change(
        ctx,
        lambda: ctx.client.tools.set_php_version(target.environment_id, wanted),
        lambda: php_version(ctx, target) == wanted,
        f"PHP {wanted} in place",
    )
    details = {**result.details, "php": {"before": before, "after": wanted}}
    return ActionResult(result.status, result.message, details)


RESTART_PHP = define(
    "restart_php",
    restart_php,
    NoOptions,
    one_operation=True,
    repeat=Repeat.IF_NOT_SENT,
    typical_s=15.0,
)
SET_PHP_VERSION = define(
    "set_php_version", set_php_version, PhpVersionOptions, requests=2.0, typical_s=45.0
)
