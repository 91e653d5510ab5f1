"""The daemon: APScheduler 3.11 wiring, hot reload, signals. APScheduler is used here only
(and its cron field parser in schedules.py).

- A BackgroundScheduler in UTC with an in-memory job store rebuilt from jobs.yaml: the file is the
  source of truth; everything that must survive a restart lives in our own tables.
- Fire times come from schedules.py (crontab semantics, DST rules, anchored intervals) and
  slots.py (a jitter that is the same in every process and never reaches the next slot) through
  SlotTrigger. The executor hands each firing the fire times it stands for; each maps to its
  un-jittered slot, and the slot is claimed (job, slot) in the history database before anything
  is done, so a slot runs once across processes and restarts. Every slot of a firing is
  accounted for: the newest one within misfire_grace runs, every other one gets a `missed` row.
- jobs.yaml is re-read when its content changes (checked every RELOAD_CHECK_S) or on SIGHUP. An
  invalid file keeps the last good schedule. Only changed jobs are rescheduled.
- On start, and every RECOVERY_EVERY_S, runs whose process is gone are recovered (recovery.py);
  slots missed while no daemon ran are caught up (one run, coalesced, when within the job's
  `catch_up` window) or recorded `missed`.
- A slot whose job is still running (here or in another process) is recorded `skipped`.
- Skipped and missed rows are queued and written by their own thread (never the scheduler's),
  kept while the database is unreachable, and a `missed` row waits until the slot's
  misfire_grace has passed, so a live replica can still run it.
- The daemon's own duties (recovery, catch-up, housekeeping, writing queued rows) have their own
  threads and always run, however late.
- SIGTERM/SIGINT: stop firing, start no new task, let running tasks finish within
  `daemon.shutdown_timeout`, then stop polling; exit 0. A second signal exits at once.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import structlog
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from scheduler import config as config_module
from scheduler import recovery, schedules, slots
from scheduler.clock import Clock
from scheduler.domain import Config, IntervalSchedule, Job, Run, RunStatus, RunTrigger, Schedule
from scheduler.errors import (
    ConfigError,
    Problem,
    SchedulerError,
    SlotNotClaimedError,
    StoreError,
)
from scheduler.history import HistoryStore
from scheduler.runner import Runner

log = structlog.get_logger("scheduler.daemon")

RELOAD_CHECK_S = 2.0
HOUSEKEEPING_JOB = "__housekeeping__"  # not a valid jobs.yaml id, so it never collides
HOUSEKEEPING_EVERY_S = 86_400.0
HOUSEKEEPING_FIRST_S = 60.0
SHUTDOWN_TIMEOUT_S = 30.0
CANCEL_GRACE_S = 5.0  # after cancelling, how long runs get to record where they are
MAX_PARALLEL_RUNS = 20
RECOVERY_JOB = "__recovery__"
RECOVERY_EVERY_S = 60.0
MAX_MISSED_ROWS = 100  # missed slots recorded one by one per job; older ones are counted
GAP_LOOKBACK_S = 6 * 3600.0  # how far back the gap check looks for slots left without a row
LOST_SLOT = (
    "no process recorded this slot: the one that fired it died before it could (kill -9 while "
    "the database was unreachable); found by the gap check"
)
DB_CHECK_EVERY_S = 5.0
DB_ANSWER_S = 2.0  # /healthz says 503 when the database has not answered a ping in this long
UNRECORDED_BUFFER = 1_000  # skipped or missed slots kept while the database is unreachable
FLUSH_JOB = "__flush__"
FLUSH_EVERY_S = 1.0
_US = timedelta(microseconds=1)
INTERNAL_THREADS = 4  # recovery, catch-up, housekeeping, flush: never behind the runs


class SlotTrigger(BaseTrigger):  # type: ignore[misc]
    """APScheduler trigger over a job's slots: each fires at its slot plus the slot's jitter
    (slots.py). The next fire time follows from the previous fire time's slot, never from the
    clock, so a late firing loses no slot."""

    def __init__(self, job_id: str, schedule: Schedule) -> None:
        self.job_id = job_id
        self.schedule = schedule

    def first(self, since: datetime) -> datetime:
        """The first fire time at or after `since`; ValueError if the schedule never fires."""
        slot = slots.first_slot_firing_from(self.job_id, self.schedule, since)
        return slots.fire_time(self.job_id, self.schedule, slot)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        try:
            if previous_fire_time is None:
                return self.first(now)
            slot = slots.slot_of(self.schedule, previous_fire_time) or previous_fire_time
            following = schedules.next_fire_after(self.schedule, slot)
            return slots.fire_time(self.job_id, self.schedule, following)
        except ValueError as exc:  # validation rejects such schedules; never crash the loop
            log.error("schedule.no_next_fire", job_id=self.job_id, error=str(exc))
            return None

    def __str__(self) -> str:
        return f"slot[{self.schedule}]"


class SlotExecutor(ThreadPoolExecutor):  # type: ignore[misc]
    """Runs a job's function with the fire times the firing stands for (`fired=`), so the
    daemon accounts for each (APScheduler's own run_job would drop misfires and coalesced
    times without a word)."""

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        def done(future: concurrent.futures.Future[None]) -> None:
            exc = future.exception()
            if exc is not None:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, [])

        future = self._pool.submit(job.func, *job.args, fired=list(run_times))
        future.add_done_callback(done)


@dataclass(frozen=True)
class Verdict:
    """A slot that did not run and why, waiting to be written (not before `not_before`)."""

    job_id: str
    slot: datetime
    status: RunStatus
    reason: str
    not_before: datetime | None = None


def file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class Daemon:
    def __init__(
        self,
        config: Config,
        runner_for: Callable[[Job], Runner],
        clock: Clock,
        load_config: Callable[[], Config],
        config_path: Path,
        *,
        cancel: threading.Event,
        store: HistoryStore | None = None,
        draining: threading.Event | None = None,
        owner: str = "daemon",
        default_runner: Runner | None = None,
        on_run: Callable[[Job | None, Run], None] | None = None,
        on_missed: Callable[[str, list[datetime], str], None] | None = None,
    ) -> None:
        self.config = config
        self._store = store
        self._runner_for = runner_for
        self._cancel = cancel
        self._draining = draining or threading.Event()
        self.owner = owner
        self._default_runner = default_runner
        self._on_run = on_run  # notifications and metrics, after each recorded run
        self._on_missed = on_missed  # one notification per batch of missed slots
        self._db_lock = threading.Lock()
        self._db_checked_at = -1e9
        self._db_error: str | None = None
        self._ping_started: float | None = None  # a ping in progress, since (monotonic)
        self._ping_done = threading.Event()
        self.loop_beat = clock.monotonic()
        self._missing = False  # jobs.yaml is gone (said once)
        # skipped or missed slots not written yet (queued, waiting for their grace or for the
        # database), and per job how many were dropped because the queue was full
        self._unrecorded: list[Verdict] = []
        self._unrecorded_lock = threading.Lock()
        self._flushing = threading.Lock()
        self._dropped: dict[str, int] = {}
        self.unrecorded_dropped = 0
        self._live_from: dict[str, datetime] = {}  # per job, the first slot the schedule fires
        self._schedule_since: dict[str, datetime] = {}  # per job, when its schedule was applied
        self.clock = clock
        self._load_config = load_config
        self._path = config_path
        self._digest = file_digest(config_path)
        self.stop_event = threading.Event()
        self._reload_event = threading.Event()
        self._in_flight = 0
        self._in_flight_cond = threading.Condition()
        self._scheduler = BackgroundScheduler(
            timezone="UTC",
            executors={
                "default": SlotExecutor(max_workers=MAX_PARALLEL_RUNS),
                "internal": ThreadPoolExecutor(max_workers=INTERNAL_THREADS),
            },
            # Every fire time reaches the executor (no coalescing, no misfire check there):
            # _fire accounts for each with the daemon's clock.
            job_defaults={"coalesce": False, "max_instances": 1, "misfire_grace_time": None},
        )
        self._scheduler.add_listener(self._on_not_run, EVENT_JOB_MAX_INSTANCES)

    # --- scheduling -------------------------------------------------------------------------

    def _prepare(
        self, jobs: Mapping[str, Job], since: datetime
    ) -> dict[str, tuple[SlotTrigger, datetime]]:
        """Each job's trigger and first fire time, checked before anything is scheduled: a
        schedule that never fires is a configuration error (it must never reach APScheduler)."""
        prepared: dict[str, tuple[SlotTrigger, datetime]] = {}
        problems: list[Problem] = []
        for job_id, job in jobs.items():
            assert job.schedule is not None
            trigger = SlotTrigger(job_id, job.schedule)
            try:
                prepared[job_id] = (trigger, trigger.first(since))
            except ValueError as exc:
                problems.append(Problem(str(self._path), None, str(exc), job_id, "schedule"))
        if problems:
            raise ConfigError(problems)
        return prepared

    def _pending_slot(self, job: Job, now: datetime) -> datetime | None:
        """The slot a scheduled job waits to fire although its time has come (inside its
        jitter delay), if any."""
        scheduled = self._scheduler.get_job(job.id)
        if scheduled is None or scheduled.next_run_time is None or job.schedule is None:
            return None
        slot = slots.slot_of(job.schedule, scheduled.next_run_time)
        return slot if slot is not None and slot <= now else None

    def apply(self, new: Config, old: Config | None) -> dict[str, list[str]]:
        """Reschedule only what changed between two configurations. Every new trigger is
        checked first, so a rejected configuration changes nothing."""
        now = self.clock.now()
        before: Mapping[str, Job] = {j.id: j for j in (old.jobs if old else ()) if j.schedule}
        after: Mapping[str, Job] = {j.id: j for j in new.jobs if j.schedule}
        changed = {i: j for i, j in after.items() if i not in before or before[i] != j}
        prepared = self._prepare(changed, now)
        pending = {i: self._pending_slot(before[i], now) for i in changed if i in before}
        changes: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
        for job_id in before.keys() - after.keys():
            self._scheduler.remove_job(job_id)
            changes["removed"].append(job_id)
        self.config = new
        for job_id, (trigger, first) in prepared.items():
            self._scheduler.add_job(
                self._fire,
                trigger=trigger,
                id=job_id,
                name=job_id,
                args=[job_id],
                next_run_time=first,
                replace_existing=True,
            )
            if old is None:
                self._live_from[job_id] = slots.slot_of(trigger.schedule, first) or first
            self._schedule_since[job_id] = now
            changes["changed" if job_id in before else "added"].append(job_id)
            self._keep_pending(after[job_id], pending.get(job_id), first)
        if old is None:
            self._schedule_housekeeping()
        return changes

    def _keep_pending(self, job: Job, slot: datetime | None, first: datetime) -> None:
        """An edit inside a slot's jitter delay: the slot's time came under the old schedule,
        so it runs now unless the new schedule still fires it."""
        assert job.schedule is not None
        if slot is None:
            return
        first_slot = slots.slot_of(job.schedule, first) or first
        if slot >= first_slot and schedules.latest_slot(job.schedule, slot, _US) == slot:
            return  # the new schedule fires it
        log.info("reload.pending_slot_runs_now", job_id=job.id, scheduled_for=slot.isoformat())
        self._scheduler.add_job(
            self._fire_slot,
            args=[job.id, slot],
            id=f"__pending__:{job.id}",
            replace_existing=True,
        )

    def _schedule_housekeeping(self) -> None:
        """Housekeeping once a day (first a minute after start): prune history when jobs.yaml
        asks, and refresh the database's query statistics."""
        if self._scheduler.get_job(HOUSEKEEPING_JOB):
            self._scheduler.remove_job(HOUSEKEEPING_JOB)
        if self._store is None:
            return
        first = self.clock.now() + timedelta(seconds=HOUSEKEEPING_FIRST_S)
        trigger = SlotTrigger(HOUSEKEEPING_JOB, IntervalSchedule(every_s=HOUSEKEEPING_EVERY_S))
        self._scheduler.add_job(
            self.retain,
            trigger=trigger,
            id=HOUSEKEEPING_JOB,
            next_run_time=first,
            executor="internal",
            coalesce=True,
        )

    def retain(self) -> None:
        retention, store = self.config.retention, self._store
        if store is None:
            return
        try:
            store.maintenance.optimize()
        except SchedulerError as exc:
            log.warning("history.optimize_failed", error=str(exc))
        if retention is None:
            return
        cutoff = self.clock.now() - timedelta(seconds=retention.older_than_s)
        try:
            result = store.maintenance.prune(cutoff, retention.keep_last)
        except SchedulerError as exc:
            log.error("history.prune_failed", error=str(exc))
            return
        log.info(
            "history.pruned",
            runs=result.runs,
            tasks=result.tasks,
            operations=result.operations,
            events=result.events,
        )

    def _fire(self, job_id: str, fired: list[datetime] | None = None) -> None:
        """A firing: the fire times it stands for (APScheduler's; now when called by hand),
        each mapped to its slot. The newest slot within misfire_grace runs; the others are
        recorded `missed` with their reason."""
        job = self.config.job(job_id)
        if job is None or job.schedule is None:
            return
        now = self.clock.now()
        if fired is None:  # by hand: the newest slot fired by now
            latest = slots.latest_fired(job.id, job.schedule, now)
            fired = [latest] if latest is not None else []
        firing = slots.account(
            job.schedule, fired, now, job.misfire_grace_s, max_rows=MAX_MISSED_ROWS
        )
        missed = list(firing.missed)
        run = firing.run
        if run is not None and self.stop_event.is_set():
            # Stopping: not recorded, so the next start catches it up (a replica claims it).
            log.info("run.not_started_stopping", job_id=job.id, scheduled_for=run.isoformat())
            run = None
        for slot, reason in missed:
            self._buffer(job.id, slot, RunStatus.MISSED, reason)
        if run is not None:
            self._execute(job, RunTrigger.SCHEDULE, run)
        if missed:
            self.flush_unrecorded()

    def _fire_slot(
        self, job_id: str, slot: datetime, trigger: RunTrigger = RunTrigger.SCHEDULE, **_: Any
    ) -> None:
        """Run one given slot (a catch-up, or a slot kept across an edit)."""
        job = self.config.job(job_id)
        if job is None or job.schedule is None:
            return
        if self.stop_event.is_set():
            log.info("run.not_started_stopping", job_id=job.id, scheduled_for=slot.isoformat())
            return
        self._execute(job, trigger, slot)

    def _runner(self, job: Job) -> Runner | None:
        try:
            return self._runner_for(job)
        except KeyError:  # a company added to jobs.yaml after start has no client yet
            log.error(
                "run.unknown_company",
                job_id=job.id,
                company=job.company,
                action="restart to add it",
            )
            return None

    def _alive_after(self) -> datetime:
        beats = recovery.STALE_BEATS * self.config.daemon.heartbeat_s
        return self.clock.now() - timedelta(seconds=beats)

    def _execute(self, job: Job, trigger: RunTrigger, slot: datetime) -> None:
        """Claim and run one slot of a job, unless a run of it is still going anywhere. Every
        way this can end leaves the slot a row (a claimed run, or skipped/missed with why)."""
        runner = self._runner(job)
        if runner is None:
            self._record(
                job.id,
                slot,
                RunStatus.MISSED,
                f"the daemon has no API client for company {job.company!r} "
                "(added to jobs.yaml after start): restart the daemon",
            )
            return
        with self._in_flight_cond:
            self._in_flight += 1
        try:
            if self._store is not None:
                try:
                    busy = self._store.runs.running_run(job.id, self._alive_after())
                except StoreError as exc:
                    raise SlotNotClaimedError(str(exc)) from exc
                if busy is not None:
                    self._record(
                        job.id,
                        slot,
                        RunStatus.SKIPPED,
                        f"run {busy.run_id} of this job (by {busy.started_by}) was still running",
                    )
                    return
            run = runner.run(job, trigger, slot, self.config.revision)
            if run is not None:
                self._after_run(job, run)
        except SlotNotClaimedError as exc:
            log.error(
                "run.not_claimed", job_id=job.id, scheduled_for=slot.isoformat(), error=str(exc)
            )
            self._buffer(
                job.id, slot, RunStatus.MISSED, f"the history database was unreachable: {exc}"
            )
        except StoreError as exc:  # mid-run: its heartbeat stops, recovery finishes it later
            log.error(
                "run.history_unavailable",
                job_id=job.id,
                scheduled_for=slot.isoformat(),
                error=str(exc),
                action="left for recovery",
            )
            self._buffer(job.id, slot, RunStatus.MISSED, f"the history database failed: {exc}")
        except SchedulerError as exc:
            log.error("run.error", job_id=job.id, scheduled_for=slot.isoformat(), error=str(exc))
            self._record(job.id, slot, RunStatus.MISSED, f"the run could not start: {exc}")
        except Exception as exc:
            log.exception("run.crashed", job_id=job.id, scheduled_for=slot.isoformat())
            self._record(
                job.id, slot, RunStatus.MISSED, f"the daemon failed: {exc.__class__.__name__}"
            )
        finally:
            with self._in_flight_cond:
                self._in_flight -= 1
                self._in_flight_cond.notify_all()

    def _after_run(self, job: Job | None, run: Run) -> None:
        if self._on_run is None:
            return
        try:
            self._on_run(job, run)
        except StoreError as exc:  # the database is away: expected, no traceback
            log.warning("run.after_hook_failed", run_id=run.run_id, error=str(exc))
        except Exception:  # a notification or metric must never break the daemon
            log.exception("run.after_hook_failed", run_id=run.run_id)

    # --- slots that do not run: skipped, missed, caught up ---------------------------------------

    def _on_not_run(self, event: JobSubmissionEvent) -> None:
        """APScheduler did not submit a firing because the previous one still runs. Called on
        the scheduler's own thread: queue the rows, never wait for the database here."""
        job = self.config.job(event.job_id)
        if job is None or job.schedule is None:
            return
        for fired in getattr(event, "scheduled_run_times", None) or [event.scheduled_run_time]:
            slot = slots.slot_of(job.schedule, fired)
            if slot is not None:
                self._buffer(job.id, slot, RunStatus.SKIPPED, "the previous run was still running")

    def _missed(self, job_id: str, missed: list[datetime], reason: str) -> None:
        if self._on_missed is None:
            return
        try:
            self._on_missed(job_id, missed, reason)
        except Exception:
            log.exception("run.missed_hook_failed", job_id=job_id)

    def _record(self, job_id: str, slot: datetime, status: RunStatus, reason: str) -> None:
        """A slot that did not run, with its reason: queued, then written at once if the
        database answers (off the scheduler's thread only)."""
        self._buffer(job_id, slot, status, reason)
        self.flush_unrecorded()

    def _buffer(
        self,
        job_id: str,
        slot: datetime,
        status: RunStatus,
        reason: str,
        not_before: datetime | None = None,
    ) -> None:
        with self._unrecorded_lock:
            if len(self._unrecorded) >= UNRECORDED_BUFFER:
                dropped = self._unrecorded.pop(0)
                self._dropped[dropped.job_id] = self._dropped.get(dropped.job_id, 0) + 1
                self.unrecorded_dropped += 1
                log.error("history.buffer_full", dropped=self.unrecorded_dropped)
            self._unrecorded.append(Verdict(job_id, slot, status, reason, not_before))

    def _due(self, everything: bool) -> Verdict | None:
        now = self.clock.now()
        with self._unrecorded_lock:
            for verdict in self._unrecorded:
                if everything or verdict.not_before is None or verdict.not_before <= now:
                    return verdict
        return None

    def flush_unrecorded(self, *, everything: bool = False) -> int:
        """Write queued rows whose time has come (`everything`: all, at shutdown); return how
        many were written. Stops at the first database error: the rest wait for the next try.
        A row whose slot has a row already (another process claimed it) is not written."""
        if self._store is None or not self._flushing.acquire(blocking=False):
            return 0
        written = 0
        missed: dict[str, list[Run]] = {}
        try:
            while (verdict := self._due(everything)) is not None:
                reason = verdict.reason
                dropped = self._dropped.get(verdict.job_id, 0)
                if dropped:
                    reason += (
                        f" (and {dropped} earlier slot(s) of this job that could not be recorded:"
                        " the queue was full while the database was unreachable)"
                    )
                try:
                    run = self._store.runs.record_run(
                        verdict.job_id,
                        RunTrigger.SCHEDULE,
                        verdict.slot,
                        self.clock.now(),
                        status=verdict.status,
                        error=reason,
                    )
                except StoreError as exc:
                    log.warning("history.rows_waiting", rows=len(self._unrecorded), error=str(exc))
                    break
                with self._unrecorded_lock:
                    self._unrecorded.remove(verdict)
                    if dropped:
                        self._dropped[verdict.job_id] -= dropped
                written += 1
                if run is None:  # another process claimed (or recorded) this slot
                    log.info(
                        "run.already_claimed",
                        job_id=verdict.job_id,
                        scheduled_for=verdict.slot.isoformat(),
                        not_recorded=verdict.status.value,
                    )
                    continue
                log.warning(
                    f"run.{run.status.value}",
                    job_id=run.job_id,
                    scheduled_for=run.scheduled_for.isoformat(),
                    reason=reason,
                )
                self._after_run(self.config.job(run.job_id), run)
                if run.status is RunStatus.MISSED:
                    missed.setdefault(run.job_id, []).append(run)
        finally:
            self._flushing.release()
        for job_id, runs in missed.items():  # one notification per job and batch
            self._missed(job_id, [r.scheduled_for for r in runs], runs[-1].error or "missed")
        return written

    def catch_up(self) -> None:
        """Slots missed while no daemon ran (those before the live schedule's first slot): the
        newest one within the job's catch_up window runs now (trigger catch_up), once however
        many were missed; the others are recorded `missed` with their reason. They are found
        from the newest, so a long downtime costs no more than a short one. A `missed` row
        waits until the slot's misfire_grace has passed: a live replica may still run it. A
        job never run before has nothing to catch up."""
        store = self._store
        if store is None:
            return
        now = self.clock.now()
        for job in self.config.jobs:
            live_from = self._live_from.get(job.id)
            if job.schedule is None or live_from is None or self.stop_event.is_set():
                continue
            try:
                last = store.runs.last_slot(job.id)
            except StoreError as exc:
                log.error("catch_up.failed", job_id=job.id, error=str(exc))
                continue
            if last is None:
                continue
            found = slots.slots_between(job.schedule, last, live_from, MAX_MISSED_ROWS + 1)
            plan = slots.catch_up_plan(found, now, job.catch_up_s, max_rows=MAX_MISSED_ROWS)
            for slot, reason, coalesced in plan.missed:
                grace_ends = slots.fire_time(job.id, job.schedule, slot) + timedelta(
                    seconds=job.misfire_grace_s
                )
                not_before = None if coalesced else grace_ends
                self._buffer(job.id, slot, RunStatus.MISSED, reason, not_before)
            if plan.run is not None:
                log.info(
                    "catch_up.run",
                    job_id=job.id,
                    scheduled_for=plan.run.isoformat(),
                    missed=len(plan.missed) + found.older,
                )
                self._scheduler.add_job(
                    self._fire_slot,
                    args=[job.id, plan.run, RunTrigger.CATCH_UP],
                    id=f"__catch_up__:{job.id}",
                    replace_existing=True,
                )
        self.flush_unrecorded()

    def fill_gaps(self) -> None:
        """Slots between two recorded slots of a job that have no row of their own: the
        process that fired them died before it could record them (`kill -9` while the
        database was away and its rows waited in memory). Each is recorded `missed` once its
        misfire grace has passed (no live replica will run it then). Looks back GAP_LOOKBACK_S,
        at most MAX_MISSED_ROWS slots per job, newest first."""
        store = self._store
        if store is None:
            return
        now = self.clock.now()
        for job in self.config.jobs:
            if job.schedule is None or self.stop_event.is_set():
                continue
            # Only since the job's current schedule has been in force: since this process
            # applied it, or since the first slot any process claimed under this revision of
            # jobs.yaml (an edited schedule has slots between the old one's rows that were
            # never due); and only the newest slots of the lookback window.
            since = self._schedule_since.get(job.id, now)
            try:
                first = store.runs.first_slot_of_revision(job.id, self.config.revision)
                if first is not None and first < since:
                    since = first
                window = slots.slots_between(
                    job.schedule,
                    max(since, now - timedelta(seconds=GAP_LOOKBACK_S)) - timedelta(microseconds=1),
                    now,
                    MAX_MISSED_ROWS,
                )
                if not window.slots:
                    continue
                recorded = store.runs.recorded_slots(job.id, window.slots[0])
            except StoreError as exc:
                log.warning("gaps.not_checked", job_id=job.id, error=str(exc))
                continue
            if len(recorded) < 2:
                continue
            found = slots.slots_between(job.schedule, min(recorded), max(recorded), MAX_MISSED_ROWS)
            for slot in found.slots:
                if slot in recorded or self._buffered(job.id, slot):
                    continue
                grace_ends = slots.fire_time(job.id, job.schedule, slot) + timedelta(
                    seconds=job.misfire_grace_s
                )
                log.warning("slot.lost", job_id=job.id, scheduled_for=slot.isoformat())
                self._buffer(job.id, slot, RunStatus.MISSED, LOST_SLOT, grace_ends)
        self.flush_unrecorded()

    def _buffered(self, job_id: str, slot: datetime) -> bool:
        with self._unrecorded_lock:
            return any(v.job_id == job_id and v.slot == slot for v in self._unrecorded)

    def recover_orphans(self) -> None:
        """Adopt and finish runs whose process is gone (see recovery.py). Counted as work in
        flight, so that shutdown waits for it before the clients close."""
        if self._store is None or self.stop_event.is_set():
            return
        with self._in_flight_cond:
            self._in_flight += 1
        try:
            self._recover_orphans(self._store)
        finally:
            with self._in_flight_cond:
                self._in_flight -= 1
                self._in_flight_cond.notify_all()

    def _recover_orphans(self, store: HistoryStore) -> None:
        self.flush_unrecorded()
        try:
            finished = recovery.find_and_recover(
                store,
                self._runner_by_id,
                owner=self.owner,
                now=self.clock.now(),
                stale_before=self._alive_after(),
            )
        except SchedulerError as exc:
            log.error("recovery.failed", error=str(exc))
            return
        for run in finished:
            self._after_run(self.config.job(run.job_id), run)
        self.fill_gaps()

    def _runner_by_id(self, job_id: str) -> Runner | None:
        job = self.config.job(job_id)
        if job is not None:
            return self._runner(job)
        return self._default_runner

    # --- reload -------------------------------------------------------------------------------

    def reload(self) -> bool:
        digest = file_digest(self._path)
        if digest is None:
            if not self._missing:  # say it once, not every check
                self._missing = True
                log.warning(
                    "config.missing", path=str(self._path), action="keeping the last good schedule"
                )
                self._event(
                    "config_missing", f"{self._path} is gone; keeping the last good schedule"
                )
            return False
        self._missing = False
        if digest == self._digest:
            return False
        self._digest = digest
        old = self.config
        try:
            new = self._load_config()
            changes = self.apply(new, old)
        except ConfigError as exc:  # apply checks every trigger before changing anything
            for problem in exc.problems:
                log.error("config.invalid", problem=str(problem))
            log.error(
                "config.rejected", path=str(self._path), action="keeping the last good schedule"
            )
            self._event("config_rejected", "\n".join(str(p) for p in exc.problems))
            return False
        except Exception as exc:  # a bug must not take the daemon (or its schedule) down
            log.exception(
                "config.reload_failed",
                path=str(self._path),
                action="keeping the last good schedule",
            )
            self._restore(old)
            self._event(
                "config_rejected",
                f"reload failed ({exc.__class__.__name__}: {exc}); kept the last good schedule",
            )
            return False
        log.info("config.reloaded", revision=new.revision, **changes)
        summary = "; ".join(f"{k}: {', '.join(v)}" for k, v in changes.items() if v)
        self._event(
            "config_reloaded", f"revision {new.revision}" + (f"; {summary}" if summary else "")
        )
        return True

    def _restore(self, good: Config) -> None:
        """Put the last good schedule back after a reload failed half way."""
        self.config = good
        try:
            for scheduled in self._scheduler.get_jobs():
                if not scheduled.id.startswith("__") and good.job(scheduled.id) is None:
                    self._scheduler.remove_job(scheduled.id)
            now = self.clock.now()
            for job in good.jobs:
                if job.schedule is None:
                    continue
                scheduled = self._scheduler.get_job(job.id)
                if scheduled is not None and scheduled.trigger.schedule == job.schedule:
                    continue
                trigger = SlotTrigger(job.id, job.schedule)
                self._scheduler.add_job(
                    self._fire,
                    trigger=trigger,
                    id=job.id,
                    name=job.id,
                    args=[job.id],
                    next_run_time=trigger.first(now),
                    replace_existing=True,
                )
        except Exception:
            log.exception("config.restore_failed")

    def _event(self, kind: str, detail: str) -> None:
        """Record what the daemon did in history (best effort: the log has it too)."""
        if self._store is None:
            return
        try:
            self._store.events.record_daemon_event(self.owner, kind, detail, self.clock.now())
        except StoreError as exc:
            log.warning("daemon.event_not_recorded", kind=kind, error=str(exc))

    # --- the main loop ----------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self._reload_event.set()
            return
        if self.stop_event.is_set():
            # Every row is written as it happens, so the history is consistent as it stands:
            # running runs are recovered by the next daemon once their heartbeat is stale.
            log.warning("daemon.forced_exit", signal=signal.Signals(signum).name)
            os._exit(130)
        log.info("daemon.stopping", signal=signal.Signals(signum).name)
        self.stop_event.set()
        self._reload_event.set()  # wake the loop: shutdown begins at once

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    def next_fire_times(self) -> dict[str, str]:
        return {
            job.id: job.next_run_time.isoformat() if job.next_run_time else "paused"
            for job in self._scheduler.get_jobs()
        }

    def start(self, *, paused: bool = False) -> None:
        """Build the schedule before anything can fire (start paused, add jobs, resume); then
        recover orphaned runs and catch up missed slots, in the background. The daemon's own
        duties run on their own threads and always run, however late (never behind the runs).
        A schedule that never fires is a ConfigError, before anything is scheduled."""
        self._prepare({j.id: j for j in self.config.jobs if j.schedule}, self.clock.now())
        self._scheduler.start(paused=True)
        # Slots that fire from here on are the live schedule's; catch-up looks at those before.
        self.apply(self.config, None)
        if self._store is not None:
            # Look for orphans as often as a run can become one (4 heartbeats), at most a minute.
            beats = recovery.STALE_BEATS * self.config.daemon.heartbeat_s
            duties: list[tuple[str, Callable[[], object], float | None]] = [
                (RECOVERY_JOB, self.recover_orphans, max(1.0, min(RECOVERY_EVERY_S, beats))),
                ("__catch_up__", self.catch_up, None),
                (FLUSH_JOB, self.flush_unrecorded, FLUSH_EVERY_S),
            ]
            for job_id, duty, every_s in duties:
                # The row writer may wait for the database: a second one returns at once.
                instances = 2 if job_id == FLUSH_JOB else 1
                self._scheduler.add_job(
                    duty,
                    trigger=SlotTrigger(job_id, IntervalSchedule(every_s=every_s))
                    if every_s
                    else None,
                    id=job_id,
                    next_run_time=self.clock.now(),
                    executor="internal",
                    coalesce=True,
                    max_instances=instances,
                )
        if not paused:
            self._scheduler.resume()

    def scheduled_jobs(self, *, internal: bool = False) -> list[str]:
        """The ids of scheduled jobs.yaml jobs (with `internal`, housekeeping too)."""
        ids = (job.id for job in self._scheduler.get_jobs())
        return sorted(i for i in ids if internal or not i.startswith("__"))

    def run_forever(self) -> None:
        self.start()
        log.info("daemon.started", revision=self.config.revision, jobs=self.next_fire_times())
        self._event("started", f"revision {self.config.revision}, {len(self.config.jobs)} job(s)")
        while not self.stop_event.is_set():
            self.loop_beat = self.clock.monotonic()
            if self._reload_event.wait(RELOAD_CHECK_S):
                self._reload_event.clear()
            if not self.stop_event.is_set():
                self.reload()
        self.shutdown()

    def loop_alive(self) -> bool:
        return self.clock.monotonic() - self.loop_beat < 3 * RELOAD_CHECK_S + 5

    def health(self) -> tuple[bool, str]:
        """(healthy, why), within DB_ANSWER_S whatever the database does: the scheduler loop
        ticks and the database answers. The database is pinged on a thread of its own at most
        every few seconds (so scrapes never hammer it); a ping not answered within DB_ANSWER_S
        (a locked SQLite file, an unreachable PostgreSQL) makes the check fail at once."""
        problems = []
        if not self.loop_alive() or not self._scheduler.running:
            problems.append("the scheduler loop is not running")
        db_error = self._database_problem()
        if db_error is not None:
            problems.append(f"the history database is unreachable: {db_error}")
        waiting = len(self._unrecorded)
        note = f"; {waiting} row(s) wait for the database" if waiting else ""
        return (not problems, ("; ".join(problems) or "ok") + note)

    def _database_problem(self) -> str | None:
        store = self._store
        if store is None:
            return None
        with self._db_lock:
            now = self.clock.monotonic()
            if self._ping_started is None and now - self._db_checked_at > DB_CHECK_EVERY_S:
                self._ping_started = now
                self._ping_done.clear()
                threading.Thread(target=self._ping, args=(store,), daemon=True).start()
            started = self._ping_started
        if started is not None:
            self._ping_done.wait(max(0.0, started + DB_ANSWER_S - self.clock.monotonic()))
        with self._db_lock:
            if self._ping_started is not None:
                waited = self.clock.monotonic() - self._ping_started
                if waited >= DB_ANSWER_S:
                    return f"no answer to a ping for {waited:.0f}s"
            return self._db_error

    def _ping(self, store: HistoryStore) -> None:
        try:
            store.maintenance.ping()
            error = None
        except StoreError as exc:
            error = str(exc)
        except Exception as exc:  # never leave a ping "in progress" for ever
            error = f"{exc.__class__.__name__}: {exc}"
        with self._db_lock:
            self._db_error, self._db_checked_at = error, self.clock.monotonic()
            self._ping_started = None
            self._ping_done.set()

    def _wait_in_flight(self, seconds: float) -> int:
        deadline = self.clock.monotonic() + seconds
        with self._in_flight_cond:
            while self._in_flight and (left := deadline - self.clock.monotonic()) > 0:
                self._in_flight_cond.wait(left)
            return self._in_flight

    def shutdown(self, timeout_s: float | None = None) -> None:
        """Stop firing and starting tasks; let running tasks finish within the timeout; then
        cancel: every wait (rate budget, polls, locks, retries) ends at once and runs record
        where they are (recovery follows their operations). Returns once every run and recovery
        has stopped (a request already sent may take up to the client's timeout), so that the
        caller closes the HTTP clients last."""
        if not self._scheduler.running:
            return
        timeout = self.config.daemon.shutdown_timeout_s if timeout_s is None else timeout_s
        self._scheduler.pause()
        self._draining.set()
        unfinished = self._wait_in_flight(timeout)
        if unfinished:
            log.warning("daemon.cancelling_runs", runs=unfinished, after_s=timeout)
        self._cancel.set()  # also when nothing runs: a firing that starts now stops at once
        if unfinished:
            unfinished = self._wait_in_flight(CANCEL_GRACE_S + self.config.kinsta.timeout_s)
        self.flush_unrecorded(everything=True)
        self._scheduler.shutdown(wait=False)
        log.info("daemon.stopped", unfinished_runs=unfinished)
        self._event("stopped", f"{unfinished} run(s) left for recovery" if unfinished else "clean")


def load_for_daemon(
    path: Path, env: Mapping[str, str], database: str | None, sandbox: bool
) -> Callable[[], Config]:
    def load() -> Config:
        return config_module.load(
            path, env, database_override=database, require_api_key=not sandbox, sandbox=sandbox
        )

    return load
