"""On-demand site actions: create a WordPress site, clone one. Both count against Kinsta's
creation limit (the governor's creation bucket)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from scheduler.actions import ActionContext, ActionResult, change
from scheduler.domain import Target, TaskStatus
from scheduler.kinsta.client import OperationAccepted


def _existing(ctx: ActionContext, display_name: str) -> str | None:
    for site in ctx.client.list_sites(ctx.company_id):
        if display_name.casefold() in (site.display_name.casefold(), site.name.casefold()):
            return site.id
    return None


def _change(ctx: ActionContext, send: Callable[[], OperationAccepted], name: str) -> ActionResult:
    """Send the creation; after an uncertain answer, read the site list until the site shows."""
    return change(ctx, send, lambda: _existing(ctx, name) is not None, f"a site named {name!r}")


def _created(
    ctx: ActionContext, display_name: str, result: ActionResult, what: str
) -> ActionResult:
    if result.status is not TaskStatus.SUCCEEDED:
        return result
    site_id = _existing(ctx, display_name)
    return ActionResult(
        TaskStatus.SUCCEEDED,
        f"{what} {display_name!r}" + (f" ({site_id})" if site_id else ""),
        {"site_id": site_id, "display_name": display_name},
    )


def create_site(ctx: ActionContext, target: Target, options: Mapping[str, Any]) -> ActionResult:
    """A new WordPress site in the company; skipped when one by that name exists already."""
    name = str(options["display_name"])
    if _existing(ctx, name):
        return ActionResult(TaskStatus.SKIPPED, f"a site named {name!r} exists already")

    def send() -> OperationAccepted:
        return ctx.client.create_site(
            ctx.company_id,
            name,
            str(options["region"]),
            admin_email=str(options["admin_email"]),
            admin_password=str(options["admin_password"]),
            admin_user=str(options["admin_user"]),
            site_title=str(options.get("site_title") or name),
            wp_language=str(options.get("wp_language") or "en_US"),
            woocommerce=options.get("woocommerce"),
            wordpressseo=options.get("wordpressseo"),
            is_multisite=options.get("is_multisite"),
        )

    return _created(ctx, name, _change(ctx, send, name), "created site")


def clone_site(ctx: ActionContext, target: Target, options: Mapping[str, Any]) -> ActionResult:
    """A new site cloned from this environment; skipped when one by that name exists already."""
    name = str(options["display_name"])
    if _existing(ctx, name):
        return ActionResult(TaskStatus.SKIPPED, f"a site named {name!r} exists already")
    result = _change(
        ctx, lambda: ctx.client.clone_site(ctx.company_id, name, target.environment_id), name
    )
    return _created(ctx, name, result, f"cloned {target.key} into")
