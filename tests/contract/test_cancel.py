"""Cancelling by hand (and the waves of a rollout), as the storage contract holds it: a request any host writes on the run's
row, read back by the run's heartbeat; the first request stands; a run that ended is left as it
is; a cancelled run is over for the overlap check and the filters. Memory, SQLite, PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from scheduler.domain import CancelRequest, RunStatus, RunTrigger
from scheduler.errors import OwnershipLost
from scheduler.history import HistoryStore, RunFilter
from scheduler.ports import Beat
from scheduler.rollout import WAVE_ENDED, WAVE_NOT_STARTED, WaveRecord
from tests.contract.test_store import T0

LATER = T0 + timedelta(minutes=5)
LATEST = LATER + timedelta(minutes=1)


def _running(store: HistoryStore) -> tuple[int, str]:
    run = store.runs.claim_run("nightly", RunTrigger.SCHEDULE, T0, T0, started_by="host-a:1")
    assert run is not None and run.owner_token is not None
    return run.run_id, run.owner_token


def test_the_heartbeat_reads_back_a_cancel_asked_from_anywhere(store: HistoryStore) -> None:
    run_id, token = _running(store)
    assert store.runs.heartbeat(run_id, LATER, owner=token) == Beat(True)
    asked = store.runs.request_cancel(run_id, LATER, by="ops@bastion", reason="bad release")
    assert asked is not None and asked.status is RunStatus.RUNNING
    assert asked.cancel == CancelRequest(LATER, "ops@bastion", "bad release")
    beat = store.runs.heartbeat(run_id, LATEST, owner=token)
    assert beat == Beat(True, CancelRequest(LATER, "ops@bastion", "bad release"))
    assert store.runs.heartbeat(run_id, LATEST, owner="not-the-owner") == Beat(False)


def test_the_first_cancel_stands(store: HistoryStore) -> None:
    run_id, _ = _running(store)
    store.runs.request_cancel(run_id, LATER, by="ops@bastion")
    again = store.runs.request_cancel(run_id, LATEST, by="dev@laptop", reason="me too")
    assert again is not None and again.cancel == CancelRequest(LATER, "ops@bastion", None)


def test_a_run_that_ended_is_not_cancelled(store: HistoryStore) -> None:
    run_id, token = _running(store)
    store.runs.finish_run(run_id, RunStatus.SUCCEEDED, LATER, owner=token)
    ended = store.runs.request_cancel(run_id, LATEST, by="ops@bastion")
    assert ended is not None and ended.status is RunStatus.SUCCEEDED and ended.cancel is None
    assert store.runs.request_cancel(run_id + 1000, LATEST, by="ops@bastion") is None


def test_a_cancelled_run_is_over(store: HistoryStore) -> None:
    run_id, token = _running(store)
    store.runs.request_cancel(run_id, LATER, by="ops@bastion", reason="bad release")
    assert store.runs.running_run("nightly", T0) is not None  # winding down: still running
    why = "cancelled by ops@bastion (3 task(s) not started)"
    done = store.runs.finish_run(run_id, RunStatus.CANCELLED, LATEST, why, owner=token)
    assert done.status is RunStatus.CANCELLED and done.error == why and done.finished_at
    assert done.cancel == CancelRequest(LATER, "ops@bastion", "bad release")
    assert store.runs.running_run("nightly", T0) is None  # the next slot is not skipped
    assert store.runs.orphaned_runs(LATEST + timedelta(hours=1)) == []
    (listed,) = store.queries.list_runs(RunFilter(status="cancelled"))
    assert listed == done
    halted = store.runs.record_run(
        "nightly", RunTrigger.SCHEDULE, LATER, LATER, status=RunStatus.HALTED, error="tripped"
    )
    assert halted is not None and halted.status is RunStatus.HALTED
    assert store.runs.previous_outcome("nightly", halted.run_id + 1) is None


def test_a_runs_waves_are_kept_in_order_fenced_and_pruned_with_it(store: HistoryStore) -> None:
    run_id, token = _running(store)
    canary = WaveRecord(0, "canary", 2, WAVE_ENDED, 2, 0, 2, T0, LATER)
    store.runs.record_wave(run_id, WaveRecord(1, "wave 1 of 1", 28, WAVE_NOT_STARTED), owner=token)
    store.runs.record_wave(run_id, canary, owner=token)
    waves = store.queries.run_waves(run_id)
    assert [w.index for w in waves] == [0, 1] and waves[0] == canary
    assert waves[0].started_at == T0 and waves[0].started_at.tzinfo is not None
    with pytest.raises(OwnershipLost):
        store.runs.record_wave(run_id, replace(canary, index=2), owner="not-the-owner")
    assert store.queries.run_waves(run_id + 1000) == []
    store.runs.finish_run(run_id, RunStatus.HALTED, LATEST, "halted: 2 rolled back", owner=token)
    store.maintenance.prune(LATEST + timedelta(days=30), keep_last=0)
    assert store.queries.get_run(run_id) is None and store.queries.run_waves(run_id) == []
