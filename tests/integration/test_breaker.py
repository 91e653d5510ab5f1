"""The circuit breaker and waves through the runner against the sandbox: a release that breaks
every site it reaches halts the run after the canary, and nothing past it is touched."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from scheduler.actions.updates import UpdateOptions
from scheduler.actions.verify import VerifyOptions
from scheduler.clock import SystemClock
from scheduler.domain import (
    ActionSpec,
    Job,
    Polling,
    RateLimits,
    RunStatus,
    RunTrigger,
    Secret,
    TargetSelector,
    TaskStatus,
)
from scheduler.history import SqlHistoryStore
from scheduler.kinsta import KinstaClient, RateGovernor
from scheduler.rollout import WAVE_ENDED, WAVE_NOT_STARTED, HaltAfter, Rollout, Share
from scheduler.runner import Runner
from scheduler.sandbox import DEFAULT_API_KEY, SandboxServer
from scheduler.sandbox_values import SandboxRelease
from tests.conftest import checked_sandbox

FAST = Polling(first_poll_s=0.02, max_interval_s=0.1, not_found_grace_s=5, deadline_s=60)
# Kinsta's limits over a window scaled down with the sandbox's time: a run of safe updates
# (backup, update, read-backs, restore, polls) spends Kinsta's 120 requests in seconds here,
# and at the real 60 s window the third target waited ~40 s for budget. Operations 1000x
# faster: the run does 13 restores (every plugin breaks, so culprits are isolated one by one).
WINDOW_S = 3.0


@pytest.fixture
def fleet() -> Iterator[SandboxServer]:
    yield from checked_sandbox(sites=12, seed=3, time_scale=0.001, window_s=WINDOW_S)


def breaking_updates(server: SandboxServer) -> Job:
    """Every plugin update on offer breaks the homepage it reaches; a safe update job."""
    fleet = server.sandbox.fleet
    names = {n for env in fleet.state().values() for n in env["updates"] if n in env["plugins"]}
    with fleet.lock:
        for name in names:
            fleet.releases.add(SandboxRelease(name, None, "fatal"))
    options = UpdateOptions(safe=True, verify=VerifyOptions(contains="Powered by WordPress"))
    return Job(
        "updates",
        None,
        TargetSelector(),
        (ActionSpec("update_plugins", options),),
        on_failure="continue",
    )


def run(server: SandboxServer, store: SqlHistoryStore, job: Job) -> tuple[Runner, object]:
    clock = SystemClock()
    client = KinstaClient(
        server.url,
        Secret(DEFAULT_API_KEY),
        RateGovernor(RateLimits(window_s=WINDOW_S), clock),
        clock,
    )
    runner = Runner(client, store, clock, FAST, server.sandbox.fleet.company_id, started_by="t")
    try:
        return runner, runner.run(job, RunTrigger.MANUAL, datetime.now(UTC))
    finally:
        client.close()


def test_the_breaker_halts_a_rollout_after_its_canary(
    fleet: SandboxServer, store: SqlHistoryStore
) -> None:
    job = replace(
        breaking_updates(fleet),
        rollout=Rollout(canary=Share(count=2), waves=(Share(percent=50), Share(percent=100))),
        halt_after=HaltAfter(rolled_back=Share(count=2)),
    )
    _, result = run(fleet, store, job)
    assert result is not None
    shown = store.queries.get_run(result.run_id)  # type: ignore[attr-defined]
    assert shown is not None and shown.status is RunStatus.HALTED, shown
    assert "halted: 2 of 2 target(s) done were rolled back" in (shown.error or "")
    tasks = store.tasks.run_tasks(shown.run_id)
    touched = [t for t in tasks if t.started_at is not None]
    assert len(touched) == 2  # the canary only: no target of the next wave started
    assert {t.status for t in touched} == {TaskStatus.ROLLED_BACK}
    assert {t.status for t in tasks if t.started_at is None} == {TaskStatus.SKIPPED}
    assert all("halted" in (t.message or "") for t in tasks if t.started_at is None)
    canary, *later = store.queries.run_waves(shown.run_id)
    assert canary.summary() == "canary: 2 of 2 target(s) done, 0 failed, 2 rolled back"
    assert canary.status == WAVE_ENDED and canary.started_at and canary.ended_at
    assert [(w.name, w.status) for w in later] == [
        ("wave 1 of 2", WAVE_NOT_STARTED),
        ("wave 2 of 2", WAVE_NOT_STARTED),
    ]
    assert sum(w.targets for w in (canary, *later)) == len(tasks)


def test_without_a_rollout_the_breaker_stops_the_run_fleet_wide(
    fleet: SandboxServer, store: SqlHistoryStore
) -> None:
    job = replace(
        breaking_updates(fleet),
        concurrency=1,  # one at a time: the count when it trips is exact
        halt_after=HaltAfter(rolled_back=Share(count=3)),
    )
    _, result = run(fleet, store, job)
    assert result is not None
    final = store.queries.get_run(result.run_id)  # type: ignore[attr-defined]
    assert final is not None and final.status is RunStatus.HALTED
    tasks = store.tasks.run_tasks(final.run_id)
    assert sum(t.started_at is not None for t in tasks) == 3 < len(tasks)
