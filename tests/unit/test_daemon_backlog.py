"""Catch-up and the gap check over the in-memory history (the storage contract suite holds it
to the SQL stores' behaviour): the daemon's decisions with a fixed clock, no database, no
scheduler and no sleeping."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from scheduler import config as config_module
from scheduler.daemon.backlog import Backlog
from scheduler.daemon.outbox import Outbox
from scheduler.domain import Config, Run, RunStatus, RunTrigger
from scheduler.history import HistoryStore, RunFilter, memory_store
from tests.conftest import FakeClock
from tests.unit.test_daemon_parts import JOB, T0, load


class Heard:
    def __init__(self) -> None:
        self.catch_up_runs: list[tuple[str, datetime]] = []
        self.missed: list[tuple[str, list[datetime], str]] = []
        self.recorded: list[Run] = []


def parts(store: HistoryStore, clock: FakeClock) -> tuple[Backlog, Outbox, Heard]:
    heard = Heard()
    box = Outbox(
        store,
        clock,
        heard.recorded.append,
        lambda job_id, slots, reason: heard.missed.append((job_id, slots, reason)),
    )
    backlog = Backlog(
        store,
        box,
        lambda job_id, slot: heard.catch_up_runs.append((job_id, slot)),
        threading.Event(),
    )
    return backlog, box, heard


def ran(store: HistoryStore, job_id: str, slot: datetime) -> None:
    run = store.runs.claim_run(
        job_id, RunTrigger.SCHEDULE, slot, slot, started_by="a", config_revision="rev"
    )
    assert run is not None
    store.runs.finish_run(run.run_id, RunStatus.SUCCEEDED, slot + timedelta(seconds=1), None)


def rows(store: HistoryStore, job_id: str) -> dict[datetime, RunStatus]:
    return {r.scheduled_for: r.status for r in store.queries.list_runs(RunFilter(job_id=job_id))}


def hourly(tmp_path: Path) -> Config:
    return load(tmp_path, ("hourly", "{every: 1h}"))


def test_after_a_stop_the_newest_missed_slot_runs_and_the_others_are_recorded_missed(
    tmp_path: Path,
) -> None:
    config, store = hourly(tmp_path), memory_store()
    ran(store, "hourly", T0)
    clock = FakeClock(T0 + timedelta(hours=3, minutes=30))  # 13:00, 14:00, 15:00 missed
    backlog, box, heard = parts(store, clock)
    (job,) = config.jobs
    backlog.applied(job, T0 + timedelta(hours=4), clock.now(), at_start=True)
    backlog.catch_up(config, clock.now())
    box.flush(everything=True)
    assert heard.catch_up_runs == [("hourly", T0 + timedelta(hours=3))]
    assert rows(store, "hourly") == {
        T0: RunStatus.SUCCEEDED,
        T0 + timedelta(hours=1): RunStatus.MISSED,
        T0 + timedelta(hours=2): RunStatus.MISSED,
    }
    assert [(j, len(s)) for j, s, _ in heard.missed] == [("hourly", 2)]


def test_a_job_that_never_ran_has_nothing_to_catch_up(tmp_path: Path) -> None:
    config, store = hourly(tmp_path), memory_store()
    clock = FakeClock(T0 + timedelta(hours=3, minutes=30))
    backlog, box, heard = parts(store, clock)
    (job,) = config.jobs
    backlog.applied(job, T0 + timedelta(hours=4), clock.now(), at_start=True)
    backlog.catch_up(config, clock.now())
    assert box.flush(everything=True) == 0
    assert heard.catch_up_runs == [] and rows(store, "hourly") == {}


def test_a_slot_lost_between_two_recorded_ones_is_recorded_missed_after_its_grace(
    tmp_path: Path,
) -> None:
    config, store = hourly(tmp_path), memory_store()
    for hours in (0, 2):  # the 13:00 slot's process died before it could record it
        ran(store, "hourly", T0 + timedelta(hours=hours))
    clock = FakeClock(T0 + timedelta(hours=2, minutes=5))
    backlog, box, _ = parts(store, clock)
    (job,) = config.jobs
    backlog.applied(job, T0 + timedelta(hours=3), T0 - timedelta(hours=1), at_start=False)
    backlog.fill_gaps(config, clock.now())
    box.flush()
    assert rows(store, "hourly")[T0 + timedelta(hours=1)] is RunStatus.MISSED
    backlog.fill_gaps(config, clock.now())  # found again: the row is there, nothing queued
    assert len(box) == 0


def test_after_a_run_a_failure_to_read_its_tasks_is_logged_and_nothing_published() -> None:
    from scheduler.daemon.runs import published_runs
    from scheduler.events import Event

    store, heard = memory_store(), list[Event]()
    ran(store, "hourly", T0)
    (run,) = store.queries.list_runs(RunFilter(job_id="hourly"))

    def broken(run_id: int) -> list[object]:
        raise ValueError("a row the mapper cannot read")

    store.tasks.run_tasks = broken  # type: ignore[method-assign,assignment]
    with structlog.testing.capture_logs() as logs:
        published_runs(store, heard.append)(None, run)  # never raises: the run did finish
    assert heard == []
    assert [(e["event"], e["run_id"]) for e in logs] == [("run.after_hook_failed", run.run_id)]


def test_slots_missed_or_lost_inside_a_blackout_are_recorded_skipped_with_its_name(
    tmp_path: Path,
) -> None:
    """They would not have run anyway: `skipped` with the blackout's name, no missed alert."""
    path = tmp_path / "jobs.yaml"
    path.write_text(  # T0 is 2026-11-01 12:00 UTC: the freeze covers 13:00 only
        "version: 1\n"
        "blackouts: [{name: freeze, from: '2026-11-01 12:30', to: '2026-11-01 13:30', timezone: UTC}]\n"
        "jobs:\n" + JOB.format(id="hourly", schedule="{every: 1h}")
    )
    config, store = config_module.load(path, {}), memory_store()
    ran(store, "hourly", T0)
    clock = FakeClock(T0 + timedelta(hours=3, minutes=30))  # 13:00 (in the freeze), 14:00 missed
    backlog, box, heard = parts(store, clock)
    (job,) = config.jobs
    backlog.applied(job, T0 + timedelta(hours=4), clock.now(), at_start=True)
    backlog.catch_up(config, clock.now())
    box.flush(everything=True)
    runs = {r.scheduled_for: (r.status, r.error) for r in store.queries.list_runs(RunFilter())}
    assert runs[T0 + timedelta(hours=1)] == (RunStatus.SKIPPED, "blackout: freeze")
    assert runs[T0 + timedelta(hours=2)][0] is RunStatus.MISSED
    assert [(j, len(s)) for j, s, _ in heard.missed] == [("hourly", 1)]
