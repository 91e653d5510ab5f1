"""Overlap policies (jobs.yaml `overlap:`) in the daemon against the sandbox and a real
database: a slot due while a run of its job is going (here another process's, alive by its
heartbeat) is skipped, runs beside it, waits for it (buffer_one), or cancels it and then runs
(cancel_previous); each decision is a daemon event."""

# ruff: noqa: F811  (the fixtures of test_recovery, imported, are parameters here)
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.daemon import Daemon
from scheduler.daemon.overlap import instances, refused
from scheduler.domain import Run, RunStatus, RunTrigger
from scheduler.events import DaemonActed
from scheduler.history import HistoryStore
from tests.integration.test_recovery import every, make_daemon, runner, runs_of  # noqa: F401


def with_overlap(policy: str) -> str:
    return every(1).replace(
        "    actions: [clear_cache]", f"    actions: [clear_cache]\n    overlap: {policy}"
    )


@pytest.fixture
def busy(store: HistoryStore) -> Iterator[Run]:
    """A run of the job by another process, its heartbeat kept alive until it is finished."""
    now = datetime.now(UTC)
    run = store.runs.claim_run(
        "tick", RunTrigger.SCHEDULE, now - timedelta(seconds=5), now, started_by="other:7"
    )
    assert run is not None and run.owner_token is not None
    done = threading.Event()

    def beat() -> None:
        while not done.wait(0.1):
            store.runs.heartbeat(run.run_id, datetime.now(UTC), owner=run.owner_token)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    yield run
    done.set()
    thread.join()


def _fire_in_background(daemon: Daemon) -> threading.Thread:
    thread = threading.Thread(target=daemon._fire, args=("tick",), daemon=True)
    thread.start()
    return thread


def _heard(daemon: Daemon) -> list[str]:
    """The overlap decisions the daemon published (history's event log records them)."""
    heard: list[str] = []
    daemon._parts.bus.subscribe(
        DaemonActed, lambda e: heard.append(e.detail or "") if e.kind == "overlap" else None
    )
    return heard


def _finish(store: HistoryStore, run: Run, status: RunStatus) -> None:
    store.runs.finish_run(run.run_id, status, datetime.now(UTC), owner=run.owner_token)


def test_allow_runs_beside_the_running_run(
    make_daemon: Callable[[str], Daemon], store: HistoryStore, busy: Run
) -> None:
    daemon = make_daemon(with_overlap("allow"))
    heard = _heard(daemon)
    daemon._fire("tick")
    ran = [r for r in runs_of(store) if r.run_id != busy.run_id]
    assert len(ran) == 1 and ran[0].error == "no environment matched the job's targets", ran
    (event,) = heard
    assert f"runs beside run {busy.run_id} (overlap: allow)" in event


def test_buffer_one_waits_for_the_running_run_then_runs(
    make_daemon: Callable[[str], Daemon], store: HistoryStore, busy: Run
) -> None:
    daemon = make_daemon(with_overlap("buffer_one"))
    heard = _heard(daemon)
    thread = _fire_in_background(daemon)
    thread.join(1.5)
    assert thread.is_alive() and [r.run_id for r in runs_of(store)] == [busy.run_id]
    (waits,) = heard
    assert waits.startswith("job tick, slot ") and waits.endswith(
        f": waits for run {busy.run_id} (overlap: buffer_one)"
    )
    _finish(store, busy, RunStatus.SUCCEEDED)
    thread.join(10)
    assert not thread.is_alive()
    later = [r for r in runs_of(store) if r.run_id != busy.run_id]
    assert len(later) == 1 and later[0].error == "no environment matched the job's targets"


def test_cancel_previous_asks_the_running_run_to_stop_then_runs(
    make_daemon: Callable[[str], Daemon], store: HistoryStore, busy: Run
) -> None:
    daemon = make_daemon(with_overlap("cancel_previous"))
    heard = _heard(daemon)
    thread = _fire_in_background(daemon)
    thread.join(1.0)
    asked = store.queries.get_run(busy.run_id)
    assert asked is not None and asked.cancel is not None
    assert asked.cancel.by == "overlap: cancel_previous of job tick"
    assert thread.is_alive()  # the cancelled run still finishes what it has in flight
    _finish(store, busy, RunStatus.CANCELLED)
    thread.join(10)
    assert not thread.is_alive()
    assert len(runs_of(store)) == 2
    assert len(heard) == 1 and f"cancelled run {busy.run_id}, then runs" in heard[0]


def test_a_waiting_slot_is_skipped_when_the_daemon_stops(
    make_daemon: Callable[[str], Daemon], store: HistoryStore, busy: Run
) -> None:
    daemon = make_daemon(with_overlap("buffer_one"))
    thread = _fire_in_background(daemon)
    thread.join(0.5)
    daemon._parts.draining.set()  # as shutdown does first, whatever asked for it
    thread.join(10)
    (skipped,) = [r for r in runs_of(store) if r.run_id != busy.run_id]
    assert skipped.status is RunStatus.SKIPPED
    assert (
        skipped.error == f"the daemon stopped while this slot waited for run {busy.run_id} to end"
    )


def test_the_scheduler_lets_in_one_waiting_firing_and_says_why_it_refused_more() -> None:
    assert [instances(p) for p in ("skip", "buffer_one", "cancel_previous")] == [1, 2, 2]
    assert instances("allow") > 2
    assert refused("skip") == "the previous run was still running"
    assert "already waiting for the running run" in refused("buffer_one")
