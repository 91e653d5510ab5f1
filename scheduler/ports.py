"""The storage ports: what the core asks of its history, grouped by concern. Each port is
implemented twice, in SQL (scheduler.history: SQLite and PostgreSQL) and in memory
(scheduler.history.memory), and one contract suite (tests/contract) holds both to it.

Every write of a running run may be fenced by its owner token (`owner=`): a process whose run
was adopted elsewhere gets OwnershipLost instead of changing it. Times are aware datetimes; the
stores give them back in UTC. Rows are domain objects or the frozen rows below, never tuples.
The rate-limit ledger's port is `Ledger` (kept in scheduler.ratelimit, re-exported here); the
job pauses' port is `PauseBook` (scheduler.pauses, with its value `JobPause`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from scheduler.domain import (
    CancelRequest,
    DaemonEvent,
    GovernorEvent,
    InventorySnapshot,
    NotificationRecord,
    OperationEvent,
    Run,
    RunStatus,
    RunTrigger,
    SiteAction,
    Target,
    Task,
    TaskStatus,
)
from scheduler.ratelimit import Ledger
from scheduler.rollout import WaveRecord

__all__ = [
    "Beat",
    "Catalogue",
    "EnvironmentLocks",
    "EventLog",
    "HistoryQueries",
    "Ledger",
    "Maintenance",
    "PlannedTask",
    "PruneResult",
    "Quarantine",
    "QuarantineEntry",
    "RunFilter",
    "RunLedger",
    "TaskFilter",
    "TaskLog",
    "UnresolvedOperation",
    "new_owner_token",
]


@dataclass(frozen=True)
class RunFilter:
    job_id: str | None = None
    site: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50


@dataclass(frozen=True)
class TaskFilter:
    run_id: int | None = None
    job_id: str | None = None
    site: str | None = None
    action: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 200


@dataclass(frozen=True)
class PlannedTask:
    target: Target
    action: str


@dataclass(frozen=True)
class UnresolvedOperation:
    """An operation a run started that has no final state in history (see recovery.py)."""

    task_id: int
    row_id: int
    operation_id: str
    action: str
    started_at: datetime
    environment_id: str | None
    newer_with_same_id: bool  # a later operation (any run) has the same id


@dataclass(frozen=True)
class PruneResult:
    runs: int
    tasks: int
    operations: int
    events: int = 0  # governor events, daemon events and notifications


@dataclass(frozen=True)
class Beat:
    """What a heartbeat found: whether the run is still the caller's (False: adopted
    elsewhere, nothing was written), and the cancel an operator asked of it, if any."""

    ours: bool
    cancel: CancelRequest | None = None


QUARANTINED_BY_ROLLBACK = "rollback"
QUARANTINED_BY_OPERATOR = "operator"


@dataclass(frozen=True)
class QuarantineEntry:
    """A plugin or theme version no update takes (see `Quarantine`), and the evidence: the
    environment, run and task where its safe update was rolled back and the check that failed
    (`reason`), or an operator's reason."""

    kind: str  # plugins | themes
    name: str
    version: str
    reason: str
    added_at: datetime
    added_by: str = QUARANTINED_BY_ROLLBACK  # or QUARANTINED_BY_OPERATOR
    site: str | None = None
    environment: str | None = None
    run_id: int | None = None
    task_id: int | None = None
    rollbacks: int = 1  # rollbacks that proved it while it stayed quarantined
    released_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.released_at is None

    def why(self) -> str:
        """What a held-back item says: the version, and where it failed or who put it there."""
        if self.added_by == QUARANTINED_BY_OPERATOR:
            return f"{self.version} quarantined by an operator: {self.reason}"
        where = f"{self.site}/{self.environment}" if self.site else "an environment"
        more = f", {self.rollbacks} rollbacks in all" if self.rollbacks > 1 else ""
        return (
            f"{self.version} quarantined: rolled back on {where} (run {self.run_id}, task "
            f"{self.task_id}{more}): {self.reason}"
        )


def new_owner_token() -> str:
    return uuid.uuid4().hex


class RunLedger(Protocol):
    """Run claims and a run's lifecycle: claim, plan, beat, settle; orphans and adoption."""

    def claim_run(
        self,
        job_id: str,
        trigger: RunTrigger,
        scheduled_for: datetime,
        now: datetime,
        *,
        started_by: str,
        config_revision: str | None = None,
        owner_token: str | None = None,
        requested_by: str | None = None,
    ) -> Run | None:
        """Record a run as started. None when this (job, slot) was already claimed (by another
        process, or before a restart): exactly one claim wins. On-demand runs (manual, slack)
        never collide and are no slot; a backfill also claims a slot recorded `missed` (its row
        becomes the run's). `owner_token`: the caller's (held before the row exists), else a
        new one. `requested_by`: who asked for an on-demand run."""

    def record_run(
        self,
        job_id: str,
        trigger: RunTrigger,
        scheduled_for: datetime,
        now: datetime,
        *,
        status: RunStatus,
        error: str,
    ) -> Run | None:
        """A run that did not execute (skipped, missed), recorded with its reason; None when
        the slot already has a row."""

    def plan_tasks(self, run_id: int, planned: Sequence[PlannedTask]) -> list[int]:
        """Store the resolved targets with the run and create its tasks, all pending."""

    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        now: datetime,
        error: str | None = None,
        *,
        owner: str | None = None,
    ) -> Run:
        """Settle a run (counting its failed tasks). With `owner`, only while the run is still
        this owner's: OwnershipLost when another process adopted it meanwhile."""

    def record_wave(self, run_id: int, wave: WaveRecord, *, owner: str | None = None) -> None:
        """Record a wave of the run's rollout (fenced by `owner` like `finish_run`)."""

    def heartbeat(self, run_id: int, now: datetime, *, owner: str | None = None) -> Beat:
        """Beat a running run's heartbeat, reading back in the same statement whether a
        cancel was asked of it. Not `ours` when the run is no longer `owner`'s. Never retried:
        the next beat is the retry."""

    def request_cancel(
        self, run_id: int, now: datetime, *, by: str, reason: str | None = None
    ) -> Run | None:
        """Ask a running run to stop (its process sees it at its next heartbeat); the first
        request stands. Returns the run as it is now (`cancel` set, or already ended), None
        when there is no such run."""

    def running_run(self, job_id: str, alive_after: datetime) -> Run | None:
        """A run of the job still going (its heartbeat newer than `alive_after`), if any."""

    def last_slot(self, job_id: str) -> datetime | None:
        """The newest slot of the job with a row (run, skipped or missed), on-demand runs aside."""

    def recorded_slots(self, job_id: str, since: datetime) -> set[datetime]:
        """The job's slots since `since` that have a row, on-demand runs aside."""

    def first_slot_of_revision(self, job_id: str, revision: str) -> datetime | None:
        """The oldest slot of the job claimed under this configuration revision."""

    def orphaned_runs(self, stale_before: datetime) -> list[Run]:
        """Runs whose owner is gone: still `running` with a stale heartbeat, or `interrupted`
        with a task still `running` (its operation was left in flight at shutdown)."""

    def running_runs_started_by(self, prefix: str) -> list[Run]:
        """Runs still `running` whose recorded owner starts with `prefix` (a host's runs)."""

    def adopt_run(
        self,
        run: Run,
        owner: str,
        now: datetime,
        stale_before: datetime | None,
        token: str | None = None,
    ) -> str | None:
        """Take over an orphaned run; exactly one process wins and gets the run's new owner
        token (None: another process took it, or its owner came back to life). Compare and
        swap on the owner token read with `run` and, for a running run, on its heartbeat still
        being older than `stale_before` (None: its owner is known to be gone)."""

    def finish_pending(
        self,
        run_id: int,
        status: TaskStatus,
        now: datetime,
        message: str,
        *,
        owner: str | None = None,
    ) -> int:
        """Settle the run's tasks that never started; return how many there were."""

    def previous_outcome(self, job_id: str, before_run_id: int) -> RunStatus | None:
        """The status of the job's last run before this one that ran (succeeded or failed)."""


class TaskLog(Protocol):
    """Tasks and the Kinsta operations they start, each write fenced by the run's owner."""

    def start_task(self, task_id: int, now: datetime, *, owner: str | None = None) -> None: ...

    def count_attempt(self, task_id: int) -> None: ...

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
        """Settle a task; the (site, environment, action) summary keeps the latest outcome."""

    def start_operation(
        self,
        task_id: int,
        operation_id: str,
        action: str,
        now: datetime,
        *,
        owner: str | None = None,
    ) -> int:
        """Record an operation the task started (pending); return its row id."""

    def operation_event(
        self, row_id: int, event: OperationEvent, polls: int, *, owner: str | None = None
    ) -> None:
        """Append what a poll saw to the operation's timeline (a final state ends it)."""

    def unresolved_operations(self, run_id: int) -> list[UnresolvedOperation]:
        """The run's operations that never reached a final state, in the order they started."""

    def run_tasks(self, run_id: int) -> list[Task]:
        """Every task of a run, in order, each with its operations."""


class EnvironmentLocks(Protocol):
    """One holder at a time per environment, as a lease renewed while working."""

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
        """Take (or re-take) the lock for `holder` until now + lease_s. None when taken; else
        the label of whoever holds it. A lapsed lease is taken over, and so is one whose holder
        starts with `take_from` (recovery taking the lock of the run it adopts)."""

    def renew_locks(self, holders: Iterable[str], now: datetime, lease_s: float) -> set[str]:
        """Extend the leases these holders still have; return the holders renewed."""

    def unlock_environment(self, environment_id: str, holder: str) -> None: ...

    def held_environments(self, environment_ids: Iterable[str], now: datetime) -> set[str]:
        """Which of these environments someone holds now (an unexpired lease): one query for
        every lock a process waits for."""


class EventLog(Protocol):
    """What the governor and the daemon did, and every notification tried: append and query,
    newest first."""

    def record_governor_event(
        self, scope: str, kind: str, seconds: float | None, detail: str, now: datetime
    ) -> None: ...

    def record_governor_events(self, events: Sequence[GovernorEvent]) -> None:
        """Several at once, in one transaction."""

    def record_daemon_event(
        self, owner: str, kind: str, detail: str | None, now: datetime
    ) -> None: ...

    def record_notification(self, delivery: NotificationRecord) -> None: ...

    def governor_events(
        self, since: datetime | None = None, limit: int = 200, *, until: datetime | None = None
    ) -> list[GovernorEvent]: ...

    def daemon_events(
        self, since: datetime | None = None, limit: int = 200
    ) -> list[DaemonEvent]: ...

    def notifications(
        self, since: datetime | None = None, limit: int = 200
    ) -> list[NotificationRecord]: ...


class Catalogue(Protocol):
    """What the fleet looks like: versions on offer and inventory snapshots."""

    def note_available(
        self, kind: str, offered: Iterable[tuple[str, str]], now: datetime
    ) -> dict[tuple[str, str], datetime]:
        """Record that these (name, version) updates of `kind` (plugins|themes) are offered, if
        not seen before; return when each was first seen (the clock of `min_age`)."""

    def record_inventory(
        self, task_id: int | None, run_id: int | None, target: Target, snapshot: InventorySnapshot
    ) -> None: ...

    def latest_inventory(self, site: str | None = None) -> list[InventorySnapshot]:
        """The newest snapshot of each environment (of `site`), by site and environment."""


class Quarantine(Protocol):
    """Plugin and theme versions whose safe update was rolled back (or that an operator named):
    no update takes one until a newer version is offered or an operator releases it. One entry
    per (kind, name, version); a released entry stays, for the record, until quarantined again."""

    def add(self, entry: QuarantineEntry) -> QuarantineEntry:
        """Quarantine a version; the entry as stored. One already quarantined keeps its first
        evidence (a rollback counts in `rollbacks`); a released one takes the new evidence."""

    def held(
        self, kind: str, offered: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], QuarantineEntry]:
        """The quarantined ones among these (name, version) of `kind`."""

    def release(self, name: str, version: str | None, now: datetime) -> list[QuarantineEntry]:
        """Release the quarantined versions of `name` (of any kind; only `version`, if given);
        return the entries released."""

    def entries(self, *, released: bool = False) -> list[QuarantineEntry]:
        """The quarantined versions (with `released`, the released ones too), by kind, name and
        version."""


class HistoryQueries(Protocol):
    """The read side: what the CLI (and a dashboard) ask of history."""

    def get_run(self, run_id: int) -> Run | None: ...

    def run_waves(self, run_id: int) -> list[WaveRecord]:
        """The run's waves, first (the canary) first; empty without a rollout."""

    def list_runs(self, where: RunFilter) -> list[Run]:
        """Newest slot first."""

    def list_tasks(self, where: TaskFilter) -> list[Task]:
        """In run order within a run; newest run first across runs."""

    def site_actions(self, site: str | None = None) -> list[SiteAction]:
        """The latest outcome of every action on every environment (of `site`), by site."""

    def typical_durations(self, actions: Sequence[str], *, samples: int = 50) -> dict[str, float]:
        """Per action, how long its recent successful operations took (scheduler.durations)."""

    def typical_polls(self, actions: Sequence[str], *, samples: int = 50) -> dict[str, float]:
        """Per action, how many polls its recent successful operations took, on average
        (scheduler.durations; absent while history knows fewer than five)."""


class Maintenance(Protocol):
    def prune(self, older_than: datetime, keep_last: int, *, dry_run: bool = False) -> PruneResult:
        """Delete finished runs scheduled before `older_than`, except each job's newest
        `keep_last`; a running run is never removed. Tasks and operations go with their run;
        event-log rows before `older_than` go too, and inventory snapshots except each
        environment's newest."""

    def optimize(self) -> None:
        """Keep the query planner's statistics fresh (where the backend wants telling)."""

    def ping(self) -> None:
        """Raise StoreError unless the store answers."""
