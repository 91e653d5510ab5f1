"""The daemon's orchestrator: start, fire, catch up, recover, reload, shut down (what it
promises is in the package's docstring). Its parts: wiring.py (APScheduler), jobs.py (what a
reload changes), reload.py (watching jobs.yaml), outbox.py (rows waiting for the database),
backlog.py (catch-up and the gap check), runs.py (claiming and running a slot), health.py; the
decisions are pure functions in slots.py.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from scheduler import recovery, slots
from scheduler.clock import Clock
from scheduler.domain import Config, Job, Run, RunStatus, RunTrigger
from scheduler.errors import ConfigError, Problem, SchedulerError
from scheduler.events import Bus, DaemonActed, SlotsMissed
from scheduler.history import HistoryStore
from scheduler.runner import OnDemand, Runner

from . import health, jobs, overlap
from .backlog import MAX_MISSED_ROWS, Backlog, queue_unrun
from .holds import PAUSES_EVERY_S, Holds
from .outbox import Outbox
from .reload import ConfigWatcher
from .runs import SlotRuns, published_runs
from .wiring import Timetable, first_fire

log = structlog.get_logger("scheduler.daemon")

RELOAD_CHECK_S = 2.0
HOUSEKEEPING_JOB = "__housekeeping__"  # not a valid jobs.yaml id, so it never collides
HOUSEKEEPING_EVERY_S = 86_400.0
HOUSEKEEPING_FIRST_S = 60.0
CANCEL_GRACE_S = 5.0  # after cancelling, how long runs get to record where they are
RECOVERY_JOB = "__recovery__"
RECOVERY_EVERY_S = 60.0
CATCH_UP_JOB = "__catch_up__"
FLUSH_JOB = "__flush__"
FLUSH_EVERY_S = 1.0
PAUSES_JOB = "__pauses__"


@dataclass(frozen=True)
class Collaborators:
    """What a daemon is built from. `runner_for(job)` raises KeyError for a company without an
    API client; `load_config` re-reads `config_path`; `cancel` ends every wait at shutdown and
    `draining` stops new tasks; `default_runner` recovers runs of jobs gone from jobs.yaml;
    `bus` hears what the daemon does: each recorded run (RunFinished), each batch of missed
    slots (SlotsMissed), starts, stops and reloads (DaemonActed); metrics, notifications and
    history's event log subscribe to it."""

    store: HistoryStore
    runner_for: Callable[[Job], Runner]
    clock: Clock
    load_config: Callable[[], Config]
    config_path: Path
    cancel: threading.Event
    draining: threading.Event = field(default_factory=threading.Event)
    owner: str = "daemon"
    default_runner: Runner | None = None
    bus: Bus = field(default_factory=Bus)


class Daemon:
    def __init__(self, config: Config, parts: Collaborators) -> None:
        self.config = config
        self.clock = parts.clock
        self.owner = parts.owner
        self._store = parts.store
        self._parts = parts
        self._after_run = published_runs(parts.store, parts.bus.publish)
        self.stop_event = threading.Event()
        self._reload_event = threading.Event()
        self.outbox = Outbox(parts.store, parts.clock, self._recorded, self._missed)
        self.holds = Holds(parts.store, parts.clock, self._config)
        self.runs = SlotRuns(
            parts.store,
            parts.clock,
            parts.runner_for,
            self.outbox,
            config=self._config,
            after_run=self._after_run,
            decided=self._event,
            stop=self._parts.draining,  # set as shutdown begins, however it was asked
            holds=self.holds,
        )
        self.backlog = Backlog(parts.store, self.outbox, self._catch_up_run, self.stop_event)
        self.watcher = ConfigWatcher(parts.config_path, parts.load_config, self._event)
        self.beat = health.LoopBeat(parts.clock, 3 * RELOAD_CHECK_S + 5)
        self.ping = health.DatabasePing(parts.store, parts.clock)
        self.timetable = Timetable(self._not_run)

    def _config(self) -> Config:
        return self.config

    # --- scheduling -------------------------------------------------------------------------

    def _prepare(self, changed: Mapping[str, Job], since: datetime) -> dict[str, datetime]:
        """Each job's first fire time, checked before anything is scheduled: a schedule that
        never fires is a configuration error (it must never reach APScheduler)."""
        prepared: dict[str, datetime] = {}
        problems: list[Problem] = []
        for job_id, job in changed.items():
            assert job.schedule is not None
            try:
                prepared[job_id] = first_fire(job_id, job.schedule, since)
            except ValueError as exc:
                path = str(self.watcher.path)
                problems.append(Problem(path, None, str(exc), job_id, "schedule"))
        if problems:
            raise ConfigError(problems)
        return prepared

    def _pending_slot(self, job: Job, now: datetime) -> datetime | None:
        """The slot a scheduled job waits to fire although its time has come (inside its
        jitter delay), if any."""
        fire = self.timetable.next_fire(job.id)
        if fire is None or job.schedule is None:
            return None
        slot = slots.slot_of(job.schedule, fire)
        return slot if slot is not None and slot <= now else None

    def apply(self, new: Config, old: Config | None) -> dict[str, list[str]]:
        """Reschedule only what changed between two configurations. Every new trigger is
        checked first, so a rejected configuration changes nothing."""
        now = self.clock.now()
        changes = jobs.diff(old, new)
        prepared = self._prepare(changes.changed, now)
        before = changes.before
        pending = {i: self._pending_slot(before[i], now) for i in changes.changed if i in before}
        for job_id in changes.removed:
            self.timetable.remove(job_id)
        self.config = new
        for job_id, first in prepared.items():
            job = changes.changed[job_id]
            assert job.schedule is not None
            self.timetable.schedule(job_id, job.schedule, first, self._fire, job.overlap)
            self.backlog.applied(job, first, now, at_start=old is None)
            self._keep_pending(job, pending.get(job_id), first)
        if old is None:
            self._schedule_housekeeping()
        return changes.summary()

    def _keep_pending(self, job: Job, slot: datetime | None, first: datetime) -> None:
        """An edit inside a slot's jitter delay: the slot's time came under the old schedule,
        so it runs now unless the new schedule still fires it."""
        assert job.schedule is not None
        if slot is None:
            return
        if slots.still_fires(job.schedule, slot, slots.slot_of(job.schedule, first) or first):
            return
        log.info("reload.pending_slot_runs_now", job_id=job.id, scheduled_for=slot.isoformat())
        self.timetable.run_soon(f"__pending__:{job.id}", self._fire_slot, [job.id, slot])

    def _schedule_housekeeping(self) -> None:
        """Housekeeping once a day (first a minute after start): prune history when jobs.yaml
        asks, and refresh the database's query statistics."""
        first = self.clock.now() + timedelta(seconds=HOUSEKEEPING_FIRST_S)
        self.timetable.add_duty(HOUSEKEEPING_JOB, self.retain, first, HOUSEKEEPING_EVERY_S)

    def retain(self) -> None:
        retention, store = self.config.retention, self._store
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

    # --- firing ---------------------------------------------------------------------------------

    def _fire(self, job_id: str, fired: list[datetime] | None = None) -> None:
        """A firing: the fire times it stands for (APScheduler's; now when called by hand),
        each mapped to its slot. The newest slot within misfire_grace runs; the others are
        recorded `missed` with their reason (`skipped` when jobs.yaml held them anyway: a
        blackout, enabled: false)."""
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
        run = firing.run
        if run is not None and self.stop_event.is_set():
            # Stopping: not recorded, so the next start catches it up (a replica claims it).
            log.info("run.not_started_stopping", job_id=job.id, scheduled_for=run.isoformat())
            run = None
        for slot, reason in firing.missed:
            queue_unrun(self.outbox, job, self.config.blackouts, slot, reason)
        if run is not None:
            self.runs.execute(job, RunTrigger.SCHEDULE, run)
        if firing.missed:
            self.flush_unrecorded()

    def run_now(self, job: Job, trigger: RunTrigger, asked: OnDemand) -> Run:
        """A run someone asked for (a Slack command), through the same runner path as a
        slot's: see SlotRuns.run_now (RunRefused while stopping or while the job runs)."""
        return self.runs.run_now(job, trigger, asked, stopping=self.stop_event.is_set())

    def runner_of(self, job: Job) -> Runner | None:
        """The runner of the job's company (None, logged, for a company without a client)."""
        return self.runs.runner(job)

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
        self.runs.execute(job, trigger, slot)

    def _not_run(self, job_id: str, fired: list[datetime]) -> None:
        """APScheduler did not submit a firing because the previous one still runs. Called on
        the scheduler's own thread: queue the rows, never wait for the database here."""
        job = self.config.job(job_id)
        if job is None or job.schedule is None:
            return
        for moment in fired:
            slot = slots.slot_of(job.schedule, moment)
            if slot is not None:
                self.outbox.add(job.id, slot, RunStatus.SKIPPED, overlap.refused(job.overlap))

    def _recorded(self, run: Run) -> None:
        self._after_run(self.config.job(run.job_id), run)

    def _missed(self, job_id: str, missed: list[datetime], reason: str) -> None:
        self._parts.bus.publish(SlotsMissed(job_id, tuple(missed), reason))

    def flush_unrecorded(self, *, everything: bool = False) -> int:
        """Write queued rows whose time has come (`everything`: all, at shutdown)."""
        return self.outbox.flush(everything=everything)

    # --- slots missed while no daemon ran, or lost ----------------------------------------------

    def catch_up(self) -> None:
        """Slots missed while no daemon ran: the newest within the job's catch_up window runs
        now, the others are recorded `missed` (backlog.py)."""
        self.backlog.catch_up(self.config, self.clock.now())
        self.flush_unrecorded()

    def _catch_up_run(self, job_id: str, slot: datetime) -> None:
        args = [job_id, slot, RunTrigger.CATCH_UP]
        self.timetable.run_soon(f"{CATCH_UP_JOB}:{job_id}", self._fire_slot, args)

    def fill_gaps(self) -> None:
        """Slots lost between two recorded slots of a job are recorded `missed` once their
        misfire grace has passed (backlog.py)."""
        self.backlog.fill_gaps(self.config, self.clock.now())
        self.flush_unrecorded()

    def recover_orphans(self) -> None:
        """Adopt and finish runs whose process is gone (see recovery.py). Counted as work in
        flight, so that shutdown waits for it before the clients close."""
        if self.stop_event.is_set():
            return
        with self.runs.in_flight.held():
            self._recover_orphans()

    def _recover_orphans(self) -> None:
        self.flush_unrecorded()
        try:
            finished = recovery.find_and_recover(
                self._store,
                self._runner_by_id,
                owner=self.owner,
                now=self.clock.now(),
                stale_before=self.runs.alive_after(),
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
            return self.runs.runner(job)
        return self._parts.default_runner

    # --- reload -------------------------------------------------------------------------------

    def reload(self) -> bool:
        """Apply jobs.yaml if its content changed; any error keeps the last good schedule."""
        good = self.config
        return self.watcher.reload(good, lambda new: self.apply(new, good), self._restore)

    def _restore(self, good: Config) -> None:
        """Put the last good schedule back after a reload failed half way."""
        self.config = good
        try:
            for job_id in self.timetable.ids():
                if not job_id.startswith("__") and good.job(job_id) is None:
                    self.timetable.remove(job_id)
            now = self.clock.now()
            for job in good.jobs:
                if job.schedule is None or self.timetable.schedule_of(job.id) == job.schedule:
                    continue
                first = first_fire(job.id, job.schedule, now)
                self.timetable.schedule(job.id, job.schedule, first, self._fire, job.overlap)
        except Exception:
            log.exception("config.restore_failed")

    def _event(self, kind: str, detail: str) -> None:
        """What the daemon did, for history's event log (best effort: the log has it too)."""
        self._parts.bus.publish(DaemonActed(self.clock.now(), self.owner, kind, detail))

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
        return self.timetable.next_fire_times()

    def start(self, *, paused: bool = False) -> None:
        """Build the schedule before anything can fire (start paused, add jobs, resume); then
        recover orphaned runs and catch up missed slots, in the background. The daemon's own
        duties run on their own threads and always run, however late (never behind the runs).
        A schedule that never fires is a ConfigError, before anything is scheduled."""
        self._prepare(jobs.scheduled(self.config), self.clock.now())
        self.timetable.start(paused=True)
        # Slots that fire from here on are the live schedule's; catch-up looks at those before.
        self.apply(self.config, None)
        # Look for orphans as often as a run can become one (4 heartbeats), at most a minute.
        beats = recovery.STALE_BEATS * self.config.daemon.heartbeat_s
        now = self.clock.now()
        recover_every_s = max(1.0, min(RECOVERY_EVERY_S, beats))
        self.timetable.add_duty(RECOVERY_JOB, self.recover_orphans, now, recover_every_s)
        self.timetable.add_duty(CATCH_UP_JOB, self.catch_up, now, None)
        # The row writer may wait for the database: a second one returns at once.
        self.timetable.add_duty(FLUSH_JOB, self.flush_unrecorded, now, FLUSH_EVERY_S, instances=2)
        self.timetable.add_duty(PAUSES_JOB, self.holds.refresh, now, PAUSES_EVERY_S)
        if not paused:
            self.timetable.resume()

    def scheduled_jobs(self, *, internal: bool = False) -> list[str]:
        """The ids of scheduled jobs.yaml jobs (with `internal`, housekeeping too)."""
        return sorted(i for i in self.timetable.ids() if internal or not i.startswith("__"))

    def run_forever(self) -> None:
        self.start()
        log.info("daemon.started", revision=self.config.revision, jobs=self.next_fire_times())
        self._event("started", f"revision {self.config.revision}, {len(self.config.jobs)} job(s)")
        while not self.stop_event.is_set():
            self.beat.beat()
            if self._reload_event.wait(RELOAD_CHECK_S):
                self._reload_event.clear()
            if not self.stop_event.is_set():
                self.reload()
        self.shutdown()

    def loop_alive(self) -> bool:
        return self.beat.alive()

    def health(self) -> tuple[bool, str]:
        """(healthy, why), within health.DB_ANSWER_S whatever the database does: the scheduler
        loop ticks and the database answers (see health.py)."""
        loop_running = self.loop_alive() and self.timetable.running
        return health.verdict(loop_running, self.ping.problem(), len(self.outbox))

    def shutdown(self, timeout_s: float | None = None) -> None:
        """Stop firing and starting tasks; let running tasks finish within the timeout; then
        cancel: every wait (rate budget, polls, locks, retries) ends at once and runs record
        where they are (recovery follows their operations). Returns once every run and recovery
        has stopped (a request already sent may take up to the client's timeout), so that the
        caller closes the HTTP clients last."""
        if not self.timetable.running:
            return
        timeout = self.config.daemon.shutdown_timeout_s if timeout_s is None else timeout_s
        self.timetable.pause()
        self._parts.draining.set()
        in_flight = self.runs.in_flight
        unfinished = in_flight.wait(timeout)
        if unfinished:
            log.warning("daemon.cancelling_runs", runs=unfinished, after_s=timeout)
        self._parts.cancel.set()  # also when nothing runs: a firing that starts now stops at once
        if unfinished:
            unfinished = in_flight.wait(CANCEL_GRACE_S + self.config.kinsta.timeout_s)
        self.flush_unrecorded(everything=True)
        self.timetable.shutdown()
        log.info("daemon.stopped", unfinished_runs=unfinished)
        self._event("stopped", f"{unfinished} run(s) left for recovery" if unfinished else "clean")
