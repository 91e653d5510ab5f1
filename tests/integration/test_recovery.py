"""The daemon's guarantees, in-process against the sandbox and a real database: catch-up after
downtime, skipped and missed slots with reasons, run timeouts, and crash recovery that follows
started operations to their end without repeating anything."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler import config as config_module
from scheduler import schedules
from scheduler.clock import SystemClock
from scheduler.daemon import Collaborators, Daemon
from scheduler.domain import (
    ActionSpec,
    Config,
    IntervalSchedule,
    Job,
    OperationState,
    Polling,
    RateLimits,
    RunStatus,
    RunTrigger,
    Secret,
    TargetSelector,
    TaskStatus,
)
from scheduler.history import HistoryStore, PlannedTask, RunFilter
from scheduler.kinsta import KinstaClient, RateGovernor
from scheduler.run import policy
from scheduler.runner import NOT_STARTED_TIMEOUT, Runner
from scheduler.sandbox import DEFAULT_API_KEY, SandboxServer
from scheduler.targets import select_targets

FAST = Polling(first_poll_s=0.03, max_interval_s=0.1, not_found_grace_s=5, deadline_s=10)


@pytest.fixture
def runner(sandbox: SandboxServer, store: HistoryStore) -> Iterator[Runner]:
    clock = SystemClock()
    client = KinstaClient(
        sandbox.url, Secret(DEFAULT_API_KEY), RateGovernor(RateLimits(), clock), clock
    )
    yield Runner(
        client,
        store,
        clock,
        FAST,
        sandbox.sandbox.fleet.company_id,
        started_by="this-host:1",
        heartbeat_s=0.2,
    )
    client.close()


@pytest.fixture
def make_daemon(
    runner: Runner, store: HistoryStore, tmp_path: Path
) -> Iterator[Callable[[str], Daemon]]:
    path = tmp_path / "jobs.yaml"
    made: list[Daemon] = []

    def make(text: str) -> Daemon:
        path.write_text(text)

        def load() -> Config:
            return config_module.load(path, {})

        daemon = Daemon(
            load(),
            Collaborators(
                store,
                lambda job: runner,
                runner.clock,
                load,
                path,
                cancel=runner.cancel,
                draining=runner.draining,
                owner="this-host:1",
                default_runner=runner,
            ),
        )
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        daemon.shutdown(timeout_s=5)


def every(seconds: int, catch_up: str = "1h", site: str = "no-such-site") -> str:
    return f"""version: 1
daemon: {{heartbeat: 0.2s}}
jobs:
  - id: tick
    schedule: {{every: {seconds}s}}
    catch_up: {catch_up}
    targets: {{sites: ["{site}"]}}
    actions: [clear_cache]
"""


def runs_of(store: HistoryStore, job_id: str = "tick") -> list:  # type: ignore[type-arg]
    return sorted(
        store.queries.list_runs(RunFilter(job_id=job_id, limit=1000)), key=lambda r: r.scheduled_for
    )


def test_slots_missed_while_down_are_caught_up_once(
    make_daemon: Callable[[str], Daemon], store: HistoryStore
) -> None:
    ago = datetime.now(UTC) - timedelta(seconds=10)
    last = schedules.latest_slot(IntervalSchedule(every_s=2), ago, timedelta(seconds=2))
    assert last is not None
    store.runs.record_run(
        "tick", RunTrigger.SCHEDULE, last, last, status=RunStatus.SUCCEEDED, error="x"
    )
    make_daemon(every(2)).start()  # recovery and catch-up run at once, in the background
    caught = []
    for _ in range(100):
        caught = [r for r in runs_of(store) if r.trigger is RunTrigger.CATCH_UP]
        if caught and caught[0].status is not RunStatus.RUNNING:
            break
        time.sleep(0.05)
    assert len(caught) == 1 and caught[0].status is RunStatus.SKIPPED  # no site matches
    newest = caught[0].scheduled_for
    expected = (newest - last).total_seconds() / 2 - 1
    missed: list = []  # type: ignore[type-arg]
    for _ in range(100):  # the catch-up run may end before its missed rows are all written
        missed = [r for r in runs_of(store) if r.status is RunStatus.MISSED]
        if len(missed) >= expected:
            break
        time.sleep(0.05)
    # every slot after `last` up to the newest was missed; the newest ran, the others coalesced
    assert len(missed) == expected >= 3
    assert all("coalesced into the catch-up run" in (r.error or "") for r in missed)
    assert all(last < r.scheduled_for < newest for r in missed)


def test_without_catch_up_every_missed_slot_is_recorded(
    make_daemon: Callable[[str], Daemon], store: HistoryStore
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    last = now - timedelta(seconds=7)
    store.runs.record_run(
        "tick", RunTrigger.SCHEDULE, last, last, status=RunStatus.SUCCEEDED, error="x"
    )
    daemon = make_daemon(every(1, catch_up="false"))
    daemon.start(paused=True)
    daemon.catch_up()
    # not yet: within misfire_grace a live replica may still run them (issue 11.11)
    assert runs_of(store) == [runs_of(store)[0]]
    daemon.flush_unrecorded(everything=True)  # as at shutdown, or once their grace has passed
    missed = [r for r in runs_of(store) if r.status is RunStatus.MISSED]
    assert len(missed) in (7, 8)  # the second may tick over while we look
    assert all("catch_up is off" in (r.error or "") for r in missed)
    assert not [r for r in runs_of(store) if r.trigger is RunTrigger.CATCH_UP]
    daemon.catch_up()  # a second start records nothing twice
    daemon.flush_unrecorded(everything=True)
    assert len([r for r in runs_of(store) if r.status is RunStatus.MISSED]) <= 8


def test_a_job_never_run_has_nothing_to_catch_up(
    make_daemon: Callable[[str], Daemon], store: HistoryStore
) -> None:
    make_daemon(every(1)).catch_up()
    assert runs_of(store) == []


def test_a_slot_whose_job_is_still_running_is_skipped(
    make_daemon: Callable[[str], Daemon], store: HistoryStore
) -> None:
    daemon = make_daemon(every(1))
    now = datetime.now(UTC)
    busy = store.runs.claim_run(
        "tick", RunTrigger.SCHEDULE, now - timedelta(seconds=1), now, started_by="other:7"
    )
    assert busy is not None
    daemon._fire("tick")
    skipped = [r for r in runs_of(store) if r.status is RunStatus.SKIPPED]
    assert len(skipped) == 1
    assert skipped[0].error == f"run {busy.run_id} of this job (by other:7) was still running"


def test_a_slot_after_a_cancelled_run_runs(
    make_daemon: Callable[[str], Daemon], store: HistoryStore
) -> None:
    daemon = make_daemon(every(1))
    now = datetime.now(UTC)
    ended = store.runs.claim_run(
        "tick", RunTrigger.SCHEDULE, now - timedelta(seconds=1), now, started_by="other:7"
    )
    assert ended is not None
    store.runs.request_cancel(ended.run_id, now, by="ops@bastion")
    store.runs.finish_run(ended.run_id, RunStatus.CANCELLED, now, "cancelled by ops@bastion")
    daemon._fire("tick")
    assert [r.status for r in runs_of(store)] == [RunStatus.CANCELLED, RunStatus.SKIPPED]
    assert runs_of(store)[1].error == "no environment matched the job's targets"  # it ran


def test_a_run_past_its_timeout_starts_no_new_task(
    runner: Runner, store: HistoryStore, sandbox: SandboxServer
) -> None:
    slow = Job(
        id="slow",
        schedule=None,
        targets=TargetSelector(),
        actions=(ActionSpec("restart_php"),),
        concurrency=1,
        timeout_s=0.3,
    )
    sandbox.sandbox.fleet.time_scale = 0.015  # restart_php: 0.15 to 0.9 s, so not all six fit
    run = runner.run(slow, RunTrigger.MANUAL, datetime.now(UTC))
    assert run is not None and run.status is RunStatus.FAILED
    assert run.error is not None and run.error.startswith("timed out after 0.3s")
    tasks = store.tasks.run_tasks(run.run_id)
    started = [t for t in tasks if t.status is TaskStatus.SUCCEEDED]
    assert 1 <= len(started) < len(tasks)  # the one in flight was followed to its end
    assert all(t.operation_status == "succeeded" for t in started)
    assert {t.message for t in tasks if t.status is TaskStatus.SKIPPED} == {NOT_STARTED_TIMEOUT}


def _orphan(runner: Runner, store: HistoryStore, sandbox: SandboxServer, *, stale: bool) -> int:
    """A run as a crashed process leaves it: one task mid-operation at Kinsta, one task whose
    request may or may not have been sent, one never started; its heartbeat stops."""
    fleet = sandbox.sandbox.fleet
    targets = select_targets(
        runner.client.sites.list(fleet.company_id, include_environments=True), TargetSelector()
    )[:3]
    long_ago = datetime.now(UTC) - timedelta(minutes=10 if stale else 0)
    run = store.runs.claim_run(
        "tick", RunTrigger.SCHEDULE, long_ago, long_ago, started_by="gone:99"
    )
    assert run is not None
    ids = store.runs.plan_tasks(run.run_id, [PlannedTask(t, "clear_cache") for t in targets])
    accepted = runner.client.tools.clear_cache(targets[0].environment_id)
    store.tasks.start_task(ids[0], long_ago)
    store.tasks.start_operation(ids[0], accepted.operation_id, "clear_cache", long_ago)
    store.tasks.start_task(ids[1], long_ago)
    return run.run_id


def test_recovery_follows_started_operations_and_repeats_nothing(
    make_daemon: Callable[[str], Daemon],
    runner: Runner,
    store: HistoryStore,
    sandbox: SandboxServer,
) -> None:
    run_id = _orphan(runner, store, sandbox, stale=True)
    accepted_before = sandbox.sandbox.fleet.counters()
    make_daemon(every(3600)).recover_orphans()

    run = store.queries.get_run(run_id)
    assert run is not None and run.status is RunStatus.INTERRUPTED
    assert run.error is not None and "recovered by this-host:1 after gone:99 stopped" in run.error
    first, unsure, never = store.tasks.run_tasks(run_id)
    assert first.status is TaskStatus.SUCCEEDED and first.operation_status == "succeeded"
    assert first.operations[0].state is OperationState.SUCCEEDED and first.operations[0].polls >= 1
    assert unsure.status is TaskStatus.INTERRUPTED and "nothing repeated" in (unsure.message or "")
    assert never.status is TaskStatus.INTERRUPTED and "not started" in (never.message or "")
    accepted = sandbox.sandbox.fleet.counters()
    assert sum(c.get("cache:clear:accepted", 0) for c in accepted.values()) == sum(
        c.get("cache:clear:accepted", 0) for c in accepted_before.values()
    )  # recovery sent no new action


def test_an_orphan_cancelled_by_hand_is_recovered_as_cancelled(
    make_daemon: Callable[[str], Daemon],
    runner: Runner,
    store: HistoryStore,
    sandbox: SandboxServer,
) -> None:
    run_id = _orphan(runner, store, sandbox, stale=True)
    asked = store.runs.request_cancel(run_id, datetime.now(UTC), by="ops@bastion", reason="stop")
    assert asked is not None and asked.cancel is not None
    make_daemon(every(3600)).recover_orphans()

    run = store.queries.get_run(run_id)
    assert run is not None and run.status is RunStatus.CANCELLED
    why = policy.cancelled_by(asked.cancel)
    assert run.error is not None and run.error.startswith(f"{why} (1 task(s) not started); ")
    assert "recovered by this-host:1 after gone:99 stopped" in run.error
    first, unsure, never = store.tasks.run_tasks(run_id)
    assert first.status is TaskStatus.SUCCEEDED  # its operation was followed to its end
    assert unsure.status is TaskStatus.INTERRUPTED  # nothing repeated
    assert never.status is TaskStatus.SKIPPED and never.message == f"not started: {why}"


def test_a_live_run_is_not_recovered(
    make_daemon: Callable[[str], Daemon],
    runner: Runner,
    store: HistoryStore,
    sandbox: SandboxServer,
) -> None:
    run_id = _orphan(runner, store, sandbox, stale=False)
    make_daemon(every(3600)).recover_orphans()
    run = store.queries.get_run(run_id)
    assert run is not None and run.status is RunStatus.RUNNING


def test_only_one_process_adopts_an_orphan(
    runner: Runner, store: HistoryStore, sandbox: SandboxServer
) -> None:
    _orphan(runner, store, sandbox, stale=True)
    stale_before = datetime.now(UTC) - timedelta(seconds=30)
    (orphan,) = store.runs.orphaned_runs(stale_before)
    wins = []

    def adopt(owner: str) -> None:
        wins.append(store.runs.adopt_run(orphan, owner, datetime.now(UTC), stale_before))

    threads = [threading.Thread(target=adopt, args=(f"p{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(w is not None for w in wins) == [False, False, False, True]


def test_a_firing_while_the_previous_run_still_runs_is_recorded_skipped(
    store: HistoryStore, tmp_path: Path
) -> None:
    """APScheduler refuses a second instance of a busy job; the daemon records that slot."""
    path = tmp_path / "jobs.yaml"
    path.write_text(every(1))
    config = config_module.load(path, {})
    release = threading.Event()

    class SlowRunner:
        def run(self, job: Job, trigger: RunTrigger, slot: datetime, revision: str) -> None:
            release.wait(10)

    daemon = Daemon(
        config,
        Collaborators(
            store,
            lambda job: SlowRunner(),  # type: ignore[arg-type,return-value]
            SystemClock(),
            lambda: config,
            path,
            cancel=threading.Event(),
        ),
    )
    daemon.start()
    try:
        for _ in range(100):
            if [r for r in runs_of(store) if r.status is RunStatus.SKIPPED]:
                break
            time.sleep(0.05)
    finally:
        release.set()
        daemon.shutdown(timeout_s=5)
    skipped = [r for r in runs_of(store) if r.status is RunStatus.SKIPPED]
    assert skipped and skipped[0].error == "the previous run was still running"
