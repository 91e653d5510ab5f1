"""The in-memory store's tables: plain rows under one lock, shared by every port. What the SQL
store's constraints guarantee (one claim per slot, owner fencing, aware UTC times, JSON copies)
is done here by hand, so that both pass the same contract suite."""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from scheduler.domain import (
    DaemonEvent,
    GovernorEvent,
    InventorySnapshot,
    NotificationRecord,
    OperationRecord,
    OperationState,
    Run,
    RunStatus,
    RunTrigger,
    SiteAction,
    Task,
    TaskStatus,
)
from scheduler.errors import OwnershipLost, StoreError
from scheduler.history.rows import operation_from, run_from, task_from, utc
from scheduler.pauses import JobPause
from scheduler.ports import QuarantineEntry
from scheduler.rollout import WaveRecord

J = TypeVar("J")


def aware(value: datetime) -> datetime:
    """As the SQL store takes times: aware only, kept in UTC."""
    if value.tzinfo is None:
        raise StoreError("history database error: naive datetime given to the history store")
    return utc(value)


def maybe(value: datetime | None) -> datetime | None:
    return None if value is None else aware(value)


def copied(value: J) -> J:
    """What a JSON column gives back: a fresh copy, tuples as lists."""
    result: J = json.loads(json.dumps(value))
    return result


@dataclass
class RunRow:
    id: int
    job_id: str
    trigger: RunTrigger
    scheduled_for: datetime
    status: RunStatus
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    tasks_total: int = 0
    tasks_failed: int = 0
    error: str | None = None
    started_by: str | None = None
    config_revision: str | None = None
    targets: list[str] | None = None
    owner_token: str | None = None
    cancel_requested_at: datetime | None = None
    cancel_requested_by: str | None = None
    cancel_reason: str | None = None
    requested_by: str | None = None

    def domain(self) -> Run:
        return run_from(self)


@dataclass
class TaskRow:
    id: int
    run_id: int
    position: int
    site: str
    site_id: str | None
    environment: str
    environment_id: str | None
    action: str
    status: TaskStatus = TaskStatus.PENDING
    attempts: int = 0
    operation_id: str | None = None
    operation_status: str | None = None
    message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    versions_before: dict[str, Any] | None = None
    versions_after: dict[str, Any] | None = None
    result: dict[str, Any] | None = None

    def domain(self, ops: tuple[OperationRecord, ...] = ()) -> Task:
        return task_from(self, ops, fresh=copied)


@dataclass
class OperationRow:
    id: int
    task_id: int
    operation_id: str
    action: str
    state: OperationState
    started_at: datetime
    finished_at: datetime | None = None
    polls: int = 0
    message: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def domain(self) -> OperationRecord:
        return operation_from(self)


@dataclass
class LockRow:
    holder: str
    label: str | None
    acquired_at: datetime
    expires_at: datetime


@dataclass
class InventoryRow:
    id: int
    task_id: int | None
    snapshot: InventorySnapshot  # its times in UTC, its lists copied


@dataclass
class MemoryState:
    """Every table, and the one lock each port holds for the whole of each call."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    ids: dict[str, itertools.count[int]] = field(default_factory=dict)
    runs: dict[int, RunRow] = field(default_factory=dict)
    tasks: dict[int, TaskRow] = field(default_factory=dict)
    operations: dict[int, OperationRow] = field(default_factory=dict)
    site_actions: dict[tuple[str, str, str], SiteAction] = field(default_factory=dict)
    locks: dict[str, LockRow] = field(default_factory=dict)
    item_versions: dict[tuple[str, str, str], datetime] = field(default_factory=dict)
    inventory: dict[int, InventoryRow] = field(default_factory=dict)
    governor_events: dict[int, GovernorEvent] = field(default_factory=dict)
    daemon_events: dict[int, DaemonEvent] = field(default_factory=dict)
    notifications: dict[int, NotificationRecord] = field(default_factory=dict)
    quarantine: dict[tuple[str, str, str], QuarantineEntry] = field(default_factory=dict)
    waves: dict[int, dict[int, WaveRecord]] = field(default_factory=dict)  # run -> index -> wave
    pauses: dict[str, JobPause] = field(default_factory=dict)  # by job id
    request_minutes: dict[tuple[str, datetime], int] = field(default_factory=dict)

    def next_id(self, table: str) -> int:
        """Each table numbers its rows from 1, as the SQL tables do."""
        return next(self.ids.setdefault(table, itertools.count(1)))

    def run(self, run_id: int) -> RunRow:
        try:
            return self.runs[run_id]
        except KeyError:
            raise StoreError(f"history database error: no run {run_id}") from None

    def task(self, task_id: int) -> TaskRow:
        try:
            return self.tasks[task_id]
        except KeyError:
            raise StoreError(f"history database error: no task {task_id}") from None

    def operation(self, row_id: int) -> OperationRow:
        try:
            return self.operations[row_id]
        except KeyError:
            raise StoreError(f"history database error: no operation {row_id}") from None

    def lost(self, run_id: int) -> OwnershipLost:
        holder = self.runs[run_id].started_by if run_id in self.runs else None
        return OwnershipLost(f"run {run_id} was adopted by {holder or 'another process'}")

    def check_owner(self, run_id: int, owner: str | None) -> None:
        """The run is still `owner`'s, else OwnershipLost (the SQL store's fence)."""
        if owner is None:
            return
        row = self.runs.get(run_id)
        if row is None or row.owner_token != owner:
            raise self.lost(run_id)

    def tasks_of(self, run_id: int) -> list[TaskRow]:
        return sorted(
            (t for t in self.tasks.values() if t.run_id == run_id), key=lambda t: t.position
        )
