"""Cache actions: page cache, edge cache, CDN cache."""

from __future__ import annotations

from scheduler.actions import ActionContext, ActionResult, NoOptions, Repeat, define, outcome
from scheduler.domain import Target, TaskStatus


def clear_cache(ctx: ActionContext, target: Target, options: NoOptions) -> ActionResult:
    """Clear the environment's page cache (POST /sites/tools/clear-cache)."""
    accepted = ctx.client.tools.clear_cache(target.environment_id)
    return outcome(*ctx.wait(accepted))


def clear_edge_cache(ctx: ActionContext, target: Target, options: NoOptions) -> ActionResult:
    """Clear the environment's edge cache (POST /sites/edge-caching/clear); skipped when the
    environment has no edge cache id (as clear_cdn_cache is without a CDN cache id)."""
    if not target.edge_cache_id:
        return ActionResult(TaskStatus.SKIPPED, "the environment has no edge cache (id_edge_cache)")
    accepted = ctx.client.tools.clear_edge_cache(target.environment_id)
    return outcome(*ctx.wait(accepted))


def clear_cdn_cache(ctx: ActionContext, target: Target, options: NoOptions) -> ActionResult:
    """Clear the environment's CDN cache (POST /sites/cdn/clear-cache); skipped when the
    environment has no CDN cache id."""
    if not target.cdn_cache_id:
        return ActionResult(TaskStatus.SKIPPED, "the environment has no CDN cache (cdn_cache_id)")
    accepted = ctx.client.tools.clear_cdn_cache(target.environment_id, target.cdn_cache_id)
    return outcome(*ctx.wait(accepted))


CLEAR_CACHE = define(
    "clear_cache", clear_cache, NoOptions, one_operation=True, repeat=Repeat.ALWAYS, typical_s=15.0
)
CLEAR_EDGE_CACHE = define(
    "clear_edge_cache",
    clear_edge_cache,
    NoOptions,
    one_operation=True,
    repeat=Repeat.ALWAYS,
    typical_s=12.0,
)
CLEAR_CDN_CACHE = define(
    "clear_cdn_cache",
    clear_cdn_cache,
    NoOptions,
    one_operation=True,
    repeat=Repeat.ALWAYS,
    typical_s=12.0,
)
