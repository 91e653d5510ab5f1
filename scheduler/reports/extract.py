"""What one task says for a client report, read from what its action recorded: the versions
before and after (update_plugins, update_themes), the backup it took (backup, or a safe
update's safety backup: `result.backup`), the verification (`result.verify`), a rollback
(status rolled_back, `result.rolled_back_to`, `result.quarantined`; or a restore_backup task),
the releases held back (`result.held_back`: item -> why) and prune_backups' deletions. Pure.

What was recorded is read defensively: history written by older versions, or an odd answer of
the API, may hold any JSON where a mapping, a list or a version is expected. A value of the
wrong shape counts as absent (a version as unknown), so a report never fails on it."""

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


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _id(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _versions(value: object, kind: str) -> Mapping[str, Any]:
    return _mapping(_mapping(value).get(kind))


def _text(value: object) -> str | None:
    """A version as text; None (unknown) for anything but a string or a number."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value)


def updates_of(task: PeriodTask) -> list[Update]:
    """The items whose version moved (a rolled-back item is back where it was: not listed)."""
    kind = UPDATE_ACTIONS.get(task.action)
    if kind is None:
        return []
    before, after = _versions(task.versions_before, kind), _versions(task.versions_after, kind)
    found = []
    for name, new in sorted(after.items(), key=lambda item: str(item[0])):
        old, now = _text(before.get(name)), _text(new)
        if now is not None and now != old:
            found.append(
                Update(task.environment, kind, str(name), old, now, task.at, task.run_id,
                       task.task_id)
            )  # fmt: skip
    return found


def backups_of(task: PeriodTask) -> list[BackupTaken]:
    made = _mapping(task.result).get("backup")
    backup_id = _id(made.get("id")) if isinstance(made, Mapping) else None
    if task.action == "backup" and task.status is TaskStatus.SUCCEEDED:
        reason = "scheduled"
    elif task.action in UPDATE_ACTIONS and isinstance(made, Mapping):
        reason = "before update"
    else:
        return []
    return [BackupTaken(task.environment, task.at, reason, backup_id, task.run_id, task.task_id)]


def pruned_of(task: PeriodTask) -> int:
    deleted = _mapping(task.result).get("deleted") if task.action == "prune_backups" else None
    return len(deleted) if isinstance(deleted, list) else 0


def verification_of(task: PeriodTask) -> Verification | None:
    verify = _mapping(task.result).get("verify")
    if not isinstance(verify, Mapping):
        return None
    checks = [c for c in _list(verify.get("checks")) if isinstance(c, Mapping)]
    passed = sum(1 for c in checks if c.get("ok") is True)
    problems = tuple(str(p) for p in _list(verify.get("problems")))
    return Verification(
        task.environment, task.at, verify.get("ok") is True, passed, len(checks), problems,
        task.run_id, task.task_id,
    )  # fmt: skip


def rollback_of(task: PeriodTask) -> Rollback | None:
    result = _mapping(task.result)
    if task.action == "restore_backup" and task.status is TaskStatus.SUCCEEDED:
        restored = _mapping(result.get("backup")).get("id")
        reason = "restored on demand"
    elif task.status is TaskStatus.ROLLED_BACK or "rolled_back_to" in result:
        restored, reason = result.get("rolled_back_to"), task.message or "rolled back"
    else:
        return None
    quarantined = tuple(
        f"{q.get('name')} {q.get('version')}"
        for q in _list(result.get("quarantined"))
        if isinstance(q, Mapping)
    )
    return Rollback(
        task.environment, task.at, reason, _id(restored), quarantined, task.run_id, task.task_id
    )


def held_of(task: PeriodTask) -> list[HeldBack]:
    kind = UPDATE_ACTIONS.get(task.action)
    held = _mapping(task.result).get("held_back")
    if kind is None or not isinstance(held, Mapping):
        return []
    return [
        HeldBack(task.environment, kind, str(name), str(why), task.at)
        for name, why in sorted(held.items(), key=lambda item: str(item[0]))
        if why != "excluded"  # the job's own filter, not a release held back
    ]


def failure_of(task: PeriodTask) -> Failure | None:
    if task.status not in (TaskStatus.FAILED, TaskStatus.INTERRUPTED):
        return None
    message = str(task.message or task.status.value)
    return Failure(task.environment, task.action, task.at, message, task.run_id, task.task_id)
