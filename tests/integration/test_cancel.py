"""Cancelling a run by hand, in-process against the sandbox and a real database (SQLite and
PostgreSQL): the request is written to the history as another host's `cancel` would write it,
the run's heartbeat reads it back, no new target starts, what was in flight is followed to its
end and recorded, what never started is skipped saying why, and the run ends `cancelled`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from scheduler.clock import SystemClock
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
    TargetSelector,
    TaskStatus,
)
from scheduler.history import HistoryStore, RunFilter
from scheduler.kinsta import KinstaClient, RateGovernor
from scheduler.ports import Beat
from scheduler.runner import Runner
from scheduler.sandbox import DEFAULT_API_KEY, SandboxServer

FAST = Polling(first_poll_s=0.03, max_interval_s=0.1, not_found_grace_s=5, deadline_s=20)
BEAT_S = 0.1
BACKUPS = Job(
    id="backups",
    schedule=None,
    targets=TargetSelector(environment="all"),
    actions=(ActionSpec("backup"), ActionSpec("clear_cache")),
    concurrency=2,
)


@pytest.fixture
def runner(sandbox: SandboxServer, store: HistoryStore) -> Iterator[Runner]:
    clock = SystemClock()
    client = KinstaClient(
        sandbox.url, Secret(DEFAULT_API_KEY), RateGovernor(RateLimits(), clock), clock
    )
    sandbox.sandbox.fleet.time_scale = 0.004  # a backup takes 0.24 to 1.4 s
    company = sandbox.sandbox.fleet.company_id
    yield Runner(client, store, clock, FAST, company, started_by="runner:1", heartbeat_s=BEAT_S)
    client.close()


def in_background(runner: Runner, job: Job) -> tuple[threading.Thread, list[Run | None]]:
    out: list[Run | None] = []
    thread = threading.Thread(
        target=lambda: out.append(runner.run(job, RunTrigger.MANUAL, datetime.now(UTC)))
    )
    thread.start()
    return thread, out


def running(store: HistoryStore, started: int) -> Run:
    """The running run, once `started` of its tasks have started."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = store.queries.list_runs(RunFilter(status="running"))
        if found:
            tasks = store.tasks.run_tasks(found[0].run_id)
            if sum(t.status is not TaskStatus.PENDING for t in tasks) >= started:
                return found[0]
        time.sleep(0.01)
    raise AssertionError("no run started its tasks")


def watch_beats(
    store: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], tuple[datetime, int] | None]:
    """When the run's heartbeat first read a cancel back, and how many targets had started by
    then (counted after that beat, so never fewer than had started at the notice)."""
    beat = store.runs.heartbeat
    seen: list[tuple[datetime, int]] = []

    def watched(run_id: int, now: datetime, *, owner: str | None = None) -> Beat:
        found = beat(run_id, now, owner=owner)
        if found.cancel is not None and not seen:
            tasks = store.tasks.run_tasks(run_id)
            started = {t.site + t.environment for t in tasks if t.status is not TaskStatus.PENDING}
            seen.append((datetime.now(UTC), len(started)))
        return found

    monkeypatch.setattr(store.runs, "heartbeat", watched)
    return lambda: seen[0] if seen else None


def test_a_cancel_stops_new_targets_and_records_the_work_in_flight(
    runner: Runner, store: HistoryStore, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    noticed = watch_beats(store, monkeypatch)
    thread, out = in_background(runner, BACKUPS)
    run = running(store, started=1)
    asked = store.runs.request_cancel(
        run.run_id, datetime.now(UTC), by="ops@bastion", reason="bad release"
    )
    assert asked is not None and asked.cancel is not None
    thread.join(timeout=30)
    (final,) = out
    assert final is not None and final.status is RunStatus.CANCELLED
    at = asked.cancel.at.isoformat(timespec="seconds").replace("+00:00", "Z")
    why = f"cancelled by ops@bastion at {at}: bad release"
    assert final.error is not None and final.error.startswith(f"{why} (")
    assert "task(s) not started" in final.error

    tasks = store.tasks.run_tasks(final.run_id)
    started = [t for t in tasks if t.status is not TaskStatus.SKIPPED]
    skipped = [t for t in tasks if t.status is TaskStatus.SKIPPED]
    assert {t.status for t in started} == {TaskStatus.SUCCEEDED}  # finished normally
    assert {t.message for t in skipped} == {f"not started: {why}"}
    for task in started:  # every operation followed to its final state
        assert [op.state for op in task.operations] == [OperationState.SUCCEEDED], task
    notice = noticed()
    assert notice is not None
    touched = {t.site + t.environment for t in started}
    assert len(touched) <= notice[1] < len(sandbox_environments(sandbox))  # none started later
    backups_sent = sum(c.get("backups:add-manual:accepted", 0) for c in counters(sandbox))
    assert backups_sent == sum(t.action == "backup" for t in started)  # nothing lost


def test_a_cancel_before_any_target_starts_skips_them_all(
    runner: Runner, store: HistoryStore, sandbox: SandboxServer
) -> None:
    blocked = threading.Event()
    original = runner.targets

    def slow_targets(job: Job) -> list:  # type: ignore[type-arg]
        blocked.wait(10)  # the cancel lands while the targets are being resolved
        return original(job)

    runner.targets = slow_targets  # type: ignore[method-assign]
    thread, out = in_background(runner, BACKUPS)
    run = running(store, started=0)
    store.runs.request_cancel(run.run_id, datetime.now(UTC), by="ops@bastion")
    time.sleep(3 * BEAT_S)  # a beat reads it back
    blocked.set()
    thread.join(timeout=30)
    (final,) = out
    assert final is not None and final.status is RunStatus.CANCELLED
    tasks = store.tasks.run_tasks(final.run_id)
    assert tasks and {t.status for t in tasks} == {TaskStatus.SKIPPED}
    assert final.error is not None and f"({len(tasks)} task(s) not started)" in final.error
    assert sum(c.get("backups:add-manual:accepted", 0) for c in counters(sandbox)) == 0


def test_a_cancel_that_comes_after_the_run_ended_leaves_it_as_it_ended(
    runner: Runner, store: HistoryStore
) -> None:
    quick = Job("quick", None, TargetSelector(sites=("no-such-site",)), (ActionSpec("backup"),))
    run = runner.run(quick, RunTrigger.MANUAL, datetime.now(UTC))
    assert run is not None and run.status is RunStatus.SKIPPED
    after = store.runs.request_cancel(run.run_id, datetime.now(UTC), by="ops@bastion")
    assert after is not None and after.status is RunStatus.SKIPPED and after.cancel is None


def counters(sandbox: SandboxServer) -> list[dict[str, int]]:
    return list(sandbox.sandbox.fleet.counters().values())


def sandbox_environments(sandbox: SandboxServer) -> list[str]:
    return [f"{s.name}/{e.name}" for s in sandbox.sandbox.fleet.sites for e in s.environments]
