"""Every slot is accounted for exactly once: the daemon's decisions, driven by an injected clock
against a real history store and the sandbox. `tick` does what APScheduler's loop does for one
job when its next fire time comes (fire it, then ask its trigger for the next fire time), so each
test says exactly when each firing happens."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent

from scheduler import config as config_module
from scheduler import slots
from scheduler.clock import Clock, SystemClock
from scheduler.daemon import Collaborators, Daemon
from scheduler.domain import (
    Config,
    CronSchedule,
    IntervalSchedule,
    Polling,
    RateLimits,
    RunStatus,
    RunTrigger,
    Secret,
)
from scheduler.errors import ConfigError
from scheduler.eventlog import EventLog
from scheduler.events import Bus
from scheduler.history import HistoryStore, RunFilter, make_engine, sql_store
from scheduler.history.migrate import upgrade
from scheduler.kinsta import KinstaClient, RateGovernor
from scheduler.runner import Runner
from scheduler.sandbox import DEFAULT_API_KEY, SandboxServer
from scheduler.schedules import upcoming
from tests.conftest import FakeClock

FAST = Polling(first_poll_s=0.03, max_interval_s=0.1, not_found_grace_s=5, deadline_s=10)
JOB = """version: 1
jobs:
  - id: tick
    schedule: %s
    catch_up: %s
    targets: {sites: [nothing-matches]}
    actions: [clear_cache]
"""


def real_now() -> datetime:
    """A fake clock starts at the real time, so APScheduler's own idea of now agrees with it."""
    return datetime.now(UTC).replace(microsecond=0)


class Daemons:
    """Daemons on one history store and one sandbox, each with its own fake clock."""

    def __init__(self, sandbox: SandboxServer, store: HistoryStore, tmp_path: Path) -> None:
        self.sandbox, self.store, self.path = sandbox, store, tmp_path / "jobs.yaml"
        self.made: list[Daemon] = []
        self.clients: list[KinstaClient] = []

    def runner(self, clock: Clock, name: str) -> Runner:
        client = KinstaClient(
            self.sandbox.url, Secret(DEFAULT_API_KEY), RateGovernor(RateLimits(), clock), clock
        )
        self.clients.append(client)
        company = self.sandbox.sandbox.fleet.company_id
        return Runner(client, self.store, clock, FAST, company, started_by=name)

    def make(
        self,
        text: str,
        clock: Clock,
        *,
        name: str = "a",
        runner_for: Callable[..., Runner] | None = None,
        store: HistoryStore | None = None,
    ) -> Daemon:
        self.path.write_text(text)

        def load() -> Config:
            return config_module.load(self.path, {})

        runner = self.runner(clock, name)
        bus = Bus()  # history's event log hears the daemon, as bootstrap wires it
        EventLog((store or self.store).events, lambda *event: None).subscribe(bus)
        daemon = Daemon(
            load(),
            Collaborators(
                store or self.store,
                runner_for or (lambda job: runner),
                clock,
                load,
                self.path,
                cancel=runner.cancel,
                owner=name,
                bus=bus,
            ),
        )
        self.made.append(daemon)
        return daemon

    def close(self) -> None:
        for daemon in self.made:
            daemon.shutdown(timeout_s=5)
        for client in self.clients:
            client.close()


@pytest.fixture
def daemons(sandbox: SandboxServer, store: HistoryStore, tmp_path: Path) -> Iterator[Daemons]:
    made = Daemons(sandbox, store, tmp_path)
    yield made
    made.close()


def set_clock(clock: FakeClock, instant: datetime) -> None:
    clock.advance((instant - clock.now()).total_seconds())


def tick(daemon: Daemon, clock: FakeClock, job_id: str = "tick") -> None:
    """APScheduler's loop for one job at the clock's time: if its next fire time has come, fire
    it (once, coalescing what came due together) and ask the trigger for the next fire time."""
    job = daemon.timetable.scheduler.get_job(job_id)
    now = clock.now()
    fired, following = [], job.next_run_time
    while following is not None and following <= now:
        fired.append(following)
        following = job.trigger.get_next_fire_time(following, now)
    if fired:
        daemon._fire(job_id, fired)
        daemon.timetable.scheduler.modify_job(job_id, next_run_time=following)


def next_fire(daemon: Daemon, job_id: str = "tick") -> datetime:
    fire: datetime = daemon.timetable.scheduler.get_job(job_id).next_run_time
    return fire


def rows(store: HistoryStore) -> dict[datetime, list[RunStatus]]:
    found: dict[datetime, list[RunStatus]] = {}
    for run in store.queries.list_runs(RunFilter(limit=100_000)):
        found.setdefault(run.scheduled_for, []).append(run.status)
    return found


# --- item 8: the slot travels with its firing -----------------------------------------------------


def test_a_late_jittered_firing_claims_its_own_slot_not_the_clocks(daemons: Daemons) -> None:
    clock = FakeClock(real_now())
    daemon = daemons.make(JOB % ('{cron: "0,5 * * * *", jitter: 4m}', "false"), clock)
    daemon.start(paused=True)
    schedule = daemon.config.jobs[0].schedule
    assert isinstance(schedule, CronSchedule) and schedule.jitter_s == 240
    # The next firing may belong to the slot just past (its jittered time still ahead) or to
    # the next one, depending on the minute the test starts: take the slot it belongs to.
    first = slots.slot_of(schedule, next_fire(daemon))
    assert first is not None and first <= next_fire(daemon) <= first + timedelta(minutes=4)
    (second,) = upcoming(schedule, first, 1)
    set_clock(clock, second + timedelta(milliseconds=1))  # the first firing runs late
    tick(daemon, clock)
    set_clock(clock, next_fire(daemon))  # the second slot's own firing
    tick(daemon, clock)
    daemon.flush_unrecorded()
    assert sorted(rows(daemons.store)) == [first, second]


# --- item 2: a schedule that never fires never reaches APScheduler -------------------------------


def never_fires(config: Config) -> Config:
    """The same file with its job on a cron that never fires (bypassing `validate`, which
    rejects it: the daemon must be safe on its own)."""
    (job,) = config.jobs
    return dataclasses.replace(
        config, jobs=(dataclasses.replace(job, schedule=CronSchedule("0 0 30 2 *", "UTC")),)
    )


def test_a_reload_to_a_schedule_that_never_fires_keeps_the_last_good_one(
    daemons: Daemons,
) -> None:
    clock = FakeClock(real_now())
    daemon = daemons.make(JOB % ("{every: 1h}", "false"), clock)
    daemon.start(paused=True)
    good = daemon.config
    before = next_fire(daemon)
    daemon.watcher.load = lambda: never_fires(good)
    daemons.path.write_text(daemons.path.read_text() + "# edited\n")
    assert not daemon.reload()
    assert daemon.config is good and next_fire(daemon) == before
    events = daemons.store.events.daemon_events()
    assert events[0].kind == "config_rejected" and "never fires" in (events[0].detail or "")


def test_a_reload_that_fails_unexpectedly_keeps_the_last_good_schedule(daemons: Daemons) -> None:
    clock = FakeClock(real_now())
    daemon = daemons.make(JOB % ("{every: 1h}", "false"), clock)
    daemon.start(paused=True)
    good = daemon.config

    def broken() -> Config:
        raise RuntimeError("a bug in the loader")

    daemon.watcher.load = broken
    daemons.path.write_text(daemons.path.read_text() + "# edited\n")
    assert not daemon.reload()
    assert daemon.config is good and daemon.scheduled_jobs() == ["tick"]


def test_a_start_with_a_schedule_that_never_fires_is_a_config_error(daemons: Daemons) -> None:
    clock = FakeClock(real_now())
    daemon = daemons.make(JOB % ("{every: 1h}", "false"), clock)
    daemon.config = never_fires(daemon.config)
    with pytest.raises(ConfigError, match="never fires"):
        daemon.start(paused=True)


# --- item 11: a restarting replica never steals a live replica's slot ----------------------------

JITTERY = JOB % ("{every: 1h, jitter: 50m}", "false")
EARLIER = datetime(2026, 11, 1, 11, 0, tzinfo=UTC)
SLOT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def two_replicas(daemons: Daemons, restart_at: datetime) -> tuple[Daemon, FakeClock, Daemon]:
    """A live replica waiting for SLOT's jitter delay, and one restarting at `restart_at`."""
    daemons.store.runs.record_run(
        "tick", RunTrigger.SCHEDULE, EARLIER, EARLIER, status=RunStatus.SKIPPED, error="earlier"
    )
    live_clock = FakeClock(SLOT - timedelta(minutes=5))
    live = daemons.make(JITTERY, live_clock, name="live")
    live.start(paused=True)
    restarted = daemons.make(JITTERY, FakeClock(restart_at), name="restarted")
    restarted.start(paused=True)
    restarted.catch_up()
    restarted.flush_unrecorded()
    return live, live_clock, restarted


def test_a_restarting_replica_leaves_a_slot_in_its_jitter_delay_to_the_live_one(
    daemons: Daemons,
) -> None:
    fire = slots.fire_time("tick", IntervalSchedule(3600, 3000), SLOT)
    assert fire - SLOT > timedelta(minutes=2)  # the hash gives this slot a long delay
    live, live_clock, restarted = two_replicas(daemons, SLOT + timedelta(minutes=1))
    assert SLOT not in rows(daemons.store)  # not recorded missed: it has not fired yet
    assert next_fire(live) == next_fire(restarted) == fire  # both fire it, at the same time
    set_clock(live_clock, fire)
    tick(live, live_clock)
    set_clock(restarted.clock, fire + timedelta(milliseconds=5))  # type: ignore[arg-type]
    tick(restarted, restarted.clock)  # type: ignore[arg-type]
    (run,) = daemons.store.queries.list_runs(RunFilter(job_id="tick", since=SLOT, limit=5))
    assert run.scheduled_for == SLOT and run.started_by == "live"
    assert (
        run.status is RunStatus.SKIPPED and run.error == "no environment matched the job's targets"
    )


def test_a_restarting_replica_records_missed_only_once_the_slots_grace_has_passed(
    daemons: Daemons,
) -> None:
    fire = slots.fire_time("tick", IntervalSchedule(3600, 3000), SLOT)
    restart_at = fire + timedelta(seconds=10)  # the live replica is late (within misfire_grace)
    live, live_clock, restarted = two_replicas(daemons, restart_at)
    assert SLOT not in rows(daemons.store)  # catch_up is off, but the grace has not passed
    set_clock(live_clock, fire + timedelta(seconds=20))
    tick(live, live_clock)  # the live replica fires it late, within misfire_grace: it runs
    set_clock(restarted.clock, fire + timedelta(seconds=301))  # type: ignore[arg-type]
    restarted.flush_unrecorded()
    (run,) = daemons.store.queries.list_runs(RunFilter(job_id="tick", since=SLOT, limit=5))
    assert run.started_by == "live" and run.status is RunStatus.SKIPPED


def test_with_no_live_replica_the_slot_is_recorded_missed_after_its_grace(
    daemons: Daemons,
) -> None:
    fire = slots.fire_time("tick", IntervalSchedule(3600, 3000), SLOT)
    daemons.store.runs.record_run(
        "tick", RunTrigger.SCHEDULE, EARLIER, EARLIER, status=RunStatus.SKIPPED, error="earlier"
    )
    clock = FakeClock(fire + timedelta(seconds=10))
    restarted = daemons.make(JITTERY, clock, name="restarted")
    restarted.start(paused=True)
    restarted.catch_up()
    assert SLOT not in rows(daemons.store)
    set_clock(clock, fire + timedelta(seconds=301))
    restarted.flush_unrecorded()
    (run,) = daemons.store.queries.list_runs(RunFilter(job_id="tick", since=SLOT, limit=5))
    assert run.status is RunStatus.MISSED and "catch_up is off" in (run.error or "")


# --- item 12: catch-up starts from the newest slot ------------------------------------------------


def test_catch_up_after_five_hours_of_every_second_runs_the_newest(daemons: Daemons) -> None:
    now = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    last = now - timedelta(hours=5)
    daemons.store.runs.record_run(
        "tick", RunTrigger.SCHEDULE, last, last, status=RunStatus.SKIPPED, error="before"
    )
    daemon = daemons.make(JOB % ("{every: 1s}", "1h"), FakeClock(now))
    daemon.start(paused=True)
    daemon.catch_up()
    caught = daemon.timetable.scheduler.get_job("__catch_up__:tick")
    assert caught is not None and caught.args[1] == now - timedelta(seconds=1)
    missed = [
        r
        for r in daemons.store.queries.list_runs(RunFilter(limit=500))
        if r.status.value == "missed"
    ]
    slots = sorted(r.scheduled_for for r in missed)
    assert slots == [now - timedelta(seconds=s) for s in range(101, 1, -1)]  # the newest 100
    oldest = next(r for r in missed if r.scheduled_for == slots[0])
    assert "and 17898 older missed slot(s) not listed" in (oldest.error or "")


# --- item 28: every exception path records the slot -------------------------------------------


def test_a_job_whose_company_has_no_client_records_its_slot_missed(daemons: Daemons) -> None:
    clock = FakeClock(real_now())

    def no_runner(job: object) -> Runner:
        raise KeyError("client-b")

    daemon = daemons.make(JOB % ("{every: 1h}", "false"), clock, runner_for=no_runner)
    daemon.start(paused=True)
    set_clock(clock, next_fire(daemon))
    tick(daemon, clock)
    daemon.flush_unrecorded()
    ((_slot, statuses),) = rows(daemons.store).items()
    assert statuses == [RunStatus.MISSED]
    (run,) = daemons.store.queries.list_runs(RunFilter())
    assert "restart" in (run.error or "") and "client" in (run.error or "")


def test_slots_beyond_the_buffer_are_counted_in_the_next_row(
    daemons: Daemons, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("scheduler.daemon.outbox.UNRECORDED_BUFFER", 3)
    later = tmp_path / "later"
    engine = make_engine(f"sqlite:///{later / 'history.db'}")  # its directory does not exist yet
    unreachable = sql_store(engine)
    clock = FakeClock(real_now())
    daemon = daemons.make(JOB % ("{every: 1h}", "false"), clock, store=unreachable)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for hour in range(5):
        daemon.outbox.add("tick", start + timedelta(hours=hour), RunStatus.MISSED, "database down")
    assert daemon.flush_unrecorded() == 0
    later.mkdir()
    upgrade(engine)
    assert daemon.flush_unrecorded() == 3
    recorded = unreachable.queries.list_runs(RunFilter())
    assert sorted(r.scheduled_for for r in recorded) == [
        start + timedelta(hours=h) for h in (2, 3, 4)
    ]
    first = min(recorded, key=lambda r: r.scheduled_for)
    assert "2 earlier slot(s)" in (first.error or "")
    engine.dispose()


def test_a_busy_check_that_fails_records_the_slot_missed(daemons: Daemons, tmp_path: Path) -> None:
    later = tmp_path / "later"
    engine = make_engine(f"sqlite:///{later / 'history.db'}")
    unreachable = sql_store(engine)
    clock = FakeClock(real_now())
    daemon = daemons.make(JOB % ("{every: 1h}", "false"), clock, store=unreachable)
    daemon.timetable.start(paused=True)
    (job,) = daemon.config.jobs
    slot = datetime(2026, 11, 1, tzinfo=UTC)
    daemon.runs.execute(job, RunTrigger.SCHEDULE, slot)
    later.mkdir()
    upgrade(engine)
    daemon.flush_unrecorded()
    (run,) = unreachable.queries.list_runs(RunFilter())
    assert run.scheduled_for == slot and run.status is RunStatus.MISSED
    assert "unreachable" in (run.error or "")
    engine.dispose()


# --- item 8: an edit inside a slot's jitter delay keeps the slot ----------------------------------


def test_an_edit_that_keeps_the_schedule_keeps_the_slots_fire_time(daemons: Daemons) -> None:
    fire = slots.fire_time("tick", IntervalSchedule(3600, 3000), SLOT)
    clock = FakeClock(SLOT - timedelta(minutes=1))
    daemon = daemons.make(JITTERY, clock)
    daemon.start(paused=True)
    assert next_fire(daemon) == fire
    set_clock(clock, SLOT + (fire - SLOT) / 2)  # inside the slot's jitter delay
    daemons.path.write_text(JITTERY.replace("clear_cache]", "clear_cache]\n    concurrency: 2"))
    assert daemon.reload()
    assert daemon.config.jobs[0].concurrency == 2 and next_fire(daemon) == fire


def test_an_edit_of_the_jitter_inside_the_delay_runs_the_slot_at_once(daemons: Daemons) -> None:
    fire = slots.fire_time("tick", IntervalSchedule(3600, 3000), SLOT)
    clock = FakeClock(SLOT - timedelta(minutes=1))
    daemon = daemons.make(JITTERY, clock)
    daemon.start(paused=True)
    set_clock(clock, SLOT + (fire - SLOT) / 2)
    daemons.path.write_text(JITTERY.replace("jitter: 50m", "jitter: 1s"))  # its new time passed
    assert daemon.reload()
    assert next_fire(daemon) > SLOT + timedelta(hours=1)  # the new schedule starts after it...
    pending = daemon.timetable.scheduler.get_job("__pending__:tick")
    assert pending is not None  # ...so the slot runs now
    pending.func(*pending.args)
    assert rows(daemons.store) == {SLOT: [RunStatus.SKIPPED]}  # no site matches: it ran


# --- item 9: a late firing accounts for every slot it stands for ---------------------------------


def test_a_suspended_host_leaves_every_slot_a_row(daemons: Daemons) -> None:
    start = datetime(2026, 11, 1, 12, 0, 1, tzinfo=UTC)
    clock = FakeClock(start)
    daemon = daemons.make(JOB % ("{every: 5s}", "false"), clock)
    daemon.start(paused=True)
    set_clock(clock, start + timedelta(seconds=4))
    tick(daemon, clock)  # the 12:00:05 slot
    set_clock(clock, start + timedelta(seconds=4 + 27))  # suspended for 27 s
    tick(daemon, clock)
    daemon.flush_unrecorded()
    found = rows(daemons.store)
    assert sorted(found) == [
        start - timedelta(seconds=1) + timedelta(seconds=5 * n) for n in range(1, 7)
    ]
    assert all(len(statuses) == 1 for statuses in found.values())
    newest = max(found)
    assert found[newest] == [RunStatus.SKIPPED]  # it ran (no site matches)
    missed = [
        r for r in daemons.store.queries.list_runs(RunFilter()) if r.status is RunStatus.MISSED
    ]
    assert len(missed) == 4  # 12:00:10 to 12:00:25; 12:00:30 ran
    assert all("coalesced into the run of" in (r.error or "") for r in missed)


def test_a_firing_later_than_misfire_grace_is_missed_with_its_reason(daemons: Daemons) -> None:
    start = datetime(2026, 11, 1, 12, 0, 1, tzinfo=UTC)
    clock = FakeClock(start)
    daemon = daemons.make(
        (JOB % ("{every: 5s}", "false")).replace("actions:", "misfire_grace: 2s\n    actions:"),
        clock,
    )
    daemon.start(paused=True)
    set_clock(clock, start + timedelta(seconds=4 + 3))  # the 12:00:05 slot, 3 s late
    tick(daemon, clock)
    daemon.flush_unrecorded()
    (run,) = daemons.store.queries.list_runs(RunFilter())
    assert run.status is RunStatus.MISSED and "more than misfire_grace (2s)" in (run.error or "")


# --- item 28: the scheduler's thread never waits for the database ---------------------------------


def test_a_skipped_firing_never_blocks_the_scheduler_thread(
    daemons: Daemons, tmp_path: Path
) -> None:
    later = tmp_path / "later"
    engine = make_engine(f"sqlite:///{later / 'history.db'}")
    retrying = sql_store(engine, retry_s=30)  # writes retry for 30 s while unreachable
    clock = FakeClock(datetime(2026, 11, 1, 12, 0, tzinfo=UTC))
    daemon = daemons.make(JOB % ("{every: 5s}", "false"), clock, store=retrying)
    daemon.timetable.start(paused=True)
    fired = [datetime(2026, 11, 1, 12, 0, 5, tzinfo=UTC)]
    event = JobSubmissionEvent(EVENT_JOB_MAX_INSTANCES, "tick", "default", fired)
    began = time.monotonic()
    daemon.timetable.job_not_submitted(event)
    assert time.monotonic() - began < 0.5
    later.mkdir()
    upgrade(engine)
    daemon.flush_unrecorded()
    (run,) = retrying.queries.list_runs(RunFilter())
    assert run.status is RunStatus.SKIPPED and run.scheduled_for == fired[0]
    engine.dispose()


def test_healthz_answers_503_within_3s_while_sqlite_is_locked(
    daemons: Daemons, tmp_path: Path
) -> None:
    path = tmp_path / "locked.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    store = sql_store(engine, retry_s=30)
    clock = SystemClock()
    daemon = daemons.make(JOB % ("{every: 1h}", "false"), clock, store=store)
    daemon.start(paused=True)
    daemon.timetable.resume()
    assert daemon.health()[0]
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the file
    try:
        daemon.ping.checked_at = -1e9  # the next scrape pings
        began = time.monotonic()
        healthy, why = daemon.health()
        assert time.monotonic() - began < 3
        assert not healthy and "history database" in why
        began = time.monotonic()
        assert not daemon.health()[0] and time.monotonic() - began < 3  # and again
    finally:
        other.execute("ROLLBACK")
        other.close()
    deadline = time.monotonic() + 40
    while not daemon.health()[0]:  # healthy again once the lock is gone
        assert time.monotonic() < deadline
        time.sleep(0.2)
    engine.dispose()


def test_a_slot_lost_between_two_recorded_ones_is_recorded_missed_after_its_grace(
    daemons: Daemons, store: HistoryStore
) -> None:
    """A process that fired a slot and died before recording it (kill -9 while its row waited
    in memory for the database) leaves a hole behind slots recorded by others; catch-up looks
    only after the newest row, so the daemon's gap check records it `missed`, once the slot's
    misfire grace has passed (a live replica could still have run it before)."""
    clock = FakeClock(real_now() - timedelta(hours=5))
    daemon = daemons.make(JOB % ("{every: 1h}", "false"), clock)
    daemon.start(paused=True)  # the schedule has been this process's for five hours
    schedule = IntervalSchedule(every_s=3600)
    a, lost, c = upcoming(schedule, clock.now(), 3)
    for slot in (a, c):
        store.runs.record_run(
            "tick", RunTrigger.SCHEDULE, slot, slot, status=RunStatus.SKIPPED, error="x"
        )
    set_clock(clock, c + timedelta(minutes=1))
    daemon.fill_gaps()
    assert rows(store)[lost] == [RunStatus.MISSED]
    (found,) = [r for r in store.queries.list_runs(RunFilter(limit=10)) if r.scheduled_for == lost]
    assert found.error is not None and "no process recorded this slot" in found.error
    assert set(rows(store)) == {a, lost, c}  # nothing outside the recorded range


def test_the_gap_check_leaves_a_slot_inside_its_grace_to_the_live_replicas(
    daemons: Daemons, store: HistoryStore
) -> None:
    clock = FakeClock(real_now())
    daemon = daemons.make(JOB % ("{every: 10s}", "false"), clock)
    daemon.start(paused=True)
    schedule = IntervalSchedule(every_s=10)
    a, lost, c = upcoming(schedule, clock.now(), 3)
    for slot in (a, c):
        store.runs.record_run(
            "tick", RunTrigger.SCHEDULE, slot, slot, status=RunStatus.SKIPPED, error="x"
        )
    set_clock(clock, c + timedelta(seconds=1))  # inside the default misfire grace
    daemon.fill_gaps()
    assert lost not in rows(store)


def test_the_gap_check_never_blames_a_schedule_for_slots_of_the_one_before_it(
    daemons: Daemons, store: HistoryStore
) -> None:
    """Rows of an hourly schedule, then the job edited to every 10 minutes: the slots between
    the old rows were never due, and are not recorded `missed`."""
    clock = FakeClock(real_now())
    hourly = upcoming(IntervalSchedule(every_s=3600), clock.now() - timedelta(hours=3), 2)
    for slot in hourly:
        store.runs.record_run(
            "tick", RunTrigger.SCHEDULE, slot, slot, status=RunStatus.SKIPPED, error="x"
        )
    daemon = daemons.make(JOB % ("{every: 10m}", "false"), clock)
    daemon.start(paused=True)
    set_clock(clock, clock.now() + timedelta(minutes=30))
    daemon.fill_gaps()
    assert set(rows(store)) == set(hourly)


def test_a_restarted_daemon_fills_gaps_left_under_the_same_revision(
    daemons: Daemons, store: HistoryStore
) -> None:
    """Both replicas restarted after a slot was lost: the gap lies before either applied the
    schedule, but slots claimed under the same jobs.yaml revision show the schedule was in
    force, so the gap is still recorded."""
    clock = FakeClock(real_now())
    daemon = daemons.make(JOB % ("{every: 1h}", "false"), clock)
    daemon.start(paused=True)
    a, lost, c = upcoming(IntervalSchedule(every_s=3600), clock.now() - timedelta(hours=4), 3)
    for slot in (a, c):
        claimed = store.runs.claim_run(
            "tick", RunTrigger.SCHEDULE, slot, slot, started_by="x:1",
            config_revision=daemon.config.revision,
        )  # fmt: skip
        assert claimed is not None
        store.runs.finish_run(claimed.run_id, RunStatus.SUCCEEDED, slot, None)
    daemon.fill_gaps()
    assert rows(store)[lost] == [RunStatus.MISSED]
