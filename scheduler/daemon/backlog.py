"""Slots that no firing of this process accounts for: those missed while no daemon ran (caught
up at start) and those lost between two recorded slots (the gap check). The decisions are pure
(slots.plan_catch_up, slots.gap_window, slots.lost_slots); this part reads the history and
queues the rows in the outbox."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime

import structlog

from scheduler import pauses, slots
from scheduler.blackouts import Blackout
from scheduler.domain import Config, Job, RunStatus
from scheduler.errors import StoreError
from scheduler.history import HistoryStore

from .outbox import Outbox

log = structlog.get_logger("scheduler.daemon")

MAX_MISSED_ROWS = 100  # missed slots recorded one by one per job; older ones are counted
GAP_LOOKBACK_S = 6 * 3600.0  # how far back the gap check looks for slots left without a row


class Backlog:
    """`catch_up_run(job_id, slot)` starts a catch-up run; `stopping` ends each pass early."""

    def __init__(
        self,
        store: HistoryStore,
        outbox: Outbox,
        catch_up_run: Callable[[str, datetime], None],
        stopping: threading.Event,
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._catch_up_run = catch_up_run
        self._stopping = stopping
        self._live_from: dict[str, datetime] = {}  # per job, the first slot the schedule fires
        self._schedule_since: dict[str, datetime] = {}  # per job, when its schedule was applied

    def applied(self, job: Job, first: datetime, now: datetime, *, at_start: bool) -> None:
        """A job's schedule took effect at `now`, first firing at `first`. At start, slots
        before `first`'s slot are the catch-up's; after, the live schedule's."""
        assert job.schedule is not None
        if at_start:
            self._live_from[job.id] = slots.slot_of(job.schedule, first) or first
        self._schedule_since[job.id] = now

    def catch_up(self, config: Config, now: datetime) -> None:
        """Slots missed while no daemon ran (those before the live schedule's first slot): the
        newest one within the job's catch_up window runs now (trigger catch_up), once however
        many were missed; the others are queued `missed` with their reason. A job never run
        before has nothing to catch up."""
        for job in config.jobs:
            live_from = self._live_from.get(job.id)
            if job.schedule is None or live_from is None or self._stopping.is_set():
                continue
            try:
                last = self._store.runs.last_slot(job.id)
            except StoreError as exc:
                log.error("catch_up.failed", job_id=job.id, error=str(exc))
                continue
            if last is None:
                continue
            decision = slots.plan_catch_up(
                job.id,
                job.schedule,
                last,
                live_from,
                now,
                window_s=job.catch_up_s,
                grace_s=job.misfire_grace_s,
                max_rows=MAX_MISSED_ROWS,
            )
            for missed in decision.missed:
                self._queue(job, config.blackouts, missed)
            if decision.run is not None:
                log.info(
                    "catch_up.run",
                    job_id=job.id,
                    scheduled_for=decision.run.isoformat(),
                    missed=decision.missed_count,
                )
                self._catch_up_run(job.id, decision.run)

    def fill_gaps(self, config: Config, now: datetime) -> None:
        """Slots between two recorded slots of a job that have no row of their own: the
        process that fired them died before it could record them (`kill -9` while the
        database was away and its rows waited in memory). Each is queued `missed` to be written
        once its misfire grace has passed (no live replica will run it then). Looks back
        GAP_LOOKBACK_S, at most MAX_MISSED_ROWS slots per job, newest first."""
        for job in config.jobs:
            if job.schedule is None or self._stopping.is_set():
                continue
            try:
                lost = self._lost_slots(job, config.revision, now)
            except StoreError as exc:
                log.warning("gaps.not_checked", job_id=job.id, error=str(exc))
                continue
            for missed in lost:
                if self._outbox.holds(job.id, missed.slot):
                    continue
                log.warning("slot.lost", job_id=job.id, scheduled_for=missed.slot.isoformat())
                self._queue(job, config.blackouts, missed)

    def _lost_slots(self, job: Job, revision: str, now: datetime) -> list[slots.MissedSlot]:
        """Only since the job's current schedule has been in force: since this process applied
        it, or since the first slot any process claimed under this revision of jobs.yaml (an
        edited schedule has slots between the old one's rows that were never due); and only
        the newest slots of the lookback window."""
        assert job.schedule is not None
        since = self._schedule_since.get(job.id, now)
        first = self._store.runs.first_slot_of_revision(job.id, revision)
        if first is not None and first < since:
            since = first
        window = slots.gap_window(
            job.schedule, since, now, lookback_s=GAP_LOOKBACK_S, max_rows=MAX_MISSED_ROWS
        )
        if not window.slots:
            return []
        recorded = self._store.runs.recorded_slots(job.id, window.slots[0])
        return slots.lost_slots(
            job.id, job.schedule, recorded, grace_s=job.misfire_grace_s, max_rows=MAX_MISSED_ROWS
        )

    def _queue(self, job: Job, blackouts: Sequence[Blackout], missed: slots.MissedSlot) -> None:
        queue_unrun(
            self._outbox, job, blackouts, missed.slot, missed.reason, not_before=missed.not_before
        )


def queue_unrun(
    outbox: Outbox,
    job: Job,
    blackouts: Sequence[Blackout],
    slot: datetime,
    reason: str,
    *,
    not_before: datetime | None = None,
) -> None:
    """Queue the row of a slot that did not run: `skipped` with jobs.yaml's reason when the
    file held it anyway (disabled, a blackout: pauses.held_by_file), else `missed`."""
    held = pauses.held_by_file(job, blackouts, slot)
    status = RunStatus.MISSED if held is None else RunStatus.SKIPPED
    outbox.add(job.id, slot, status, held or reason, not_before)
