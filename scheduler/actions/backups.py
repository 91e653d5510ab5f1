"""Backup actions: a manual backup, pruning old manual backups, restoring one."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from scheduler.actions import ActionContext, ActionResult, outcome
from scheduler.domain import OperationState, Target, TaskStatus
from scheduler.kinsta.models import Backup

DEFAULT_TAG = "kinsta-scheduler"
MANUAL = "manual"
CLOCK_SLACK = timedelta(minutes=5)  # Kinsta's clock against ours when finding the new backup


def backup_json(backup: Backup) -> dict[str, Any]:
    return {
        "id": backup.id,
        "type": backup.type,
        "note": backup.note,
        "created_at": created_at(backup).isoformat(),
    }


def created_at(backup: Backup) -> datetime:
    return datetime.fromtimestamp(backup.created_at / 1000, UTC)


def take(ctx: ActionContext, target: Target, tag: str) -> ActionResult:
    """Take a manual backup and wait for its operation to end."""
    return outcome(*ctx.wait(ctx.client.create_backup(target.environment_id, tag), "backup"))


def create(ctx: ActionContext, target: Target, tag: str) -> tuple[ActionResult, Backup | None]:
    """Take a manual backup and wait for it; (result, the new backup as listed afterwards)."""
    started = ctx.now()
    result = take(ctx, target, tag)
    if result.status is not TaskStatus.SUCCEEDED:
        return result, None
    made = [
        b
        for b in ctx.client.list_backups(target.environment_id)
        if b.type == MANUAL and (b.note or "") == tag and created_at(b) >= started - CLOCK_SLACK
    ]
    newest = max(made, key=lambda b: b.created_at, default=None)
    return result, newest


def backup(ctx: ActionContext, target: Target, options: Mapping[str, Any]) -> ActionResult:
    """A manual backup (POST .../manual-backups), waited on until its operation ends. Its id is
    looked up only when asked (`find_id: true`): that costs a request per environment, and
    `restore_backup` finds backups by tag anyway."""
    tag = str(options.get("tag") or DEFAULT_TAG)
    if not options.get("find_id"):
        result = take(ctx, target, tag)
        if result.status is not TaskStatus.SUCCEEDED:
            return result
        return ActionResult(TaskStatus.SUCCEEDED, f"backup taken ({tag})", {"tag": tag})
    result, made = create(ctx, target, tag)
    if result.status is not TaskStatus.SUCCEEDED:
        return result
    if made is None:
        return ActionResult(
            TaskStatus.SUCCEEDED,
            f"backup finished, but no manual backup tagged {tag!r} is listed yet",
            {"tag": tag},
        )
    return ActionResult(
        TaskStatus.SUCCEEDED, f"backup {made.id} taken ({tag})", {"backup": backup_json(made)}
    )


def prune_backups(ctx: ActionContext, target: Target, options: Mapping[str, Any]) -> ActionResult:
    """Delete manual backups beyond the newest `keep`. Automatic (daily, hourly, system)
    backups are never touched: they are Kinsta's, not ours to manage."""
    keep = int(options["keep"])
    manual = sorted(
        (b for b in ctx.client.list_backups(target.environment_id) if b.type == MANUAL),
        key=lambda b: b.created_at,
        reverse=True,
    )
    doomed = manual[keep:]
    if not doomed:
        return ActionResult(
            TaskStatus.SKIPPED,
            f"{len(manual)} manual backup(s), keeping up to {keep}: none to delete",
        )
    deleted, failures = [], []
    for old in doomed:
        state, message = ctx.wait(ctx.client.delete_backup(old.id))
        if state is OperationState.SUCCEEDED:
            deleted.append(backup_json(old))
        else:
            failures.append(f"{old.id}: {message}")
    details = {"kept": [b.id for b in manual[:keep]], "deleted": deleted}
    if failures:
        return ActionResult(
            TaskStatus.FAILED,
            f"deleted {len(deleted)} of {len(doomed)}; failed: {'; '.join(failures)}",
            {**details, "failed": failures},
        )
    return ActionResult(
        TaskStatus.SUCCEEDED, f"deleted {len(deleted)} manual backup(s), kept {keep}", details
    )


def pick(backups: list[Backup], which: str | int, tag: str | None) -> Backup | None:
    """`latest_manual`, `latest` (any type) or a backup id; optionally only with `tag`."""
    if isinstance(which, int) or str(which).isdigit():
        return next((b for b in backups if b.id == int(which)), None)
    pool = [b for b in backups if which != "latest_manual" or b.type == MANUAL]
    if tag is not None:
        pool = [b for b in pool if (b.note or "") == tag]
    return max(pool, key=lambda b: b.created_at, default=None)


def restore(ctx: ActionContext, target: Target, chosen: Backup) -> ActionResult:
    accepted = ctx.client.restore_backup(target.environment_id, chosen.id, ctx.notify_user_id())
    result = outcome(*ctx.wait(accepted, "restore_backup"))
    return ActionResult(
        result.status,
        f"restored backup {chosen.id}" if result.status is TaskStatus.SUCCEEDED else result.message,
        {"backup": backup_json(chosen)},
    )


def restore_backup(ctx: ActionContext, target: Target, options: Mapping[str, Any]) -> ActionResult:
    """Restore one of the environment's backups onto it (on demand)."""
    which, tag = options["backup"], options.get("tag")
    chosen = pick(ctx.client.list_backups(target.environment_id), which, tag)
    if chosen is None:
        wanted = f"backup {which}" + (f" tagged {tag!r}" if tag else "")
        return ActionResult(TaskStatus.FAILED, f"no {wanted} on this environment")
    return restore(ctx, target, chosen)
