"""inventory: a snapshot of an environment (PHP, WordPress, plugins and themes with pending
updates, backups) stored in history for reporting (`sites`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scheduler.actions import ActionContext, ActionResult, NoOptions, Repeat, define
from scheduler.actions import php as php_actions
from scheduler.actions.backups import backup_json
from scheduler.domain import InventorySnapshot, Target, TaskStatus

if TYPE_CHECKING:
    from scheduler.kinsta.models import WpItem


def _items(items: list[WpItem]) -> tuple[dict[str, Any], ...]:
    return tuple(
        {
            "name": i.name,
            "title": i.title,
            "status": i.status,
            "version": i.version,
            "update_version": i.update_version if i.has_update else None,
        }
        for i in sorted(items, key=lambda i: i.name)
    )


def inventory(ctx: ActionContext, target: Target, options: NoOptions) -> ActionResult:
    """Read the environment as it is now (earlier actions of the run may have changed it)."""
    current = php_actions.current_environment(ctx, target)
    php = php_actions.engine_version(current) or target.php_version
    wordpress = (current.wordpress_version if current else None) or target.wordpress_version
    plugins = ctx.client.plugins.list(target.environment_id)
    themes = ctx.client.themes.list(target.environment_id)
    backups = ctx.client.backups.list(target.environment_id)
    for kind, items in (("plugins", plugins), ("themes", themes)):
        ctx.note_available(
            kind, [(i.name, i.update_version) for i in items if i.has_update and i.update_version]
        )
    snapshot = InventorySnapshot(
        site=target.site_name,
        environment=target.environment_name,
        taken_at=ctx.now(),
        php_version=php,
        wordpress_version=wordpress,
        plugins=_items(plugins),
        themes=_items(themes),
        backups=tuple(backup_json(b) for b in sorted(backups, key=lambda b: -b.created_at)),
    )
    ctx.record_inventory(snapshot)
    message = (
        f"PHP {php or '?'}, {len(plugins)} plugin(s), {len(themes)} theme(s), "
        f"{snapshot.pending_updates} update(s) pending, {len(backups)} backup(s)"
    )
    return ActionResult(
        TaskStatus.SUCCEEDED,
        message,
        {"pending_updates": snapshot.pending_updates, "backups": len(backups)},
    )


INVENTORY = define(
    "inventory",
    inventory,
    NoOptions,
    mutating=False,
    repeat=Repeat.ALWAYS,
    requests=4.0,  # the environment, its plugins, themes and backups
    operations=0.0,
    typical_s=2.0,
)
