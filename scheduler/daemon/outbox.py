"""The bounded buffer of slots that did not run and have no row yet (skipped or missed).

Rows are queued wherever the daemon decides (the scheduler's own thread included, which must
never wait for the database) and written by `flush` off that thread. They are kept while the
database is unreachable, at most UNRECORDED_BUFFER of them: beyond that the oldest is dropped and
counted, and the count joins the job's next written row. A row may wait for a time (`not_before`:
a `missed` row waits until the slot's misfire grace has passed, so a live replica can still run
it). A row whose slot has a row already (another process claimed it) is not written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from scheduler.clock import Clock
from scheduler.domain import Run, RunStatus, RunTrigger
from scheduler.errors import StoreError
from scheduler.history import HistoryStore

log = structlog.get_logger("scheduler.daemon")

UNRECORDED_BUFFER = 1_000  # skipped or missed slots kept while the database is unreachable


@dataclass(frozen=True)
class Verdict:
    """A slot that did not run and why, waiting to be written (not before `not_before`)."""

    job_id: str
    slot: datetime
    status: RunStatus
    reason: str
    not_before: datetime | None = None


class Outbox:
    """Queued rows and their writer. `on_recorded(run)` follows each row written; `on_missed(
    job_id, slots, reason)` once per job and flush for the `missed` ones (one notification)."""

    def __init__(
        self,
        store: HistoryStore,
        clock: Clock,
        on_recorded: Callable[[Run], None],
        on_missed: Callable[[str, list[datetime], str], None],
    ) -> None:
        self._store = store
        self._clock = clock
        self._on_recorded = on_recorded
        self._on_missed = on_missed
        self._queue: list[Verdict] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._dropped: dict[str, int] = {}  # per job, rows dropped because the queue was full
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._queue)

    def add(
        self,
        job_id: str,
        slot: datetime,
        status: RunStatus,
        reason: str,
        not_before: datetime | None = None,
    ) -> None:
        with self._lock:
            if len(self._queue) >= UNRECORDED_BUFFER:
                dropped = self._queue.pop(0)
                self._dropped[dropped.job_id] = self._dropped.get(dropped.job_id, 0) + 1
                self.dropped += 1
                log.error("history.buffer_full", dropped=self.dropped)
            self._queue.append(Verdict(job_id, slot, status, reason, not_before))

    def holds(self, job_id: str, slot: datetime) -> bool:
        """Whether a row for this slot waits here."""
        with self._lock:
            return any(v.job_id == job_id and v.slot == slot for v in self._queue)

    def _due(self, everything: bool) -> Verdict | None:
        now = self._clock.now()
        with self._lock:
            for verdict in self._queue:
                if everything or verdict.not_before is None or verdict.not_before <= now:
                    return verdict
        return None

    def flush(self, *, everything: bool = False) -> int:
        """Write queued rows whose time has come (`everything`: all, at shutdown); return how
        many were written. Stops at the first database error: the rest wait for the next try.
        A second flush while one runs returns 0 at once."""
        if not self._flushing.acquire(blocking=False):
            return 0
        written = 0
        missed: dict[str, list[Run]] = {}
        try:
            while (verdict := self._due(everything)) is not None:
                try:
                    run = self._write(verdict)
                except StoreError as exc:
                    log.warning("history.rows_waiting", rows=len(self._queue), error=str(exc))
                    break
                written += 1
                if run is not None:
                    self._on_recorded(run)
                    if run.status is RunStatus.MISSED:
                        missed.setdefault(run.job_id, []).append(run)
        finally:
            self._flushing.release()
        for job_id, runs in missed.items():  # one notification per job and batch
            self._on_missed(job_id, [r.scheduled_for for r in runs], runs[-1].error or "missed")
        return written

    def _write(self, verdict: Verdict) -> Run | None:
        """Write one row and take it off the queue; None when the slot had a row already."""
        dropped = self._dropped.get(verdict.job_id, 0)
        reason = verdict.reason
        if dropped:
            reason += (
                f" (and {dropped} earlier slot(s) of this job that could not be recorded:"
                " the queue was full while the database was unreachable)"
            )
        run = self._store.runs.record_run(
            verdict.job_id,
            RunTrigger.SCHEDULE,
            verdict.slot,
            self._clock.now(),
            status=verdict.status,
            error=reason,
        )
        with self._lock:
            self._queue.remove(verdict)
            if dropped:
                self._dropped[verdict.job_id] -= dropped
        if run is None:  # another process claimed (or recorded) this slot
            log.info(
                "run.already_claimed",
                job_id=verdict.job_id,
                scheduled_for=verdict.slot.isoformat(),
                not_recorded=verdict.status.value,
            )
            return None
        log.warning(
            f"run.{run.status.value}",
            job_id=run.job_id,
            scheduled_for=run.scheduled_for.isoformat(),
            reason=reason,
        )
        return run
