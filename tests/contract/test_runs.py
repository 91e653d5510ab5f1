"""The run ledger's contract beyond claims: fencing by owner token, compare-and-swap adoption,
orphans, the slots the gap check reads, unresolved operations, the event log, and learned
durations and polls. Over memory, SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler.domain import (
    DaemonEvent,
    NotificationRecord,
    OperationEvent,
    OperationState,
    RunStatus,
    RunTrigger,
    TaskStatus,
)
from scheduler.errors import OwnershipLost, StoreError
from scheduler.history import HistoryStore, PlannedTask
from tests.contract.test_store import T0, TARGETS

LATER = T0 + timedelta(minutes=5)


def _running(store: HistoryStore, job: str = "nightly", by: str = "host-a:1") -> tuple[int, str]:
    run = store.runs.claim_run(job, RunTrigger.SCHEDULE, T0, T0, started_by=by)
    assert run is not None and run.owner_token is not None
    return run.run_id, run.owner_token


def test_an_adopted_run_refuses_its_old_owners_writes(store: HistoryStore) -> None:
    run_id, token = _running(store)
    (task,) = store.runs.plan_tasks(run_id, [PlannedTask(TARGETS[0], "clear_cache")])
    run = store.queries.get_run(run_id)
    assert run is not None
    new = store.runs.adopt_run(run, "host-b:2", LATER, stale_before=LATER)
    assert new is not None and new != token
    assert store.runs.heartbeat(run_id, LATER, owner=token).ours is False
    with pytest.raises(OwnershipLost, match="host-b:2"):
        store.tasks.start_task(task, LATER, owner=token)
    with pytest.raises(OwnershipLost):
        store.runs.finish_run(run_id, RunStatus.SUCCEEDED, LATER, owner=token)
    with pytest.raises(OwnershipLost):
        store.runs.finish_pending(run_id, TaskStatus.SKIPPED, LATER, "stop", owner=token)
    assert store.runs.heartbeat(run_id, LATER, owner=new).ours is True
    store.tasks.start_task(task, LATER, owner=new)
    done = store.runs.finish_run(run_id, RunStatus.SUCCEEDED, LATER, owner=new)
    assert done.started_by == "host-b:2" and done.owner_token == new


def test_adoption_is_a_compare_and_swap(store: HistoryStore) -> None:
    run_id, _ = _running(store)
    seen = store.queries.get_run(run_id)
    assert seen is not None
    assert store.runs.adopt_run(seen, "b", LATER, stale_before=T0) is None  # heartbeat is fresh
    first = store.runs.adopt_run(seen, "b", LATER, stale_before=LATER, token="t-b")
    assert first == "t-b"
    assert store.runs.adopt_run(seen, "c", LATER, stale_before=None) is None  # token moved on


def test_orphans_are_stale_runs_and_interrupted_runs_with_work_in_flight(
    store: HistoryStore,
) -> None:
    stale, _ = _running(store, "a")
    fresh = store.runs.claim_run("b", RunTrigger.SCHEDULE, T0, LATER, started_by="x")
    left = store.runs.claim_run("c", RunTrigger.SCHEDULE, T0, LATER, started_by="x")
    assert fresh is not None and left is not None
    (task,) = store.runs.plan_tasks(left.run_id, [PlannedTask(TARGETS[0], "backup")])
    store.tasks.start_task(task, LATER)
    store.runs.finish_run(left.run_id, RunStatus.INTERRUPTED, LATER)
    orphans = store.runs.orphaned_runs(stale_before=T0 + timedelta(minutes=1))
    assert [r.run_id for r in orphans] == [stale, left.run_id]
    assert store.runs.running_run("b", alive_after=LATER) == store.queries.get_run(fresh.run_id)
    assert store.runs.running_run("a", alive_after=LATER) is None
    assert [r.job_id for r in store.runs.running_runs_started_by("host-a")] == ["a"]
    assert store.runs.running_runs_started_by("host_") == []  # a prefix, not a pattern


def test_slots_the_gap_check_reads(store: HistoryStore) -> None:
    for hours, revision in ((0, "r1"), (1, "r2"), (2, "r2")):
        slot = T0 + timedelta(hours=hours)
        store.runs.claim_run(
            "j", RunTrigger.SCHEDULE, slot, slot, started_by="x", config_revision=revision
        )
    store.runs.record_run(
        "j", RunTrigger.CATCH_UP, T0 + timedelta(hours=3), LATER, status=RunStatus.MISSED, error="-"
    )
    store.runs.claim_run("j", RunTrigger.MANUAL, T0 + timedelta(days=1), LATER, started_by="x")
    assert store.runs.last_slot("j") == T0 + timedelta(hours=3)
    assert store.runs.last_slot("other") is None
    assert store.runs.first_slot_of_revision("j", "r2") == T0 + timedelta(hours=1)
    assert store.runs.first_slot_of_revision("j", "r9") is None
    since = store.runs.recorded_slots("j", T0 + timedelta(hours=2))
    assert since == {T0 + timedelta(hours=2), T0 + timedelta(hours=3)}


def test_slack_runs_record_who_asked_and_stand_for_no_slot(store: HistoryStore) -> None:
    later = T0 + timedelta(days=1)
    asked = store.runs.claim_run(
        "caches",
        RunTrigger.SLACK,
        later,
        later,
        started_by="host-a:1",
        requested_by="slack:U1 (al)",
    )
    again = store.runs.claim_run("caches", RunTrigger.SLACK, later, later, started_by="host-a:1")
    slot = store.runs.claim_run("caches", RunTrigger.SCHEDULE, later, later, started_by="host-a:1")
    assert asked is not None and again is not None and slot is not None  # none collides
    assert asked.requested_by == "slack:U1 (al)" and asked.started_by == "host-a:1"
    assert again.requested_by is None
    seen = store.queries.get_run(asked.run_id)
    assert seen is not None and seen.trigger is RunTrigger.SLACK
    assert seen.requested_by == "slack:U1 (al)"
    store.runs.claim_run("other", RunTrigger.SLACK, later, later, started_by="x")
    assert store.runs.last_slot("other") is None
    assert store.runs.recorded_slots("other", T0) == set()


def test_previous_outcome_is_the_last_run_that_ran(store: HistoryStore) -> None:
    ids = []
    for day, status in enumerate((RunStatus.FAILED, RunStatus.SUCCEEDED, RunStatus.SKIPPED)):
        slot = T0 + timedelta(days=day)
        run = store.runs.claim_run("nightly", RunTrigger.SCHEDULE, slot, slot, started_by="x")
        assert run is not None
        store.runs.finish_run(run.run_id, status, slot)
        ids.append(run.run_id)
    assert store.runs.previous_outcome("nightly", ids[0]) is None
    assert store.runs.previous_outcome("nightly", ids[2]) is RunStatus.SUCCEEDED
    assert store.runs.previous_outcome("nightly", ids[1]) is RunStatus.FAILED


def test_unresolved_operations_name_a_newer_operation_with_the_same_id(
    store: HistoryStore,
) -> None:
    first, _ = _running(store, "a")
    t1, t2 = store.runs.plan_tasks(
        first, [PlannedTask(TARGETS[0], "backup"), PlannedTask(TARGETS[1], "backup")]
    )
    open_row = store.tasks.start_operation(t1, "op-1", "backup", T0)
    done_row = store.tasks.start_operation(t2, "op-2", "backup", T0)
    done = OperationEvent(LATER, OperationState.SUCCEEDED, 200, "done")
    store.tasks.operation_event(done_row, done, 3)
    second, _ = _running(store, "b")
    (t3,) = store.runs.plan_tasks(second, [PlannedTask(TARGETS[0], "backup")])
    store.tasks.start_operation(t3, "op-1", "backup", LATER)
    (unresolved,) = store.tasks.unresolved_operations(first)
    assert (unresolved.row_id, unresolved.task_id, unresolved.operation_id) == (
        open_row,
        t1,
        "op-1",
    )
    assert unresolved.environment_id == "e1" and unresolved.started_at == T0
    assert unresolved.newer_with_same_id is True
    (newest,) = store.tasks.unresolved_operations(second)
    assert newest.newer_with_same_id is False


def test_typical_durations_need_five_successes(store: HistoryStore) -> None:
    run_id, _ = _running(store)
    planned = [PlannedTask(TARGETS[0], "backup")] * 6 + [PlannedTask(TARGETS[0], "clear_cache")]
    tasks = store.runs.plan_tasks(run_id, planned)
    for seconds, task in zip((10, 20, 30, 40, 50, 60, 5), tasks, strict=True):
        action = "backup" if seconds > 5 else "clear_cache"
        row = store.tasks.start_operation(task, f"op-{task}", action, T0)
        event = OperationEvent(T0 + timedelta(seconds=seconds), OperationState.SUCCEEDED, 200)
        store.tasks.operation_event(row, event, 2)
    assert store.queries.typical_durations(["backup", "clear_cache"]) == {"backup": 50.0}


def test_typical_polls_are_the_mean_of_recent_successes(store: HistoryStore) -> None:
    """What `plan` expects an operation of a kind to cost in polls: the mean over its last
    successful operations (failed and unfinished ones say nothing), once five are known."""
    run_id, _ = _running(store)
    planned = [PlannedTask(TARGETS[0], "backup")] * 8 + [PlannedTask(TARGETS[0], "clear_cache")]
    tasks = store.runs.plan_tasks(run_id, planned)
    outcomes = [
        (OperationState.SUCCEEDED, 9),  # the oldest success: beyond the last five
        (OperationState.SUCCEEDED, 1),
        (OperationState.SUCCEEDED, 1),
        (OperationState.SUCCEEDED, 2),
        (OperationState.FAILED, 7),
        (OperationState.SUCCEEDED, 1),
        (OperationState.SUCCEEDED, 3),
        (OperationState.IN_PROGRESS, 5),
        (OperationState.SUCCEEDED, 1),  # clear_cache: one success only
    ]
    for (state, polls), task in zip(outcomes, tasks, strict=True):
        action = "clear_cache" if task == tasks[-1] else "backup"
        row = store.tasks.start_operation(task, f"op-{task}", action, T0)
        store.tasks.operation_event(row, OperationEvent(LATER, state, 200), polls)
    assert store.queries.typical_polls(["backup", "clear_cache"]) == {"backup": 17 / 6}
    assert store.queries.typical_polls(["backup"], samples=5) == {"backup": 1.6}
    assert store.queries.typical_polls(["backup"], samples=4) == {}


def test_the_event_logs_answer_newest_first(store: HistoryStore) -> None:
    for minutes in (1, 3, 2):
        at = T0 + timedelta(minutes=minutes)
        store.events.record_daemon_event("host:1", f"k{minutes}", None, at)
        store.events.record_notification(
            NotificationRecord(at, "j", None, "failure", "slack", None, minutes != 2)
        )
    daemon = store.events.daemon_events(since=T0 + timedelta(minutes=2))
    assert daemon == [
        DaemonEvent(T0 + timedelta(minutes=3), "host:1", "k3", None),
        DaemonEvent(T0 + timedelta(minutes=2), "host:1", "k2", None),
    ]
    assert [n.ok for n in store.events.notifications(limit=2)] == [True, False]
    store.events.record_governor_events([])
    assert store.events.governor_events() == []


def test_governor_events_of_a_window_are_read_newest_first_within_it(store: HistoryStore) -> None:
    """A run page asks for its own window: events after it never crowd out those in it."""
    for minutes in range(10):
        at = T0 + timedelta(minutes=minutes)
        store.events.record_governor_event("fp", "long_wait", float(minutes), "", at)
    window = store.events.governor_events(
        T0 + timedelta(minutes=2), 2, until=T0 + timedelta(minutes=5)
    )
    assert [e.seconds for e in window] == [5.0, 4.0]
    assert len(store.events.governor_events(T0, 100, until=T0 + timedelta(minutes=3))) == 4


def test_naive_times_are_refused(store: HistoryStore) -> None:
    with pytest.raises((StoreError, ValueError)):
        store.runs.claim_run("j", RunTrigger.MANUAL, T0.replace(tzinfo=None), T0, started_by="x")


def test_a_backfill_claims_a_slot_with_no_row_or_a_missed_one_only(store: HistoryStore) -> None:
    backfill, later = RunTrigger.BACKFILL, T0 + timedelta(days=1)
    slots = [T0 + timedelta(hours=h) for h in range(4)]
    done = store.runs.claim_run("hourly", RunTrigger.SCHEDULE, slots[0], T0, started_by="a:1")
    assert done is not None
    store.runs.finish_run(done.run_id, RunStatus.SUCCEEDED, T0, owner=done.owner_token)
    missed = store.runs.record_run(
        "hourly", RunTrigger.SCHEDULE, slots[1], T0, status=RunStatus.MISSED, error="no daemon"
    )
    store.runs.record_run(
        "hourly", RunTrigger.SCHEDULE, slots[2], T0, status=RunStatus.SKIPPED, error="paused"
    )
    assert missed is not None
    assert store.runs.claim_run("hourly", backfill, slots[0], later, started_by="b:2") is None
    assert store.runs.claim_run("hourly", backfill, slots[2], later, started_by="b:2") is None
    taken = store.runs.claim_run("hourly", backfill, slots[1], later, started_by="b:2")
    assert taken is not None and taken.run_id == missed.run_id  # the missed row is the run
    assert (taken.trigger, taken.status, taken.error) == (backfill, RunStatus.RUNNING, None)
    assert (taken.started_at, taken.finished_at, taken.started_by) == (later, None, "b:2")
    assert taken.owner_token
    assert store.runs.heartbeat(taken.run_id, later, owner=taken.owner_token).ours
    again = store.runs.claim_run("hourly", backfill, slots[1], later, started_by="c:3")
    assert again is None  # one claim wins, as for any slot
    fresh = store.runs.claim_run("hourly", backfill, slots[3], later, started_by="b:2")
    assert fresh is not None and fresh.trigger is backfill and fresh.run_id != missed.run_id
