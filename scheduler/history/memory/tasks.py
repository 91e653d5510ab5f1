"""TaskLog and EnvironmentLocks in memory, fenced and leased as in SQL."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from scheduler.domain import (
    FINAL_OPERATION_STATES,
    OperationEvent,
    OperationState,
    SiteAction,
    Task,
    TaskStatus,
)
from scheduler.history.memory.state import (
    LockRow,
    MemoryState,
    OperationRow,
    TaskRow,
    aware,
    copied,
)
from scheduler.history.rows import event_json, latest_outcome
from scheduler.ports import UnresolvedOperation


class MemoryTaskLog:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    def start_task(self, task_id: int, now: datetime, *, owner: str | None = None) -> None:
        now = aware(now)
        with self._s.lock:
            task = self._s.task(task_id)
            self._s.check_owner(task.run_id, owner)
            task.status, task.started_at = TaskStatus.RUNNING, now
            task.attempts += 1

    def count_attempt(self, task_id: int) -> None:
        with self._s.lock:
            self._s.task(task_id).attempts += 1

    def finish_task(
        self,
        task_id: int,
        status: TaskStatus,
        now: datetime,
        message: str | None,
        *,
        result: Mapping[str, Any] | None = None,
        versions_before: Mapping[str, Any] | None = None,
        versions_after: Mapping[str, Any] | None = None,
        owner: str | None = None,
    ) -> None:
        now = aware(now)
        with self._s.lock:
            task = self._s.task(task_id)
            self._s.check_owner(task.run_id, owner)
            task.status, task.finished_at, task.message = status, now, message
            if result is not None:
                task.result = copied(dict(result))
            if versions_before is not None:
                task.versions_before = copied(dict(versions_before))
            if versions_after is not None:
                task.versions_after = copied(dict(versions_after))
            self._summarise(task, status, now, message)

    def _summarise(
        self, task: TaskRow, status: TaskStatus, now: datetime, message: str | None
    ) -> None:
        """Keep site_actions at each (site, environment, action)'s latest outcome."""
        latest = latest_outcome(task.run_id, status, now, message) | {"last_status": status}
        key = (task.site, task.environment, task.action)
        current = self._s.site_actions.get(key)
        if current is None:
            self._s.site_actions[key] = SiteAction(*key, **latest)
        elif current.last_finished_at <= now:
            self._s.site_actions[key] = replace(current, **latest)

    def start_operation(
        self,
        task_id: int,
        operation_id: str,
        action: str,
        now: datetime,
        *,
        owner: str | None = None,
    ) -> int:
        now = aware(now)
        event = event_json(OperationEvent(now, OperationState.PENDING, 202, "accepted"))
        with self._s.lock:
            task = self._s.task(task_id)
            self._s.check_owner(task.run_id, owner)
            task.operation_id, task.operation_status = operation_id, OperationState.PENDING.value
            row_id = self._s.next_id("operations")
            self._s.operations[row_id] = OperationRow(
                row_id, task_id, operation_id, action, OperationState.PENDING, now, events=[event]
            )
            return row_id

    def operation_event(
        self, row_id: int, event: OperationEvent, polls: int, *, owner: str | None = None
    ) -> None:
        stored = copied(event_json(event))
        with self._s.lock:
            row = self._s.operation(row_id)
            task = self._s.task(row.task_id)
            self._s.check_owner(task.run_id, owner)
            row.state, row.polls, row.message = event.state, polls, event.message
            row.events = [*row.events, stored]
            if event.state in FINAL_OPERATION_STATES:
                row.finished_at = aware(event.at)
            task.operation_status = event.state.value

    def unresolved_operations(self, run_id: int) -> list[UnresolvedOperation]:
        with self._s.lock:
            tasks = {t.id: t for t in self._s.tasks_of(run_id)}
            everything = list(self._s.operations.values())
            return [
                UnresolvedOperation(
                    task_id=op.task_id,
                    row_id=op.id,
                    operation_id=op.operation_id,
                    action=op.action,
                    started_at=op.started_at,
                    environment_id=tasks[op.task_id].environment_id or None,
                    newer_with_same_id=any(
                        o.operation_id == op.operation_id and o.started_at > op.started_at
                        for o in everything
                    ),
                )
                for op in sorted(everything, key=lambda o: o.id)
                if op.task_id in tasks and op.state not in FINAL_OPERATION_STATES
            ]

    def run_tasks(self, run_id: int) -> list[Task]:
        with self._s.lock:
            ops = sorted(self._s.operations.values(), key=lambda o: o.id)
            return [
                t.domain(tuple(o.domain() for o in ops if o.task_id == t.id))
                for t in self._s.tasks_of(run_id)
            ]


class MemoryEnvironmentLocks:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    def try_lock_environment(
        self,
        environment_id: str,
        holder: str,
        label: str,
        now: datetime,
        lease_s: float,
        *,
        take_from: str | None = None,
    ) -> str | None:
        now = aware(now)
        with self._s.lock:
            current = self._s.locks.get(environment_id)
            if current is not None and not (
                current.holder == holder
                or current.expires_at < now
                or (take_from and current.holder.startswith(take_from))
            ):
                return current.label or "another holder"
            expires = now + timedelta(seconds=lease_s)
            self._s.locks[environment_id] = LockRow(holder, label, now, expires)
            return None

    def renew_locks(self, holders: Iterable[str], now: datetime, lease_s: float) -> set[str]:
        now = aware(now)
        names = set(holders)
        with self._s.lock:
            renewed = set()
            for lock in self._s.locks.values():
                if lock.holder in names and lock.expires_at >= now:
                    lock.expires_at = now + timedelta(seconds=lease_s)
                    renewed.add(lock.holder)
            return renewed

    def unlock_environment(self, environment_id: str, holder: str) -> None:
        with self._s.lock:
            current = self._s.locks.get(environment_id)
            if current is not None and current.holder == holder:
                del self._s.locks[environment_id]

    def held_environments(self, environment_ids: Iterable[str], now: datetime) -> set[str]:
        now = aware(now)
        with self._s.lock:
            return {
                environment_id
                for environment_id in environment_ids
                if (lock := self._s.locks.get(environment_id)) is not None
                and lock.expires_at >= now
            }
