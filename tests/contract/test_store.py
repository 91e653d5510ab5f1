"""The storage ports' contract, in memory, on a real SQLite file and on the real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler.domain import (
    OperationEvent,
    OperationState,
    RunStatus,
    RunTrigger,
    Target,
    TaskStatus,
)
from scheduler.history import HistoryStore, PlannedTask, RunFilter, TaskFilter

T0 = datetime(2026, 11, 1, 2, 30, tzinfo=UTC)
TARGETS = [
    Target("s1", "alpha", "e1", "live"),
    Target("s1", "alpha", "e2", "staging"),
    Target("s2", "beta", "e3", "live"),
]


def claim(
    store: HistoryStore,
    job: str = "nightly",
    slot: datetime = T0,
    trigger: RunTrigger = RunTrigger.SCHEDULE,
) -> int:
    run = store.runs.claim_run(job, trigger, slot, slot + timedelta(seconds=1), started_by="test:1")
    assert run is not None
    return run.run_id


def test_a_slot_is_claimed_once(store: HistoryStore) -> None:
    first = store.runs.claim_run("nightly", RunTrigger.SCHEDULE, T0, T0, started_by="a")
    again = store.runs.claim_run("nightly", RunTrigger.CATCH_UP, T0, T0, started_by="b")
    other_job = store.runs.claim_run("weekly", RunTrigger.SCHEDULE, T0, T0, started_by="b")
    assert first is not None and first.status is RunStatus.RUNNING
    assert again is None and other_job is not None


def test_manual_runs_never_collide(store: HistoryStore) -> None:
    a = store.runs.claim_run("nightly", RunTrigger.MANUAL, T0, T0, started_by="a")
    b = store.runs.claim_run("nightly", RunTrigger.MANUAL, T0, T0, started_by="a")
    assert a is not None and b is not None and a.run_id != b.run_id


def test_times_come_back_aware_utc(store: HistoryStore) -> None:
    amsterdam = T0.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Amsterdam"))
    run = store.runs.claim_run("j", RunTrigger.MANUAL, amsterdam, amsterdam, started_by="x")
    assert run is not None and run.scheduled_for == T0 and run.scheduled_for.tzinfo is UTC


def test_tasks_operations_and_counts(store: HistoryStore) -> None:
    run_id = claim(store)
    ids = store.runs.plan_tasks(run_id, [PlannedTask(t, "clear_cache") for t in TARGETS])
    assert len(ids) == 3
    store.tasks.start_task(ids[0], T0)
    row = store.tasks.start_operation(ids[0], "cache:clear-e1", "clear_cache", T0)
    store.tasks.operation_event(
        row,
        OperationEvent(
            T0 + timedelta(seconds=3), OperationState.IN_PROGRESS, 202, "Operation in progress"
        ),
        1,
    )
    store.tasks.operation_event(
        row, OperationEvent(T0 + timedelta(seconds=6), OperationState.SUCCEEDED, 200, "done"), 2
    )
    store.tasks.finish_task(ids[0], TaskStatus.SUCCEEDED, T0 + timedelta(seconds=6), "done")
    store.tasks.start_task(ids[1], T0)
    store.tasks.finish_task(ids[1], TaskStatus.FAILED, T0 + timedelta(seconds=2), "boom")
    store.tasks.finish_task(ids[2], TaskStatus.SKIPPED, T0 + timedelta(seconds=2), "not run")
    run = store.runs.finish_run(
        run_id, RunStatus.FAILED, T0 + timedelta(seconds=7), "1 task(s) failed"
    )
    assert (run.tasks_total, run.tasks_failed, run.status) == (3, 1, RunStatus.FAILED)
    assert run.targets == ("alpha/live", "alpha/staging", "beta/live")
    tasks = store.tasks.run_tasks(run_id)
    assert [t.status for t in tasks] == [
        TaskStatus.SUCCEEDED,
        TaskStatus.FAILED,
        TaskStatus.SKIPPED,
    ]
    first = tasks[0]
    assert (
        first.operation_id == "cache:clear-e1"
        and first.operation_status == "succeeded"
        and first.attempts == 1
    )
    (op,) = first.operations
    assert op.polls == 2 and op.finished_at == T0 + timedelta(seconds=6)
    assert [e.state for e in op.events] == [
        OperationState.PENDING,
        OperationState.IN_PROGRESS,
        OperationState.SUCCEEDED,
    ]


def test_list_runs_filters_and_order(store: HistoryStore) -> None:
    for day in range(5):
        run_id = claim(store, slot=T0 + timedelta(days=day))
        store.runs.plan_tasks(run_id, [PlannedTask(TARGETS[day % 3], "clear_cache")])
        store.runs.finish_run(
            run_id,
            RunStatus.FAILED if day == 3 else RunStatus.SUCCEEDED,
            T0 + timedelta(days=day, minutes=1),
        )
    claim(store, job="weekly")
    runs = store.queries.list_runs(RunFilter(job_id="nightly"))
    assert [r.scheduled_for.day for r in runs] == [5, 4, 3, 2, 1]
    assert [r.scheduled_for.day for r in store.queries.list_runs(RunFilter(status="failed"))] == [4]
    assert len(store.queries.list_runs(RunFilter(site="beta"))) == 1
    since = store.queries.list_runs(
        RunFilter(job_id="nightly", since=T0 + timedelta(days=3), limit=10)
    )
    assert [r.scheduled_for.day for r in since] == [5, 4]
    assert len(store.queries.list_runs(RunFilter(until=T0 + timedelta(days=1)))) == 2
    assert len(store.queries.list_runs(RunFilter(limit=2))) == 2


def test_list_tasks_filters(store: HistoryStore) -> None:
    run_id = claim(store)
    store.runs.plan_tasks(
        run_id, [PlannedTask(t, a) for t in TARGETS for a in ("clear_cache", "restart_php")]
    )
    assert len(store.queries.list_tasks(TaskFilter(site="alpha"))) == 4
    assert len(store.queries.list_tasks(TaskFilter(site="alpha", action="restart_php"))) == 2
    assert len(store.queries.list_tasks(TaskFilter(job_id="nightly", status="pending"))) == 6
    assert store.queries.list_tasks(TaskFilter(job_id="other")) == []


def test_record_run_keeps_a_reason(store: HistoryStore) -> None:
    run = store.runs.record_run(
        "nightly", RunTrigger.SCHEDULE, T0, T0, status=RunStatus.MISSED, error="daemon was down"
    )
    assert run is not None and run.status is RunStatus.MISSED and run.error == "daemon was down"
    assert (
        store.runs.record_run(
            "nightly", RunTrigger.SCHEDULE, T0, T0, status=RunStatus.MISSED, error="again"
        )
        is None
    )


def _finished_runs(store: HistoryStore, job: str, days: int) -> list[int]:
    ids = []
    for day in range(days):
        run_id = claim(store, job=job, slot=T0 + timedelta(days=day))
        store.runs.plan_tasks(run_id, [PlannedTask(TARGETS[0], "clear_cache")])
        task = store.tasks.run_tasks(run_id)[0]
        store.tasks.start_operation(task.task_id, "cache:clear-e1", "clear_cache", T0)
        store.runs.finish_run(run_id, RunStatus.SUCCEEDED, T0 + timedelta(days=day, minutes=1))
        ids.append(run_id)
    return ids


def test_prune_keeps_each_jobs_newest_and_never_a_running_run(store: HistoryStore) -> None:
    _finished_runs(store, "nightly", 10)
    _finished_runs(store, "weekly", 2)
    running = claim(store, job="slow", slot=T0 - timedelta(days=30))
    cutoff = T0 + timedelta(days=8)
    preview = store.maintenance.prune(cutoff, keep_last=3, dry_run=True)
    assert (preview.runs, preview.tasks, preview.operations) == (7, 7, 7)  # nightly days 0-6
    assert len(store.queries.list_runs(RunFilter(limit=100))) == 13  # a dry run removes nothing
    done = store.maintenance.prune(cutoff, keep_last=3)
    assert done == preview
    left = store.queries.list_runs(RunFilter(limit=100))
    assert sorted(r.scheduled_for.day for r in left if r.job_id == "nightly") == [8, 9, 10]
    assert len([r for r in left if r.job_id == "weekly"]) == 2  # newest 3 of the job are kept
    assert any(r.run_id == running for r in left)
    assert len(store.queries.list_tasks(TaskFilter(job_id="nightly", limit=100))) == 3


def test_site_actions_keep_each_actions_latest_outcome(store: HistoryStore) -> None:
    first = claim(store, slot=T0)
    ids = store.runs.plan_tasks(
        first, [PlannedTask(TARGETS[0], "clear_cache"), PlannedTask(TARGETS[0], "restart_php")]
    )
    store.tasks.finish_task(ids[0], TaskStatus.SUCCEEDED, T0 + timedelta(minutes=1), "ok")
    store.tasks.finish_task(ids[1], TaskStatus.FAILED, T0 + timedelta(minutes=2), "boom")
    second = claim(store, slot=T0 + timedelta(days=1))
    (again,) = store.runs.plan_tasks(second, [PlannedTask(TARGETS[0], "clear_cache")])
    store.tasks.finish_task(
        again, TaskStatus.FAILED, T0 + timedelta(days=1, minutes=1), "kinsta said no"
    )
    late = claim(store, slot=T0 - timedelta(days=5))
    (stale,) = store.runs.plan_tasks(late, [PlannedTask(TARGETS[0], "clear_cache")])
    store.tasks.finish_task(
        stale, TaskStatus.SUCCEEDED, T0 - timedelta(days=5), "older news"
    )  # never wins
    summary = {(s.action, s.environment): s for s in store.queries.site_actions("alpha")}
    cache = summary[("clear_cache", "live")]
    assert (cache.last_status, cache.last_run_id, cache.last_message) == (
        TaskStatus.FAILED,
        second,
        "kinsta said no",
    )
    assert cache.last_success_at == T0 + timedelta(minutes=1)
    assert cache.last_failure_message == "kinsta said no"
    php = summary[("restart_php", "live")]
    assert php.last_status is TaskStatus.FAILED and php.last_success_at is None
    assert store.queries.site_actions("nobody") == []


def test_rolled_back_tasks_count_as_failures(store: HistoryStore) -> None:
    run_id = claim(store)
    ids = store.runs.plan_tasks(run_id, [PlannedTask(t, "update_plugins") for t in TARGETS])
    before = {"plugins": {"akismet": "5.0"}}
    store.tasks.finish_task(
        ids[0],
        TaskStatus.ROLLED_BACK,
        T0,
        "restored backup 7",
        versions_before=before,
        versions_after=before,
        result={"rolled_back_to": 7},
    )
    store.tasks.finish_task(ids[1], TaskStatus.SUCCEEDED, T0, "ok")
    store.tasks.finish_task(ids[2], TaskStatus.INTERRUPTED, T0, "stopped")
    run = store.runs.finish_run(run_id, RunStatus.FAILED, T0)
    assert run.tasks_failed == 2 - 1  # rolled back counts; interrupted is the run's story
    task = store.tasks.run_tasks(run_id)[0]
    assert task.status is TaskStatus.ROLLED_BACK
    assert task.versions_before == before == task.versions_after
    assert task.result == {"rolled_back_to": 7}
    summary = {(s.environment, s.action): s for s in store.queries.site_actions("alpha")}
    assert summary[("live", "update_plugins")].last_failure_message == "restored backup 7"
    rolled = store.queries.list_tasks(TaskFilter(status="rolled_back"))
    assert [t.task_id for t in rolled] == [ids[0]]


def test_versions_on_offer_keep_their_first_sighting(store: HistoryStore) -> None:
    first = store.catalogue.note_available(
        "plugins", [("akismet", "5.1"), ("woocommerce", "9.0")], T0
    )
    assert first == {("akismet", "5.1"): T0, ("woocommerce", "9.0"): T0}
    later = T0 + timedelta(days=2)
    again = store.catalogue.note_available(
        "plugins", [("akismet", "5.1"), ("akismet", "5.2")], later
    )
    assert again == {("akismet", "5.1"): T0, ("akismet", "5.2"): later}
    assert store.catalogue.note_available("themes", [("akismet", "5.1")], later) == {
        ("akismet", "5.1"): later
    }
    assert store.catalogue.note_available("plugins", [], later) == {}


def test_latest_inventory_per_environment(store: HistoryStore) -> None:
    from scheduler.domain import InventorySnapshot

    def snap(target: Target, at: datetime, php: str) -> InventorySnapshot:
        return InventorySnapshot(
            site=target.site_name,
            environment=target.environment_name,
            taken_at=at,
            php_version=php,
            wordpress_version="6.6",
            plugins=({"name": "akismet", "version": "5.0", "update_version": "5.1"},),
            themes=({"name": "astra", "version": "4.0", "update_version": None},),
            backups=({"id": 1, "type": "automatic", "note": None, "created_at": "x"},),
        )

    for target in TARGETS:
        store.catalogue.record_inventory(None, None, target, snap(target, T0, "8.1"))
    store.catalogue.record_inventory(
        5, 9, TARGETS[0], snap(TARGETS[0], T0 + timedelta(hours=1), "8.3")
    )
    latest = store.catalogue.latest_inventory()
    assert [(s.site, s.environment, s.php_version) for s in latest] == [
        ("alpha", "live", "8.3"),
        ("alpha", "staging", "8.1"),
        ("beta", "live", "8.1"),
    ]
    assert latest[0].run_id == 9 and latest[0].taken_at == T0 + timedelta(hours=1)
    assert latest[0].pending_updates == 1 and latest[0].plugins[0]["name"] == "akismet"
    assert [s.environment for s in store.catalogue.latest_inventory("beta")] == ["live"]


def test_an_environment_lock_has_one_holder_until_released_or_lapsed(store: HistoryStore) -> None:
    locks = store.locks
    assert locks.try_lock_environment("e1", "a", "job a", T0, 60) is None
    assert locks.try_lock_environment("e1", "a", "job a", T0, 60) is None  # re-entrant
    assert locks.try_lock_environment("e1", "b", "job b", T0, 60) == "job a"
    assert locks.try_lock_environment("e2", "b", "job b", T0, 60) is None  # another environment
    locks.renew_locks(["a"], T0 + timedelta(seconds=50), 60)
    assert locks.try_lock_environment("e1", "b", "job b", T0 + timedelta(seconds=90), 60) == "job a"
    # a holder that stops renewing loses the lock once its lease lapses
    assert locks.try_lock_environment("e1", "b", "job b", T0 + timedelta(seconds=111), 60) is None
    locks.unlock_environment("e1", "a")  # not the holder any more: no effect
    assert (
        locks.try_lock_environment("e1", "a", "job a", T0 + timedelta(seconds=112), 60) == "job b"
    )
    locks.unlock_environment("e1", "b")
    assert locks.try_lock_environment("e1", "a", "job a", T0 + timedelta(seconds=113), 60) is None


def test_which_environments_are_held_now(store: HistoryStore) -> None:
    locks = store.locks
    assert locks.held_environments([], T0) == set()
    locks.try_lock_environment("e1", "a", "job a", T0, 60)
    locks.try_lock_environment("e2", "b", "job b", T0, 10)
    assert locks.held_environments(["e1", "e2", "e3"], T0 + timedelta(seconds=5)) == {"e1", "e2"}
    assert locks.held_environments(["e1", "e2"], T0 + timedelta(seconds=11)) == {"e1"}  # lapsed
    locks.unlock_environment("e1", "a")
    assert locks.held_environments(["e1", "e2"], T0 + timedelta(seconds=5)) == {"e2"}


def test_prune_keeps_each_environments_newest_inventory(store: HistoryStore) -> None:
    prune_old_inventory(store)
    # (on SQL, tests/integration/test_store.py also counts the rows left)


def prune_old_inventory(store: HistoryStore) -> None:
    """Three old snapshots of alpha and beta's only one, pruned: each keeps its newest."""
    from scheduler.domain import InventorySnapshot

    def snap(at: datetime) -> InventorySnapshot:
        return InventorySnapshot("alpha", "live", at, "8.2", "6.6", (), (), ())

    old = T0 - timedelta(days=200)
    for days in (0, 1, 2):
        store.catalogue.record_inventory(None, None, TARGETS[0], snap(old + timedelta(days=days)))
    store.catalogue.record_inventory(None, None, TARGETS[2], snap(old))  # beta: its only snapshot
    store.maintenance.prune(T0 - timedelta(days=90), keep_last=0)
    store.maintenance.optimize()
    latest = store.catalogue.latest_inventory()
    assert [(s.site, s.taken_at) for s in latest] == [
        ("alpha", old + timedelta(days=2)),
        ("beta", old),
    ]


def test_prune_removes_old_event_log_rows(store: HistoryStore) -> None:
    """Issue 11 item 24: the governor and daemon events and the notifications are pruned by age
    with the runs (they used to grow without end)."""
    from scheduler.domain import NotificationRecord

    cutoff = T0 - timedelta(days=90)
    for at in (cutoff - timedelta(days=1), cutoff - timedelta(seconds=1), cutoff + timedelta(1)):
        store.events.record_governor_event("key", "long_wait", 40.0, "GET /sites waited", at)
        store.events.record_daemon_event("host:1", "reloaded", None, at)
        store.events.record_notification(
            NotificationRecord(at, "nightly", None, "failure", "slack", "https://hooks", True)
        )
    preview = store.maintenance.prune(cutoff, keep_last=0, dry_run=True)
    assert preview.events == 6 and len(store.events.governor_events()) == 3
    assert store.maintenance.prune(cutoff, keep_last=0) == preview
    left = (
        store.events.governor_events(),
        store.events.daemon_events(),
        store.events.notifications(),
    )
    assert [[e.at for e in rows] for rows in left] == [[cutoff + timedelta(1)]] * 3
