"""Who may change a run and an environment: owner tokens that fence every write of a run, a
heartbeat that tells a run it was adopted (or that it may look orphaned), recovery that beats
the heartbeat of the run it adopted, environment leases that are checked before each change,
operation ids that may repeat, durations seen late, and runs that overrun their timeout.
Real HTTP against the sandbox and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scheduler import recovery
from scheduler.clock import CancelScope, SystemClock
from scheduler.domain import (
    ActionSpec,
    Job,
    OperationState,
    Polling,
    RateLimits,
    Run,
    RunStatus,
    RunTrigger,
    Secret,
    Target,
    TargetSelector,
    TaskStatus,
)
from scheduler.durations import operation_duration_s
from scheduler.errors import Interrupted, OwnershipLost, StoreError
from scheduler.history import HistoryStore, PlannedTask, TaskFilter
from scheduler.kinsta import KinstaClient, RateGovernor
from scheduler.ports import Beat
from scheduler.runner import Runner
from scheduler.sandbox import DEFAULT_API_KEY, SandboxServer
from scheduler.targets import select_targets

FAST = Polling(first_poll_s=0.03, max_interval_s=0.1, not_found_grace_s=5, deadline_s=20)
BEAT_S = 0.1  # a run looks orphaned after 4 beats: 0.4 s


def job(*actions: str, sites: tuple[str, ...] = ("*",), **kwargs: Any) -> Job:
    return Job(
        id="test-job",
        schedule=None,
        targets=TargetSelector(sites=sites),
        actions=tuple(ActionSpec(a) for a in actions),
        **kwargs,
    )


@pytest.fixture
def make_runner(sandbox: SandboxServer, store: HistoryStore) -> Iterator[Callable[..., Runner]]:
    clients: list[KinstaClient] = []

    def make(
        started_by: str = "this-host:1", lock_lease_s: float = 120, on: HistoryStore | None = None
    ) -> Runner:
        clock = SystemClock()
        client = KinstaClient(
            sandbox.url, Secret(DEFAULT_API_KEY), RateGovernor(RateLimits(), clock), clock
        )
        clients.append(client)
        return Runner(
            client,
            on or store,
            clock,
            FAST,
            sandbox.sandbox.fleet.company_id,
            started_by=started_by,
            cancel=CancelScope(),
            heartbeat_s=BEAT_S,
            lock_lease_s=lock_lease_s,
        )

    yield make
    for client in clients:
        client.close()


def in_background(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    return thread, out


def accepted(sandbox: SandboxServer, kind: str) -> int:
    return sum(c.get(f"{kind}:accepted", 0) for c in sandbox.sandbox.fleet.counters().values())


def targets_of(runner: Runner, count: int) -> list[Target]:
    sites = runner.client.sites.list(runner.company_id, include_environments=True)
    return select_targets(sites, TargetSelector())[:count]


def orphan(
    runner: Runner,
    store: HistoryStore,
    *,
    started_by: str = "gone:99",
    age_s: float = 600,
    first: int = 0,
) -> tuple[Run, list[int]]:
    """A run as a crashed process leaves it: its first task mid-operation (clear_cache) at
    Kinsta on the `first`th live environment, the next not started; its heartbeat `age_s`
    old."""
    then = datetime.now(UTC) - timedelta(seconds=age_s)
    run = store.runs.claim_run(
        "tick", RunTrigger.SCHEDULE, then - timedelta(seconds=first), then, started_by=started_by
    )
    assert run is not None
    found = targets_of(runner, first + 2)[first:]
    ids = store.runs.plan_tasks(run.run_id, [PlannedTask(t, "clear_cache") for t in found])
    operation = runner.client.tools.clear_cache(found[0].environment_id)
    store.tasks.start_task(ids[0], then)
    store.tasks.start_operation(ids[0], operation.operation_id, "clear_cache", then)
    return run, ids


# --- run ownership: tokens fence every write (issue 11.5) --------------------------------------


def test_a_run_adopted_elsewhere_refuses_its_old_owners_writes(store: HistoryStore) -> None:
    now = datetime.now(UTC)
    run = store.runs.claim_run("j", RunTrigger.SCHEDULE, now, now, started_by="a:1")
    assert run is not None and run.owner_token
    (task,) = store.runs.plan_tasks(
        run.run_id, [PlannedTask(Target("s", "s", "e", "live"), "backup")]
    )
    later = now + timedelta(hours=1)  # its heartbeat is stale by then
    token = store.runs.adopt_run(run, "b:2", later, stale_before=later)
    assert token is not None and token != run.owner_token
    old = run.owner_token
    assert store.runs.heartbeat(run.run_id, later, owner=old).ours is False
    assert store.runs.heartbeat(run.run_id, later, owner=token).ours is True
    with pytest.raises(OwnershipLost, match="adopted by b:2"):
        store.tasks.start_task(task, later, owner=old)
    with pytest.raises(OwnershipLost):
        store.tasks.finish_task(task, TaskStatus.SUCCEEDED, later, "done", owner=old)
    with pytest.raises(OwnershipLost):
        store.runs.finish_pending(run.run_id, TaskStatus.INTERRUPTED, later, "x", owner=old)
    with pytest.raises(OwnershipLost):
        store.runs.finish_run(run.run_id, RunStatus.SUCCEEDED, later, owner=old)
    # a second adoption needs the current token: the first adopter's beats keep it
    assert store.runs.adopt_run(run, "c:3", later, stale_before=later) is None
    final = store.runs.finish_run(run.run_id, RunStatus.SUCCEEDED, later, owner=token)
    assert final.status is RunStatus.SUCCEEDED and final.started_by == "b:2"


def test_a_run_adopted_while_it_runs_stops_and_sends_nothing_more(
    make_runner: Callable[..., Runner], store: HistoryStore, sandbox: SandboxServer
) -> None:
    sandbox.sandbox.fleet.time_scale = 0.2  # a backup takes 12 s or more: the run is mid-operation
    runner = make_runner()
    slow = job("backup", "clear_cache", concurrency=1)
    thread, out = in_background(lambda: runner.run(slow, RunTrigger.MANUAL, datetime.now(UTC)))
    deadline = time.monotonic() + 10
    while accepted(sandbox, "backups:add-manual") == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    (running,) = [r for r in store.runs.orphaned_runs(datetime.now(UTC) + timedelta(hours=1))]
    now = datetime.now(UTC)
    assert store.runs.adopt_run(running, "other:7", now, stale_before=now + timedelta(hours=1))
    thread.join(timeout=10)
    assert not thread.is_alive(), "the run went on after it was adopted elsewhere"
    (result,) = out
    assert result.status is RunStatus.RUNNING and result.started_by == "other:7"
    assert accepted(sandbox, "backups:add-manual") == 1  # nothing new started after adoption
    assert accepted(sandbox, "cache:clear") == 0
    tasks = store.tasks.run_tasks(running.run_id)
    assert [t.status for t in tasks[:2]] == [TaskStatus.RUNNING, TaskStatus.PENDING]


def test_a_run_whose_heartbeat_cannot_be_written_sends_no_change_until_it_lands(
    make_runner: Callable[..., Runner],
    store: HistoryStore,
    sandbox: SandboxServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = sandbox.sandbox.fleet.sites[0]
    runner = make_runner()
    beat = store.runs.heartbeat
    failing = threading.Event()
    failing.set()

    def broken(run_id: int, now: datetime, *, owner: str | None = None) -> Beat:
        if failing.is_set():
            raise StoreError("database unreachable", transient=True)
        return beat(run_id, now, owner=owner)

    monkeypatch.setattr(store.runs, "heartbeat", broken)
    gate = held_before_its_first_change(runner, monkeypatch)  # let the heartbeat fail a while
    thread, out = in_background(
        lambda: runner.run(job("clear_cache", sites=(site.name,)), RunTrigger.MANUAL, now())
    )
    time.sleep(4 * BEAT_S)  # more than two beats fail
    gate.set()
    time.sleep(5 * BEAT_S)
    assert accepted(sandbox, "cache:clear") == 0  # held back while it may look orphaned
    failing.clear()  # the database answers again: the next beat lands
    thread.join(timeout=10)
    (result,) = out
    assert result.status is RunStatus.SUCCEEDED
    assert accepted(sandbox, "cache:clear") == len(site.environments[:1])


def test_a_heartbeat_write_that_hangs_holds_changes_back_too(
    make_runner: Callable[..., Runner],
    store: HistoryStore,
    sandbox: SandboxServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A write that neither lands nor fails (a half-open connection) must close the gate as a
    failing one does: others see a stale heartbeat and may adopt the run."""
    site = sandbox.sandbox.fleet.sites[0]
    runner = make_runner()
    beat = store.runs.heartbeat
    hanging = threading.Event()
    hanging.set()

    def hung(run_id: int, now: datetime, *, owner: str | None = None) -> Beat:
        while hanging.is_set():
            time.sleep(0.02)
        return beat(run_id, now, owner=owner)

    monkeypatch.setattr(store.runs, "heartbeat", hung)
    release = held_before_its_first_change(runner, monkeypatch)
    thread, out = in_background(
        lambda: runner.run(job("clear_cache", sites=(site.name,)), RunTrigger.MANUAL, now())
    )
    time.sleep(4 * BEAT_S)  # the first beat has hung for more than two beats
    release.set()
    time.sleep(5 * BEAT_S)
    assert accepted(sandbox, "cache:clear") == 0
    hanging.clear()
    thread.join(timeout=10)
    (result,) = out
    assert result.status is RunStatus.SUCCEEDED
    assert accepted(sandbox, "cache:clear") == len(site.environments[:1])


def now() -> datetime:
    return datetime.now(UTC)


def held_before_its_first_change(
    runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> threading.Event:
    """Make the runner's runs wait, once their targets are resolved and before any change,
    until the returned event is set (5 s at most)."""
    release = threading.Event()
    original = runner.targets

    def targets_then_wait(j: Job) -> list[Target]:
        found = original(j)
        release.wait(5)
        return found

    monkeypatch.setattr(runner, "targets", targets_then_wait)
    return release


def recover_as(runner: Runner, store: HistoryStore, owner: str) -> list[Run]:
    """One recovery pass by `owner`: runs whose heartbeat is a minute old are orphans."""
    return recovery.find_and_recover(
        store,
        lambda _job: runner,
        owner=owner,
        now=datetime.now(UTC),
        stale_before=datetime.now(UTC) - timedelta(seconds=60),
    )


# --- recovery: a heartbeat for the adopted run (11.4), dead owners on this host (11.14) --------


def test_recovery_beats_the_heartbeat_of_the_run_it_adopted(
    make_runner: Callable[..., Runner], store: HistoryStore, sandbox: SandboxServer
) -> None:
    runner = make_runner(started_by="recoverer:1")
    # Exactly 4 s per clear_cache: still running after 10 beats (1 s) even when the writes
    # before the recovery starts take seconds on a loaded machine; both done well within 20 s.
    sandbox.sandbox.fleet.durations.spread = 0
    sandbox.sandbox.fleet.time_scale = 0.4
    run, _ = orphan(runner, store)
    thread, _out = in_background(
        lambda: recovery.find_and_recover(
            store,
            lambda _job: runner,
            owner="recoverer:1",
            now=datetime.now(UTC),
            stale_before=datetime.now(UTC) - timedelta(seconds=4 * BEAT_S),
        )
    )
    time.sleep(10 * BEAT_S)  # recovery is still following the operation
    assert thread.is_alive()
    stale_before = datetime.now(UTC) - timedelta(seconds=4 * BEAT_S)
    assert [r.run_id for r in store.runs.orphaned_runs(stale_before)] == []  # nobody may adopt it
    thread.join(timeout=20)
    final = store.queries.get_run(run.run_id)
    assert final is not None and final.status is not RunStatus.RUNNING
    assert final.error is not None and "recovered by recoverer:1" in final.error


def test_a_run_of_a_dead_process_on_this_host_is_adopted_at_once(
    make_runner: Callable[..., Runner], store: HistoryStore
) -> None:
    host = "host-a"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    runner = make_runner(started_by=f"{host}:{os.getpid()}")
    run, _ = orphan(runner, store, started_by=f"{host}:{dead_pid}", age_s=0)  # a fresh heartbeat
    me = f"{host}:{os.getpid()}"
    assert recovery.owner_gone(run, me)
    assert not recovery.owner_gone(replace(run, started_by="host-b:1"), me)  # another host
    assert not recovery.owner_gone(replace(run, started_by=f"{host}:1"), me)  # init lives
    # our own pid (a restarted container): gone unless this process holds the run
    assert recovery.owner_gone(replace(run, started_by=me), me)
    finished = recovery.find_and_recover(
        store,
        lambda _job: runner,
        owner=me,
        now=datetime.now(UTC),
        stale_before=datetime.now(UTC) - timedelta(hours=1),  # nothing is stale by the clock
    )
    assert [r.run_id for r in finished] == [run.run_id]
    assert finished[0].error is not None and f"after {host}:{dead_pid} stopped" in finished[0].error


def test_a_run_this_process_holds_is_never_taken_for_a_dead_ones(
    make_runner: Callable[..., Runner], store: HistoryStore, sandbox: SandboxServer
) -> None:
    me = f"host-a:{os.getpid()}"
    runner = make_runner(started_by=me)
    sandbox.sandbox.fleet.time_scale = 0.2
    thread, _ = in_background(
        lambda: runner.run(
            job("backup", concurrency=1, sites=(sandbox.sandbox.fleet.sites[0].name,)),
            RunTrigger.MANUAL,
            now(),
        )
    )
    deadline = time.monotonic() + 10
    while not store.runs.running_runs_started_by("host-a:") and time.monotonic() < deadline:
        time.sleep(0.02)
    (mine,) = store.runs.running_runs_started_by("host-a:")
    assert not recovery.owner_gone(mine, me)
    runner.cancel.set()
    thread.join(timeout=10)


def test_a_run_is_held_from_the_moment_its_claim_is_written(
    make_runner: Callable[..., Runner],
    store: HistoryStore,
    sandbox: SandboxServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between the claim's insert and the run's start, a recovery pass in the same process
    must not see the run as a dead process's (it did on a loaded machine)."""
    me = f"host-a:{os.getpid()}"
    runner = make_runner(started_by=me)
    seen: list[bool] = []
    claim = store.runs.claim_run

    def claim_and_look(*args: Any, **kwargs: Any) -> Any:
        run = claim(*args, **kwargs)
        assert run is not None
        seen.append(recovery.owner_gone(run, me))
        return run

    monkeypatch.setattr(store.runs, "claim_run", claim_and_look)
    site = sandbox.sandbox.fleet.sites[0].name
    runner.run(job("clear_cache", sites=(site,)), RunTrigger.MANUAL, now())
    assert seen == [False]


# --- operation ids that repeat per environment (11.6) -------------------------------------------


def test_recovery_never_attributes_a_newer_operation_with_the_same_id(
    make_runner: Callable[..., Runner], store: HistoryStore
) -> None:
    runner = make_runner(started_by="recoverer:1")
    run, _ = orphan(runner, store)
    (first, *_) = store.tasks.run_tasks(run.run_id)
    reused = first.operations[0].operation_id
    later = datetime.now(UTC)  # a newer run started an operation with that same id since
    newer = store.runs.claim_run("other", RunTrigger.MANUAL, later, later, started_by="x:1")
    assert newer is not None
    (task,) = store.runs.plan_tasks(
        newer.run_id, [PlannedTask(Target("s", "s", "env-x", "live"), "clear_cache")]
    )
    store.tasks.start_operation(task, reused, "clear_cache", later)
    recover_as(runner, store, "recoverer:1")
    (first, *_) = store.tasks.run_tasks(run.run_id)
    assert first.operations[0].state is OperationState.UNKNOWN
    assert first.operations[0].polls == 0  # never polled: the id names the newer one now
    assert first.status is TaskStatus.INTERRUPTED
    assert "cannot be known" in (first.message or "")


def test_recovery_does_not_poll_an_id_while_its_environment_is_busy_elsewhere(
    make_runner: Callable[..., Runner], store: HistoryStore
) -> None:
    runner = make_runner(started_by="recoverer:1")
    run, _ = orphan(runner, store)
    env = store.tasks.run_tasks(run.run_id)[0].environment_id
    assert env is not None
    store.locks.try_lock_environment(
        env, "someone-else", "job other, run 9", datetime.now(UTC), 600
    )
    recover_as(runner, store, "recoverer:1")
    (first, *_) = store.tasks.run_tasks(run.run_id)
    assert first.operations[0].state is OperationState.UNKNOWN
    assert "held by job other, run 9" in (first.operations[0].message or "")


def test_recovery_takes_over_the_dead_runs_own_lock(
    make_runner: Callable[..., Runner], store: HistoryStore
) -> None:
    runner = make_runner(started_by="recoverer:1")
    run, _ = orphan(runner, store)
    env = store.tasks.run_tasks(run.run_id)[0].environment_id
    assert env is not None
    dead_holder = f"gone:99/run-{run.run_id}/{env}"
    store.locks.try_lock_environment(env, dead_holder, "job tick", datetime.now(UTC), 600)
    recover_as(runner, store, "recoverer:1")
    (first, *_) = store.tasks.run_tasks(run.run_id)
    assert first.operations[0].state is OperationState.SUCCEEDED
    assert first.status is TaskStatus.SUCCEEDED


def test_a_recovery_that_died_leaves_its_lock_to_the_next_one(
    make_runner: Callable[..., Runner], store: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recovery killed while following an operation holds the environment's lock until its
    lease lapses; the next recovery of the run takes that lock over as it takes a dead run's,
    and follows the operation instead of recording it unknown."""
    run, _ = orphan(make_runner(), store)
    dead = make_runner(started_by="dead-recoverer:7")
    monkeypatch.setattr(dead.locks, "release", lambda *_args: None)  # it never gets to

    def killed(*_args: Any, **_kwargs: Any) -> None:
        raise KeyboardInterrupt  # kill -9 while following

    monkeypatch.setattr(dead, "follow", killed)
    with pytest.raises(KeyboardInterrupt):
        recover_as(dead, store, "dead-recoverer:7")
    runner = make_runner(started_by="recoverer:2")
    recovery.find_and_recover(
        store,
        lambda _job: runner,
        owner="recoverer:2",
        now=datetime.now(UTC),
        stale_before=datetime.now(UTC) + timedelta(seconds=1),  # the dead one's beats stopped
    )
    (first, *_) = store.tasks.run_tasks(run.run_id)
    assert first.operations[0].state is OperationState.SUCCEEDED
    assert first.status is TaskStatus.SUCCEEDED
    # The "dead" recoverer's lease keeper still runs in this process: stop it, or it keeps
    # renewing on a store that later tests dispose of.
    monkeypatch.undo()
    env = first.environment_id
    dead.locks.release(env or "", f"dead-recoverer:7/run-{run.run_id}/{env}")


# --- durations seen late never train the estimate (11.27) ------------------------------------


def test_a_duration_seen_late_says_nothing() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    done = start + timedelta(seconds=127)
    on_time = [{"at": done.isoformat(), "state": "succeeded"}]
    assert operation_duration_s(start, done, on_time) == 127
    late = [{"at": done.isoformat(), "state": "succeeded", "late": True}]
    assert operation_duration_s(start, done, late) is None


def test_operations_recovered_late_do_not_slow_every_later_run(
    make_runner: Callable[..., Runner], store: HistoryStore
) -> None:
    runner = make_runner(started_by="recoverer:1")
    # enough samples for an estimate, each started 10 minutes before recovery saw it done
    orphans = [orphan(runner, store, first=i)[0] for i in range(5)]
    recover_as(runner, store, "recoverer:1")
    seen = [op for r in orphans for t in store.tasks.run_tasks(r.run_id) for op in t.operations]
    assert [op.state for op in seen] == [OperationState.SUCCEEDED] * 5
    assert all(op.events[-1].late for op in seen)
    assert "clear_cache" not in store.queries.typical_durations(["clear_cache"])


# --- environment leases (11.7) ---------------------------------------------------------------


def test_a_holder_whose_lease_lapsed_sends_no_further_change(
    make_runner: Callable[..., Runner],
    store: HistoryStore,
    sandbox: SandboxServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process paused longer than its lease (here: its renewals fail) must not go on
    changing an environment that another holder may have taken meanwhile."""
    site = sandbox.sandbox.fleet.sites[0]
    env = site.environments[0]
    sandbox.sandbox.fleet.time_scale = 0.025  # the backup takes 1.5 to 9 s, the lease 0.6 s
    runner = make_runner(lock_lease_s=0.6)

    def no_renewal(holders: Any, now: datetime, lease_s: float) -> set[str]:
        raise StoreError("database unreachable", transient=True)

    monkeypatch.setattr(store.locks, "renew_locks", no_renewal)
    pipeline = Job(
        id="pipeline",
        schedule=None,
        targets=TargetSelector(sites=(site.name,)),
        actions=(ActionSpec("backup"), ActionSpec("clear_cache")),
        on_failure="continue",
    )
    thread, out = in_background(lambda: runner.run(pipeline, RunTrigger.MANUAL, now()))
    time.sleep(1.0)  # the lease lapsed: another holder takes the environment
    assert store.locks.try_lock_environment(env.id, "other", "job other", now(), 60) is None
    thread.join(timeout=20)
    (result,) = out
    tasks = {t.action: t for t in store.tasks.run_tasks(result.run_id)}
    assert tasks["clear_cache"].status is TaskStatus.FAILED
    assert "lost the environment's lock" in (tasks["clear_cache"].message or "")
    assert (
        sandbox.sandbox.fleet.counters().get(f"{site.name}/live", {}).get("cache:clear:accepted", 0)
        == 0
    )


def test_renewal_reports_a_lease_taken_by_another_holder(store: HistoryStore) -> None:
    t0 = datetime.now(UTC)
    assert store.locks.try_lock_environment("env", "a", "job a", t0, 1) is None
    assert store.locks.renew_locks(["a"], t0 + timedelta(seconds=0.5), 1) == {"a"}
    later = t0 + timedelta(seconds=5)  # a's lease lapsed; b takes it
    assert store.locks.renew_locks(["a"], later, 1) == set()
    assert store.locks.try_lock_environment("env", "b", "job b", later, 1) is None
    assert store.locks.renew_locks(["a", "b"], later, 1) == {"b"}


def test_a_lock_another_process_releases_is_taken_at_once_not_after_a_backoff(
    store: HistoryStore,
) -> None:
    """Waiters do not each poll the database with a backoff of up to 2 s: one watcher asks
    which awaited environments are free, and wakes their waiters."""
    from scheduler.clock import CancelScope, SystemClock
    from scheduler.run.leases import LOCK_POLL_S, WATCH_S, EnvironmentLocks

    assert (
        store.locks.try_lock_environment("env", "other", "job other", datetime.now(UTC), 60) is None
    )
    locks = EnvironmentLocks(store, SystemClock(), 60)
    thread, out = in_background(
        lambda: locks.acquire("env", "me", "job me", CancelScope(), deadline_s=30)
    )
    time.sleep(4.0)  # the waiter's pauses have grown: its next try would come 1.6 s later
    store.locks.unlock_environment("env", "other")  # as another process would
    released = time.monotonic()
    thread.join(timeout=10)
    assert out == [None] and time.monotonic() - released < WATCH_S + 0.8 < LOCK_POLL_S[1]
    assert store.locks.try_lock_environment("env", "other", "job other", datetime.now(UTC), 60)
    locks.release("env", "me")
    locks.settle()


def test_no_lock_thread_outlives_the_run_that_used_it(
    make_runner: Callable[..., Runner], sandbox: SandboxServer
) -> None:
    """Lease renewals and lock watching end with the last run that needed them: nothing of a
    run still queries the store once it returned (a store closed then is not used behind its
    back; a connection taken by such a query would outlive its engine)."""
    names = {"environment-locks", "environment-lock-watcher"}
    before = set(threading.enumerate())  # other tests' runners may still have theirs
    runner = make_runner()
    site = sandbox.sandbox.fleet.sites[0].name
    run = runner.run(job("clear_cache", sites=(site,)), RunTrigger.MANUAL, datetime.now(UTC))
    assert run is not None and run.status is RunStatus.SUCCEEDED
    assert not [t.name for t in set(threading.enumerate()) - before if t.name in names]


# --- timeouts (11.13) --------------------------------------------------------------------------


def test_a_run_past_its_timeout_fails_even_when_every_task_had_started(
    make_runner: Callable[..., Runner], store: HistoryStore, sandbox: SandboxServer
) -> None:
    sandbox.sandbox.fleet.time_scale = 0.015  # a backup takes 0.9 to 5.4 s
    site = sandbox.sandbox.fleet.sites[1]
    run = make_runner().run(
        job("backup", sites=(site.name,), timeout_s=0.5, concurrency=4), RunTrigger.MANUAL, now()
    )
    assert run is not None and run.status is RunStatus.FAILED
    assert run.error == "timed out after 0.5s"
    assert {t.status for t in store.tasks.run_tasks(run.run_id)} == {TaskStatus.SUCCEEDED}


# --- shutdown (11.3) ---------------------------------------------------------------------------


def test_a_client_closed_under_a_running_run_leaves_it_interrupted_not_failed(
    make_runner: Callable[..., Runner], store: HistoryStore, sandbox: SandboxServer
) -> None:
    sandbox.sandbox.fleet.time_scale = 0.05  # a backup takes 3 s or more
    runner = make_runner()
    site = sandbox.sandbox.fleet.sites[0]
    thread, out = in_background(
        lambda: runner.run(job("backup", sites=(site.name,)), RunTrigger.MANUAL, now())
    )
    deadline = time.monotonic() + 10
    while not any(t.operation_id for t in store.queries.list_tasks(TaskFilter())):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    runner.client.close()
    thread.join(timeout=10)
    (result,) = out
    assert result.status is RunStatus.INTERRUPTED
    (task,) = store.tasks.run_tasks(result.run_id)
    assert task.status is TaskStatus.RUNNING  # its operation is left for recovery
    assert task.operations[0].state is not OperationState.FAILED
    with pytest.raises(Interrupted):
        runner.client.sites.list(runner.company_id)
