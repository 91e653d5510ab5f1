"""The daemon: APScheduler 3.11 wiring, hot reload, signals. APScheduler is used here only
(and its cron field parser in schedules.py).

- A BackgroundScheduler in UTC with an in-memory job store rebuilt from jobs.yaml: the file is the
  source of truth; everything that must survive a restart lives in our own tables.
- Fire times come from schedules.py (crontab semantics, DST rules, anchored intervals) through
  SlotTrigger; a firing works out its un-jittered slot and claims (job, slot) in the history
  database before doing anything, so a slot runs once across processes and restarts.
- jobs.yaml is re-read when its content changes (checked every RELOAD_CHECK_S) or on SIGHUP. An
  invalid file keeps the last good schedule. Only changed jobs are rescheduled.
- On start, and every RECOVERY_EVERY_S, runs whose process is gone are recovered (recovery.py);
  slots missed while no daemon ran are caught up (one run, coalesced, when within the job's
  `catch_up` window) or recorded `missed`.
- A slot whose job is still running (here or in another process) is recorded `skipped`.
- SIGTERM/SIGINT: stop firing, start no new task, let running tasks finish within
  `daemon.shutdown_timeout`, then stop polling; exit 0. A second signal exits at once.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import threading
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType

import structlog
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from scheduler import config as config_module
from scheduler import recovery, schedules
from scheduler.clock import Clock
from scheduler.domain import Config, IntervalSchedule, Job, Run, RunStatus, RunTrigger, Schedule
from scheduler.errors import ConfigError, SchedulerError, SlotNotClaimedError, StoreError
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
MAX_CATCH_UP_SCAN = 10_000  # slots looked at per job after a long downtime
MAX_MISSED_ROWS = 100  # missed slots recorded one by one per job; older ones are counted
DB_CHECK_EVERY_S = 5.0
UNRECORDED_BUFFER = 1_000  # skipped or missed slots kept while the database is unreachable


class SlotTrigger(BaseTrigger):  # type: ignore[misc]
    """APScheduler trigger over schedules.next_fire_after, with non-negative jitter on top."""

    def __init__(self, schedule: Schedule, rng: random.Random | None = None) -> None:
        self.schedule = schedule
        self._rng = rng or random.Random()

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        after = (
            previous_fire_time
            if previous_fire_time is not None
            else now - timedelta(microseconds=1)
        )
        slot = schedules.next_fire_after(self.schedule, after)
        if self.schedule.jitter_s:
            return slot + timedelta(seconds=self._rng.uniform(0, self.schedule.jitter_s))
        return slot

    def __str__(self) -> str:
        return f"slot[{self.schedule}]"


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
        self._db_checked: tuple[float, str | None] = (-1e9, None)
        self.loop_beat = clock.monotonic()
        self._started_at: datetime | None = None
        self._missing = False  # jobs.yaml is gone (said once)
        # (job id, slot, status, reason) not yet recorded because the database was unreachable
        self._unrecorded: deque[tuple[str, datetime, RunStatus, str]] = deque(
            maxlen=UNRECORDED_BUFFER
        )
        self.unrecorded_dropped = 0
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
            executors={"default": ThreadPoolExecutor(max_workers=MAX_PARALLEL_RUNS)},
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        self._scheduler.add_listener(self._on_not_run, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)

    # --- scheduling -------------------------------------------------------------------------

    def _add(self, job: Job) -> None:
        assert job.schedule is not None
        self._scheduler.add_job(
            self._fire,
            trigger=SlotTrigger(job.schedule),
            id=job.id,
            name=job.id,
            args=[job.id],
            misfire_grace_time=int(max(1, job.misfire_grace_s)),
            replace_existing=True,
        )

    def apply(self, new: Config, old: Config | None) -> dict[str, list[str]]:
        """Reschedule only what changed between two configurations."""
        before: Mapping[str, Job] = {j.id: j for j in (old.jobs if old else ()) if j.schedule}
        after: Mapping[str, Job] = {j.id: j for j in new.jobs if j.schedule}
        changes: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
        for job_id in before.keys() - after.keys():
            self._scheduler.remove_job(job_id)
            changes["removed"].append(job_id)
        for job_id, job in after.items():
            if job_id not in before:
                self._add(job)
                changes["added"].append(job_id)
            elif before[job_id] != job:
                self._add(job)
                changes["changed"].append(job_id)
        if old is None:
            self._schedule_housekeeping()
        self.config = new
        return changes

    def _schedule_housekeeping(self) -> None:
        """Housekeeping once a day (first a minute after start): prune history when jobs.yaml
        asks, and refresh the database's query statistics."""
        if self._scheduler.get_job(HOUSEKEEPING_JOB):
            self._scheduler.remove_job(HOUSEKEEPING_JOB)
        if self._store is None:
            return
        first = self.clock.now() + timedelta(seconds=HOUSEKEEPING_FIRST_S)
        trigger = SlotTrigger(IntervalSchedule(every_s=HOUSEKEEPING_EVERY_S))
        self._scheduler.add_job(
            self.retain, trigger=trigger, id=HOUSEKEEPING_JOB, next_run_time=first
        )

    def retain(self) -> None:
        retention, store = self.config.retention, self._store
        if store is None:
            return
        try:
            store.optimize()
        except SchedulerError as exc:
            log.warning("history.optimize_failed", error=str(exc))
        if retention is None:
            return
        cutoff = self.clock.now() - timedelta(seconds=retention.older_than_s)
        try:
            result = store.prune(cutoff, retention.keep_last)
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

    def _slot_of(self, job: Job, fired_at: datetime) -> datetime | None:
        assert job.schedule is not None
        lookback = timedelta(seconds=job.schedule.jitter_s + job.misfire_grace_s + 1)
        return schedules.latest_slot(job.schedule, fired_at, lookback)

    def _fire(self, job_id: str) -> None:
        job = self.config.job(job_id)
        if job is None or job.schedule is None or self.stop_event.is_set():
            return
        now = self.clock.now()
        slot = self._slot_of(job, now)
        if slot is None:
            log.warning("run.no_slot", job_id=job_id, at=now.isoformat())
            return
        self._execute(job, RunTrigger.SCHEDULE, slot)

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
        """Claim and run one slot of a job, unless a run of it is still going anywhere."""
        runner = self._runner(job)
        if runner is None:
            return
        with self._in_flight_cond:
            self._in_flight += 1
        try:
            if self._store is not None:
                try:
                    busy = self._store.running_run(job.id, self._alive_after())
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
        except SchedulerError as exc:
            log.error("run.error", job_id=job.id, scheduled_for=slot.isoformat(), error=str(exc))
        except Exception:
            log.exception("run.crashed", job_id=job.id, scheduled_for=slot.isoformat())
        finally:
            with self._in_flight_cond:
                self._in_flight -= 1
                self._in_flight_cond.notify_all()

    def _after_run(self, job: Job | None, run: Run) -> None:
        if self._on_run is None:
            return
        try:
            self._on_run(job, run)
        except Exception:  # a notification or metric must never break the daemon
            log.exception("run.after_hook_failed", run_id=run.run_id)

    # --- slots that do not run: skipped, missed, caught up ---------------------------------------

    def _on_not_run(self, event: JobSubmissionEvent) -> None:
        """APScheduler did not run a firing: the previous one still runs (max instances), or it
        came later than misfire_grace (the host was suspended or overloaded)."""
        job = self.config.job(event.job_id)
        if job is None or job.schedule is None:
            return
        for fired in getattr(event, "scheduled_run_times", None) or [event.scheduled_run_time]:
            slot = self._slot_of(job, fired)
            if slot is None:
                continue
            if event.code == EVENT_JOB_MAX_INSTANCES:
                self._record(job.id, slot, RunStatus.SKIPPED, "the previous run was still running")
            else:
                reason = f"fired more than misfire_grace ({job.misfire_grace_s:g}s) late"
                if self._record(job.id, slot, RunStatus.MISSED, reason) is not None:
                    self._missed(job.id, [slot], reason)

    def _missed(self, job_id: str, slots: list[datetime], reason: str) -> None:
        if self._on_missed is None:
            return
        try:
            self._on_missed(job_id, slots, reason)
        except Exception:
            log.exception("run.missed_hook_failed", job_id=job_id)

    def _record(self, job_id: str, slot: datetime, status: RunStatus, reason: str) -> Run | None:
        """A slot that did not run, with its reason; buffered while the database is down."""
        if self._store is None:
            return None
        try:
            run = self._store.record_run(
                job_id, RunTrigger.SCHEDULE, slot, self.clock.now(), status=status, error=reason
            )
        except StoreError as exc:
            self._buffer(job_id, slot, status, f"{reason} (recorded late: {exc})")
            return None
        if run is not None:
            log.warning(
                f"run.{status.value}", job_id=job_id, scheduled_for=slot.isoformat(), reason=reason
            )
            self._after_run(self.config.job(job_id), run)
        return run

    def _buffer(self, job_id: str, slot: datetime, status: RunStatus, reason: str) -> None:
        if len(self._unrecorded) == self._unrecorded.maxlen:
            self.unrecorded_dropped += 1
            log.error("history.buffer_full", dropped=self.unrecorded_dropped)
        self._unrecorded.append((job_id, slot, status, reason))

    def flush_unrecorded(self) -> int:
        """Record what waited for the database; return how many rows were written."""
        written = 0
        while self._unrecorded and self._store is not None:
            job_id, slot, status, reason = self._unrecorded[0]
            try:
                self._store.record_run(
                    job_id, RunTrigger.SCHEDULE, slot, self.clock.now(), status=status, error=reason
                )
            except StoreError:
                return written
            self._unrecorded.popleft()
            written += 1
        return written

    def catch_up(self) -> None:
        """Slots missed while no daemon ran: the newest one within the job's catch_up window
        runs now (trigger catch_up), once however many were missed; the others are recorded
        `missed` with their reason. A job never run before has nothing to catch up."""
        store = self._store
        if store is None:
            return
        # Only slots before the live schedule started: later ones are fired by it (catching
        # them up too would race it for the claim).
        now = self._started_at or self.clock.now()
        for job in self.config.jobs:
            if job.schedule is None or self.stop_event.is_set():
                continue
            try:
                last = store.last_slot(job.id)
            except StoreError as exc:
                log.error("catch_up.failed", job_id=job.id, error=str(exc))
                continue
            if last is None:
                continue
            slots: list[datetime] = []
            moment = last
            while len(slots) < MAX_CATCH_UP_SCAN:
                moment = schedules.next_fire_after(job.schedule, moment)
                if moment >= now:
                    break
                slots.append(moment)
            if not slots:
                continue
            window = job.catch_up_s
            recent = [
                s for s in slots if window is not None and (now - s).total_seconds() <= window
            ]
            chosen = recent[-1] if recent else None
            missed = [s for s in slots if s != chosen]
            truncated = len(slots) == MAX_CATCH_UP_SCAN
            self._record_missed(job, missed, chosen, set(recent), truncated=truncated)
            if chosen is not None:
                log.info(
                    "catch_up.run",
                    job_id=job.id,
                    scheduled_for=chosen.isoformat(),
                    missed=len(missed),
                )
                self._scheduler.add_job(
                    self._execute,
                    args=[job, RunTrigger.CATCH_UP, chosen],
                    id=f"__catch_up__:{job.id}",
                    replace_existing=True,
                    misfire_grace_time=None,
                )

    def _record_missed(
        self,
        job: Job,
        missed: list[datetime],
        chosen: datetime | None,
        recent: set[datetime],
        *,
        truncated: bool,
    ) -> None:
        if not missed:
            return
        window = (
            "catch_up is off"
            if job.catch_up_s is None
            else f"older than catch_up ({job.catch_up_s:g}s)"
        )
        listed = missed[-MAX_MISSED_ROWS:]
        unlisted = len(missed) - len(listed)
        for index, slot in enumerate(listed):
            if chosen is not None and slot in recent:
                reason = (
                    "missed while no daemon ran; coalesced into the catch-up run of "
                    + chosen.isoformat()
                )
            else:
                reason = f"missed while no daemon ran; {window}"
            if index == 0 and (unlisted or truncated):
                reason += (
                    f" (and {unlisted}{'+' if truncated else ''} older missed slot(s) not listed)"
                )
            self._record(job.id, slot, RunStatus.MISSED, reason)
        summary = "missed while no daemon ran" + (
            f"; the latest runs now (catch-up of {chosen.isoformat()})" if chosen else ""
        )
        self._missed(job.id, missed, summary)

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
        try:
            new = self._load_config()
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("config.invalid", problem=str(problem))
            log.error(
                "config.rejected", path=str(self._path), action="keeping the last good schedule"
            )
            self._event("config_rejected", "\n".join(str(p) for p in exc.problems))
            return False
        changes = self.apply(new, self.config)
        log.info("config.reloaded", revision=new.revision, **changes)
        summary = "; ".join(f"{k}: {', '.join(v)}" for k, v in changes.items() if v)
        self._event(
            "config_reloaded", f"revision {new.revision}" + (f"; {summary}" if summary else "")
        )
        return True

    def _event(self, kind: str, detail: str) -> None:
        """Record what the daemon did in history (best effort: the log has it too)."""
        if self._store is None:
            return
        try:
            self._store.record_daemon_event(self.owner, kind, detail, self.clock.now())
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
        recover orphaned runs and catch up missed slots, in the background."""
        self._scheduler.start(paused=True)
        # Slots from here on are the live schedule's; catch-up looks only at those before.
        self._started_at = self.clock.now()
        self.apply(self.config, None)
        if self._store is not None:
            # Look for orphans as often as a run can become one (4 heartbeats), at most a minute.
            beats = recovery.STALE_BEATS * self.config.daemon.heartbeat_s
            self._scheduler.add_job(
                self.recover_orphans,
                trigger=SlotTrigger(
                    IntervalSchedule(every_s=max(1.0, min(RECOVERY_EVERY_S, beats)))
                ),
                id=RECOVERY_JOB,
                next_run_time=self.clock.now(),
            )
            self._scheduler.add_job(
                self.catch_up, id="__catch_up__", next_run_time=self.clock.now()
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
            self.reload()
        self.shutdown()

    def loop_alive(self) -> bool:
        return self.clock.monotonic() - self.loop_beat < 3 * RELOAD_CHECK_S + 5

    def health(self) -> tuple[bool, str]:
        """(healthy, why): the scheduler loop ticks and the database answers (checked at most
        every few seconds, so scrapes never hammer it)."""
        problems = []
        if not self.loop_alive() or not self._scheduler.running:
            problems.append("the scheduler loop is not running")
        now = self.clock.monotonic()
        checked_at, db_error = self._db_checked
        if self._store is not None and now - checked_at > DB_CHECK_EVERY_S:
            try:
                self._store.ping()
                db_error = None
            except StoreError as exc:
                db_error = str(exc)
            self._db_checked = (now, db_error)
        if db_error is not None:
            problems.append(f"the history database is unreachable: {db_error}")
        waiting = len(self._unrecorded)
        note = f"; {waiting} row(s) wait for the database" if waiting else ""
        return (not problems, ("; ".join(problems) or "ok") + note)

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
        self.flush_unrecorded()
        self._scheduler.shutdown(wait=False)
        log.info("daemon.stopped", unfinished_runs=unfinished)
        self._event("stopped", f"{unfinished} run(s) left for recovery" if unfinished else "clean")


def load_for_daemon(
    path: Path, env: Mapping[str, str], database: str | None, sandbox: bool
) -> Callable[[], Config]:
    def load() -> Config:
        return config_module.load(
            path, env, database_override=database, require_api_key=not sandbox
        )

    return load
