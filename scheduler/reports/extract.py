"""What one task says for a client report, read from what its action recorded: the versions
before and after (update_plugins, update_themes), the backup it took (backup, or a safe
update's safety backup: `result.backup`), the verification (`result.verify`), a rollback
(status rolled_back, `result.rolled_back_to`, `result.quarantined`; or a restore_backup task),
the releases held back (`result.held_back`: item -> why) and prune_backups' deletions. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.domain import TaskStatus
from scheduler.reporting import PeriodTask
from scheduler.reports.model import (
    BackupTaken,
    Failure,
    HeldBack,
    Rollback,
    Update,
    Verification,
)

UPDATE_ACTIONS = {"update_plugins": "plugins", "update_themes": "themes"}


def _versions(value: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any]:
    found = (value or {}).get(kind)
    return found if isinstance(found, Mapping) else {}


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def updates_of(task: PeriodTask) -> list[Update]:
    """The items whose version moved (a rolled-back item is back where it was: not listed)."""
    kind = UPDATE_ACTIONS.get(task.action)
    if kind is None:
        return []
    before, after = _versions(task.versions_before, kind), _versions(task.versions_after, kind)
    return [
        Update(
            task.environment,
            kind,
            str(name),
            _text(before.get(name)),
            _text(new),
            task.at,
            task.run_id,
            task.task_id,
        )
        for name, new in sorted(after.items())
        if new is not None and new != before.get(name)
    ]


def backups_of(task: PeriodTask) -> list[BackupTaken]:
    result = task.result or {}
    made = result.get("backup")
    backup_id = made.get("id") if isinstance(made, Mapping) else None
    backup_id = backup_id if isinstance(backup_id, int) else None
    if task.action == "backup" and task.status is TaskStatus.SUCCEEDED:
        reason = "scheduled"
    elif task.action in UPDATE_ACTIONS and isinstance(made, Mapping):
        reason = "before update"
    else:
        return []
    return [BackupTaken(task.environment, task.at, reason, backup_id, task.run_id, task.task_id)]


def pruned_of(task: PeriodTask) -> int:
    deleted = (task.result or {}).get("deleted") if task.action == "prune_backups" else None
    return len(deleted) if isinstance(deleted, list) else 0


def verification_of(task: PeriodTask) -> Verification | None:
    verify = (task.result or {}).get("verify")
    if not isinstance(verify, Mapping):
        return None
    checks = [c for c in verify.get("checks") or () if isinstance(c, Mapping)]
    passed = sum(1 for c in checks if c.get("ok"))
    problems = tuple(str(p) for p in verify.get("problems") or ())
    return Verification(
        task.environment, task.at, bool(verify.get("ok")), passed, len(checks), problems,
        task.run_id, task.task_id,
    )  # fmt: skip


def rollback_of(task: PeriodTask) -> Rollback | None:
    result = task.result or {}
    if task.action == "restore_backup" and task.status is TaskStatus.SUCCEEDED:
        restored = (result.get("backup") or {}).get("id")
        reason = "restored on demand"
    elif task.status is TaskStatus.ROLLED_BACK or "rolled_back_to" in result:
        restored, reason = result.get("rolled_back_to"), task.message or "rolled back"
    else:
        return None
    quarantined = tuple(
        f"{q.get('name')} {q.get('version')}"
        for q in result.get("quarantined") or ()
        if isinstance(q, Mapping)
    )
    restored = restored if isinstance(restored, int) else None
    return Rollback(
        task.environment, task.at, reason, restored, quarantined, task.run_id, task.task_id
    )


def held_of(task: PeriodTask) -> list[HeldBack]:
    kind = UPDATE_ACTIONS.get(task.action)
    held = (task.result or {}).get("held_back")
    if kind is None or not isinstance(held, Mapping):
        return []
    return [
        HeldBack(task.environment, kind, str(name), str(why), task.at)
        for name, why in sorted(held.items())
        if why != "excluded"  # the job's own filter, not a release held back
    ]


def failure_of(task: PeriodTask) -> Failure | None:
    if task.status not in (TaskStatus.FAILED, TaskStatus.INTERRUPTED):
        return None
    message = task.message or task.status.value
    return Failure(task.environment, task.action, task.at, message, task.run_id, task.task_id)
