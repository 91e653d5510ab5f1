"""Cancelling by hand, as the storage contract holds it: a request any host writes on the run's
row, read back by the run's heartbeat; the first request stands; a run that ended is left as it
is; a cancelled run is over for the overlap check and the filters. Memory, SQLite, PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from scheduler.domain import CancelRequest, RunStatus, RunTrigger
from scheduler.history import HistoryStore, RunFilter
from scheduler.ports import Beat
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
