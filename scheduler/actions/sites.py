"""On-demand site actions: create a WordPress site, clone one. Both count against Kinsta's
creation limit (the governor's creation bucket)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import Field

from scheduler.actions import ActionContext, ActionResult, Options, Scope, change, define
from scheduler.domain import Target, TaskStatus

if TYPE_CHECKING:
    from scheduler.kinsta.client import OperationAccepted


class CreateSiteOptions(Options):
    display_name: str = Field(min_length=1, max_length=100)
    region: str = Field(min_length=1, description="a Kinsta region, for example us-central1")
    admin_email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    admin_user: str = Field(min_length=1)
    admin_password: str = Field(min_length=8, description="use ${VAR}, never the plain value")
    site_title: str | None = None
    wp_language: str = "en_US"
    woocommerce: bool | None = None
    wordpressseo: bool | None = None
    is_multisite: bool | None = None


class CloneSiteOptions(Options):
    display_name: str = Field(min_length=1, max_length=100)


def _existing(ctx: ActionContext, display_name: str) -> str | None:
    for site in ctx.client.sites.list(ctx.company_id):
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


def create_site(ctx: ActionContext, target: Target, options: CreateSiteOptions) -> ActionResult:
    """A new WordPress site in the company; skipped when one by that name exists already."""
    name = options.display_name
    if _existing(ctx, name):
        return ActionResult(TaskStatus.SKIPPED, f"a site named {name!r} exists already")

    def send() -> OperationAccepted:
        return ctx.client.sites.create(
            ctx.company_id,
            name,
            options.region,
            admin_email=options.admin_email,
            admin_password=options.admin_password,
            admin_user=options.admin_user,
            site_title=options.site_title or name,
            wp_language=options.wp_language or "en_US",
            woocommerce=options.woocommerce,
            wordpressseo=options.wordpressseo,
            is_multisite=options.is_multisite,
        )

    return _created(ctx, name, _change(ctx, send, name), "created site")


def clone_site(ctx: ActionContext, target: Target, options: CloneSiteOptions) -> ActionResult:
    """A new site cloned from this environment; skipped when one by that name exists already."""
    name = options.display_name
    if _existing(ctx, name):
        return ActionResult(TaskStatus.SKIPPED, f"a site named {name!r} exists already")
    result = _change(
        ctx, lambda: ctx.client.sites.clone(ctx.company_id, name, target.environment_id), name
    )
    return _created(ctx, name, result, f"cloned {target.key} into")


CREATE_SITE = define(
    "create_site",
    create_site,
    CreateSiteOptions,
    scope=Scope.COMPANY,
    on_demand=True,
    one_operation=True,
    requests=3.0,
    typical_s=180.0,
)
CLONE_SITE = define(
    "clone_site",
    clone_site,
    CloneSiteOptions,
    on_demand=True,
    one_operation=True,
    requests=3.0,
    typical_s=240.0,
)
