"""The daemon: APScheduler 3.11 wiring, hot reload, signals. APScheduler is used here only
(and its cron field parser in schedules.py).

- A BackgroundScheduler in UTC with an in-memory job store rebuilt from jobs.yaml: the file is the
  source of truth; everything that must survive a restart lives in our own tables.
- Fire times come from schedules.py (crontab semantics, DST rules, anchored intervals) through
  SlotTrigger; a firing works out its un-jittered slot and claims (job, slot) in the history
  database before doing anything, so a slot runs once across processes and restarts.
- jobs.yaml is re-read when its content changes (checked every RELOAD_CHECK_S) or on SIGHUP. An
  invalid file keeps the last good schedule. Only changed jobs are rescheduled.
- SIGTERM/SIGINT: stop firing, signal runs to stop polling, wait up to SHUTDOWN_TIMEOUT_S.
"""

from __future__ import annotations

import hashlib
import random
import signal
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from scheduler import config as config_module
from scheduler import schedules
from scheduler.clock import Clock
from scheduler.domain import Config, IntervalSchedule, Job, RunTrigger, Schedule
from scheduler.errors import ConfigError, SchedulerError
from scheduler.history import HistoryStore
from scheduler.runner import Runner

log = structlog.get_logger("scheduler.daemon")

RELOAD_CHECK_S = 2.0
RETENTION_JOB = "__housekeeping__"  # not a valid jobs.yaml id, so it never collides
RETENTION_EVERY_S = 86_400.0
RETENTION_FIRST_S = 60.0
SHUTDOWN_TIMEOUT_S = 30.0
MAX_PARALLEL_RUNS = 20


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
    ) -> None:
        self.config = config
        self._store = store
        self._runner_for = runner_for
        self._cancel = cancel
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
        if self._scheduler.get_job(RETENTION_JOB):
            self._scheduler.remove_job(RETENTION_JOB)
        if self._store is None:
            return
        first = self.clock.now() + timedelta(seconds=RETENTION_FIRST_S)
        trigger = SlotTrigger(IntervalSchedule(every_s=RETENTION_EVERY_S))
        self._scheduler.add_job(self.retain, trigger=trigger, id=RETENTION_JOB, next_run_time=first)

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
            "history.pruned", runs=result.runs, tasks=result.tasks, operations=result.operations
        )

    def _fire(self, job_id: str) -> None:
        job = self.config.job(job_id)
        if job is None or job.schedule is None or self.stop_event.is_set():
            return
        now = self.clock.now()
        lookback = timedelta(seconds=job.schedule.jitter_s + job.misfire_grace_s + 1)
        slot = schedules.latest_slot(job.schedule, now, lookback)
        if slot is None:
            log.warning("run.no_slot", job_id=job_id, at=now.isoformat())
            return
        try:
            runner = self._runner_for(job)
        except KeyError:  # a company added to jobs.yaml after start has no client yet
            log.error(
                "run.unknown_company",
                job_id=job_id,
                company=job.company,
                action="restart to add it",
            )
            return
        with self._in_flight_cond:
            self._in_flight += 1
        try:
            runner.run(job, RunTrigger.SCHEDULE, slot, self.config.revision)
        except SchedulerError as exc:
            log.error("run.error", job_id=job_id, scheduled_for=slot.isoformat(), error=str(exc))
        except Exception:
            log.exception("run.crashed", job_id=job_id, scheduled_for=slot.isoformat())
        finally:
            with self._in_flight_cond:
                self._in_flight -= 1
                self._in_flight_cond.notify_all()

    # --- reload -------------------------------------------------------------------------------

    def reload(self) -> bool:
        digest = file_digest(self._path)
        if digest is None:
            log.warning(
                "config.missing", path=str(self._path), action="keeping the last good schedule"
            )
            return False
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
            return False
        changes = self.apply(new, self.config)
        log.info("config.reloaded", revision=new.revision, **changes)
        return True

    # --- the main loop ----------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self._reload_event.set()
            return
        if self.stop_event.is_set():
            log.warning("daemon.forced_exit", signal=signal.Signals(signum).name)
            raise SystemExit(130)
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
        """Build the schedule before anything can fire (start paused, add jobs, resume)."""
        self._scheduler.start(paused=True)
        self.apply(self.config, None)
        if not paused:
            self._scheduler.resume()

    def scheduled_jobs(self, *, internal: bool = False) -> list[str]:
        """The ids of scheduled jobs.yaml jobs (with `internal`, housekeeping too)."""
        ids = (job.id for job in self._scheduler.get_jobs())
        return sorted(i for i in ids if internal or not i.startswith("__"))

    def run_forever(self) -> None:
        self.start()
        log.info("daemon.started", revision=self.config.revision, jobs=self.next_fire_times())
        while not self.stop_event.is_set():
            if self._reload_event.wait(RELOAD_CHECK_S):
                self._reload_event.clear()
            self.reload()
        self.shutdown()

    def shutdown(self, timeout_s: float = SHUTDOWN_TIMEOUT_S) -> None:
        if not self._scheduler.running:
            return
        self._scheduler.pause()
        self._cancel.set()  # runs stop polling and record where they are
        deadline = self.clock.monotonic() + timeout_s
        with self._in_flight_cond:
            while self._in_flight and (left := deadline - self.clock.monotonic()) > 0:
                self._in_flight_cond.wait(left)
            unfinished = self._in_flight
        self._scheduler.shutdown(wait=False)
        log.info("daemon.stopped", unfinished_runs=unfinished)


def load_for_daemon(
    path: Path, env: Mapping[str, str], database: str | None, sandbox: bool
) -> Callable[[], Config]:
    def load() -> Config:
        return config_module.load(
            path, env, database_override=database, require_api_key=not sandbox
        )

    return load
