"""Cache actions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.actions import ActionContext, ActionResult, outcome
from scheduler.domain import Target


def clear_cache(ctx: ActionContext, target: Target, options: Mapping[str, Any]) -> ActionResult:
    """Clear the environment's page cache (POST /sites/tools/clear-cache)."""
    accepted = ctx.client.clear_cache(target.environment_id)
    return outcome(*ctx.wait(accepted))
