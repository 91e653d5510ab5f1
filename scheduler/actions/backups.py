"""Backup actions: a manual backup, pruning old manual backups, restoring one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from scheduler.actions import (
    ActionContext,
    ActionResult,
    Cost,
    Options,
    change,
    define,
    outcome,
)
from scheduler.domain import Target, TaskStatus

if TYPE_CHECKING:
    from scheduler.kinsta.models import Backup

DEFAULT_TAG = "kinsta-scheduler"
MANUAL = "manual"
CLOCK_SLACK = timedelta(minutes=5)  # Kinsta's clock against ours when finding the new backup


class BackupOptions(Options):
    tag: str = Field(DEFAULT_TAG, max_length=200)
    find_id: bool = False  # list the backups afterwards to record the new one's id


class PruneBackupsOptions(Options):
    keep: int = Field(ge=0, le=100)


class RestoreBackupOptions(Options):
    backup: Literal["latest_manual", "latest"] | Annotated[int, Field(ge=1, lt=2**63)] = (
        "latest_manual"
    )
    tag: str | None = None


def backup_json(backup: Backup) -> dict[str, Any]:
    return {
        "id": backup.id,
        "type": backup.type,
        "note": backup.note,
        "created_at": created_at(backup).isoformat(),
    }


def created_at(backup: Backup) -> datetime:
    return datetime.fromtimestamp(backup.created_at / 1000, UTC)


def take(
    ctx: ActionContext, target: Target, tag: str, before: frozenset[int] = frozenset()
) -> ActionResult:
    """Take a manual backup and wait for its operation to end. After an uncertain answer the
    backup list is read until a new manual backup with the tag shows up: one created in the
    last minutes (Kinsta's clock may differ from ours) and not among `before`, the ids of such
    backups listed before sending (an earlier backup with the same tag is no proof)."""
    env_id, since = target.environment_id, ctx.now() - CLOCK_SLACK
    return change(
        ctx,
        lambda: ctx.client.backups.create(env_id, tag),
        lambda: any(
            _made(b, tag, since) and b.id not in before for b in ctx.client.backups.list(env_id)
        ),
        f"a new manual backup tagged {tag!r}",
        "backup",
    )


def _made(backup: Backup, tag: str, since: datetime) -> bool:
    return backup.type == MANUAL and (backup.note or "") == tag and created_at(backup) >= since


def create(ctx: ActionContext, target: Target, tag: str) -> tuple[ActionResult, Backup | None]:
    """Take a manual backup and wait for it; (result, the new backup as listed afterwards).
    The recent backups with the tag are listed first, so that neither the read-back after an
    uncertain answer nor the backup returned (the one a safe update restores) can be an
    earlier one with the same tag (a safe plugin update just before a safe theme update)."""
    env_id, since = target.environment_id, ctx.now() - CLOCK_SLACK
    before = frozenset(b.id for b in ctx.client.backups.list(env_id) if _made(b, tag, since))
    result = take(ctx, target, tag, before)
    if result.status is not TaskStatus.SUCCEEDED:
        return result, None
    made = [
        b for b in ctx.client.backups.list(env_id) if _made(b, tag, since) and b.id not in before
    ]
    newest = max(made, key=lambda b: b.created_at, default=None)
    return result, newest


def backup(ctx: ActionContext, target: Target, options: BackupOptions) -> ActionResult:
    """A manual backup (POST .../manual-backups), waited on until its operation ends. Its id is
    looked up only when asked (`find_id: true`): that costs a request per environment, and
    `restore_backup` finds backups by tag anyway."""
    tag = options.tag or DEFAULT_TAG
    if not options.find_id:
        result = take(ctx, target, tag)
        if result.status is not TaskStatus.SUCCEEDED:
            return result
        return _taken(f"backup taken ({tag})", result, {"tag": tag})
    result, made = create(ctx, target, tag)
    if result.status is not TaskStatus.SUCCEEDED:
        return result
    if made is None:
        return _taken(
            f"backup finished, but no manual backup tagged {tag!r} is listed yet",
            result,
            {"tag": tag},
        )
    return _taken(f"backup {made.id} taken ({tag})", result, {"backup": backup_json(made)})


def _taken(message: str, result: ActionResult, details: dict[str, Any]) -> ActionResult:
    """A backup's success; one found by reading back after a lost answer says so."""
    if result.details.get("reconciled"):
        return ActionResult(
            TaskStatus.SUCCEEDED, f"{message}: {result.message}", {**details, **result.details}
        )
    return ActionResult(TaskStatus.SUCCEEDED, message, details)


def prune_backups(ctx: ActionContext, target: Target, options: PruneBackupsOptions) -> ActionResult:
    """Delete manual backups beyond the newest `keep`. Automatic (daily, hourly, system)
    backups are never touched: they are Kinsta's, not ours to manage."""
    keep = options.keep
    manual = sorted(
        (b for b in ctx.client.backups.list(target.environment_id) if b.type == MANUAL),
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
        result = delete(ctx, target, old)
        if result.status is TaskStatus.SUCCEEDED:
            deleted.append(backup_json(old))
        else:
            failures.append(f"{old.id}: {result.message}")
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


def delete(ctx: ActionContext, target: Target, backup: Backup) -> ActionResult:
    """Delete one backup; after an uncertain answer, read the list until it is gone."""
    env_id = target.environment_id
    return change(
        ctx,
        lambda: ctx.client.backups.delete(backup.id),
        lambda: all(b.id != backup.id for b in ctx.client.backups.list(env_id)),
        f"backup {backup.id} gone",
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
    accepted = ctx.client.backups.restore(target.environment_id, chosen.id, ctx.notify_user_id())
    result = outcome(*ctx.wait(accepted, "restore_backup"))
    return ActionResult(
        result.status,
        f"restored backup {chosen.id}" if result.status is TaskStatus.SUCCEEDED else result.message,
        {"backup": backup_json(chosen)},
    )


def restore_backup(
    ctx: ActionContext, target: Target, options: RestoreBackupOptions
) -> ActionResult:
    """Restore one of the environment's backups onto it (on demand)."""
    which, tag = options.backup, options.tag
    chosen = pick(ctx.client.backups.list(target.environment_id), which, tag)
    if chosen is None:
        wanted = f"backup {which}" + (f" tagged {tag!r}" if tag else "")
        return ActionResult(TaskStatus.FAILED, f"no {wanted} on this environment")
    return restore(ctx, target, chosen)


def _backup_cost(options: BackupOptions) -> Cost:
    """The backup; with find_id, the backup list read before and after it."""
    return Cost(3.0 if options.find_id else 1.0, 1.0)


BACKUP = define(
    "backup", backup, BackupOptions, one_operation=True, costs=_backup_cost, typical_s=180.0
)
# The list, and one deletion: a nightly backup makes one more than `keep` each night.
PRUNE_BACKUPS = define(
    "prune_backups", prune_backups, PruneBackupsOptions, requests=2.0, typical_s=15.0
)
RESTORE_BACKUP = define(
    "restore_backup",
    restore_backup,
    RestoreBackupOptions,
    on_demand=True,
    requests=2.0,
    typical_s=120.0,
)
