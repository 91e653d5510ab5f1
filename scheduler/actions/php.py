"""PHP actions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.actions import ActionContext, ActionResult, outcome
from scheduler.domain import Target


def restart_php(ctx: ActionContext, target: Target, options: Mapping[str, Any]) -> ActionResult:
    """Restart the environment's PHP engine (POST /sites/tools/restart-php)."""
    accepted = ctx.client.restart_php(target.environment_id)
    return outcome(*ctx.wait(accepted))
