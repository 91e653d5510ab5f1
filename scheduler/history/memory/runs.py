"""RunLedger in memory: the same claims, fencing and compare-and-swap adoption as in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from scheduler.domain import Run, RunStatus, RunTrigger, TaskStatus
from scheduler.errors import StoreError
from scheduler.history.memory.state import MemoryState, RunRow, TaskRow, aware, copied, maybe
from scheduler.ports import Beat, PlannedTask, new_owner_token
from scheduler.rollout import WaveRecord

MISSED = RunStatus.MISSED


def _stale(row: RunRow, before: datetime) -> bool:
    return row.heartbeat_at is None or row.heartbeat_at < before


class MemoryRunLedger:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    def _insert(self, row: RunRow) -> Run | None:
        """The unique (job, slot) index of the runs of a slot (not the on-demand ones)."""
        with self._s.lock:
            if not row.trigger.on_demand and any(
                r.job_id == row.job_id
                and r.scheduled_for == row.scheduled_for
                and not r.trigger.on_demand
                for r in self._s.runs.values()
            ):
                return None
            row.id = self._s.next_id("runs")
            self._s.runs[row.id] = row
            return row.domain()

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
        now = aware(now)
        row = RunRow(0, job_id, trigger, aware(scheduled_for), RunStatus.RUNNING)
        with self._s.lock:
            missed = [
                r
                for r in self._s.runs.values()
                if trigger is RunTrigger.BACKFILL
                and (r.job_id, r.scheduled_for, r.status) == (job_id, row.scheduled_for, MISSED)
                and not r.trigger.on_demand
            ]
            if missed:  # the missed slot's row becomes the backfill's run
                row, row.trigger, row.status = missed[0], trigger, RunStatus.RUNNING
                row.finished_at = row.error = None
            row.started_at = row.heartbeat_at = now
            row.started_by, row.config_revision = started_by, config_revision
            row.requested_by = requested_by
            row.owner_token = owner_token or new_owner_token()
            return row.domain() if missed else self._insert(row)

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
        row = RunRow(0, job_id, trigger, aware(scheduled_for), status, error=error)
        row.started_at = row.finished_at = aware(now)
        return self._insert(row)

    def plan_tasks(self, run_id: int, planned: Sequence[PlannedTask]) -> list[int]:
        with self._s.lock:
            run = self._s.run(run_id)
            run.targets = copied(sorted({p.target.key for p in planned}))
            run.tasks_total = len(planned)
            ids = []
            for position, p in enumerate(planned):
                task_id = self._s.next_id("tasks")
                self._s.tasks[task_id] = TaskRow(
                    task_id,
                    run_id,
                    position,
                    p.target.site_name,
                    p.target.site_id,
                    p.target.environment_name,
                    p.target.environment_id,
                    p.action,
                )
                ids.append(task_id)
            return ids

    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        now: datetime,
        error: str | None = None,
        *,
        owner: str | None = None,
    ) -> Run:
        now = aware(now)
        with self._s.lock:
            self._s.check_owner(run_id, owner)
            run = self._s.run(run_id)
            run.status, run.finished_at, run.error = status, now, error
            run.tasks_failed = sum(1 for t in self._s.tasks_of(run_id) if t.status.is_failure)
            return run.domain()

    def heartbeat(self, run_id: int, now: datetime, *, owner: str | None = None) -> Beat:
        now = aware(now)
        with self._s.lock:
            run = self._s.runs.get(run_id)
            if run is None or (owner is not None and run.owner_token != owner):
                return Beat(False)
            run.heartbeat_at = now
            return Beat(True, run.domain().cancel)

    def record_wave(self, run_id: int, wave: WaveRecord, *, owner: str | None = None) -> None:
        with self._s.lock:
            self._s.check_owner(run_id, owner)
            waves = self._s.waves.setdefault(run_id, {})
            if wave.index in waves:
                raise StoreError(f"history database error: run {run_id} has wave {wave.index}")
            waves[wave.index] = replace(
                wave, started_at=maybe(wave.started_at), ended_at=maybe(wave.ended_at)
            )

    def request_cancel(
        self, run_id: int, now: datetime, *, by: str, reason: str | None = None
    ) -> Run | None:
        now = aware(now)
        with self._s.lock:
            run = self._s.runs.get(run_id)
            if run is None:
                return None
            if run.status is RunStatus.RUNNING and run.cancel_requested_at is None:
                run.cancel_requested_at, run.cancel_requested_by = now, by
                run.cancel_reason = reason
            return run.domain()

    def running_run(self, job_id: str, alive_after: datetime) -> Run | None:
        alive_after = aware(alive_after)
        with self._s.lock:
            alive = [
                r
                for r in self._s.runs.values()
                if r.job_id == job_id
                and r.status is RunStatus.RUNNING
                and r.heartbeat_at is not None
                and r.heartbeat_at >= alive_after
            ]
            return max(alive, key=lambda r: r.id).domain() if alive else None

    def _slots(self, job_id: str) -> list[RunRow]:
        return [r for r in self._s.runs.values() if r.job_id == job_id and not r.trigger.on_demand]

    def last_slot(self, job_id: str) -> datetime | None:
        with self._s.lock:
            return max((r.scheduled_for for r in self._slots(job_id)), default=None)

    def recorded_slots(self, job_id: str, since: datetime) -> set[datetime]:
        since = aware(since)
        with self._s.lock:
            return {r.scheduled_for for r in self._slots(job_id) if r.scheduled_for >= since}

    def first_slot_of_revision(self, job_id: str, revision: str) -> datetime | None:
        with self._s.lock:
            slots = self._slots(job_id)
            return min(
                (r.scheduled_for for r in slots if r.config_revision == revision), default=None
            )

    def orphaned_runs(self, stale_before: datetime) -> list[Run]:
        stale_before = aware(stale_before)
        with self._s.lock:
            in_flight = {t.run_id for t in self._s.tasks.values() if t.status is TaskStatus.RUNNING}
            return [
                r.domain()
                for r in sorted(self._s.runs.values(), key=lambda r: r.id)
                if (r.status is RunStatus.RUNNING and _stale(r, stale_before))
                or (r.status is RunStatus.INTERRUPTED and r.id in in_flight)
            ]

    def running_runs_started_by(self, prefix: str) -> list[Run]:
        with self._s.lock:
            return [
                r.domain()
                for r in sorted(self._s.runs.values(), key=lambda r: r.id)
                if r.status is RunStatus.RUNNING
                and r.started_by is not None
                and r.started_by.startswith(prefix)
            ]

    def adopt_run(
        self,
        run: Run,
        owner: str,
        now: datetime,
        stale_before: datetime | None,
        token: str | None = None,
    ) -> str | None:
        now = aware(now)
        wanted = RunStatus.INTERRUPTED if run.status is RunStatus.INTERRUPTED else RunStatus.RUNNING
        with self._s.lock:
            row = self._s.runs.get(run.run_id)
            if row is None or row.status is not wanted or row.owner_token != run.owner_token:
                return None
            fresh = stale_before is not None and not _stale(row, aware(stale_before))
            if run.status is RunStatus.RUNNING and fresh:
                return None
            token = token or new_owner_token()
            row.status, row.started_by, row.heartbeat_at = RunStatus.RUNNING, owner, now
            row.owner_token = token
            return token

    def finish_pending(
        self,
        run_id: int,
        status: TaskStatus,
        now: datetime,
        message: str,
        *,
        owner: str | None = None,
    ) -> int:
        now = aware(now)
        with self._s.lock:
            self._s.check_owner(run_id, owner)
            pending = [t for t in self._s.tasks_of(run_id) if t.status is TaskStatus.PENDING]
            for task in pending:
                task.status, task.finished_at, task.message = status, now, message
            return len(pending)

    def previous_outcome(self, job_id: str, before_run_id: int) -> RunStatus | None:
        ran = (RunStatus.SUCCEEDED, RunStatus.FAILED)
        with self._s.lock:
            earlier = [
                r
                for r in self._s.runs.values()
                if r.job_id == job_id and r.id < before_run_id and r.status in ran
            ]
            return max(earlier, key=lambda r: r.id).status if earlier else None
