"""The sandbox's fleet as Kinsta's looks: some environments without CDN or edge cache, and the
system backups Kinsta takes before a restore or a push (issue 12, items 3 and 6). Real HTTP,
the real runner, a real SQLite history."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scheduler.actions.catalogue import CATALOGUE
from scheduler.clock import SystemClock
from scheduler.domain import (
    Job,
    Polling,
    RateLimits,
    RunStatus,
    RunTrigger,
    Secret,
    TargetSelector,
    TaskStatus,
)
from scheduler.history import HistoryStore, make_engine, sql_store
from scheduler.history.migrate import upgrade
from scheduler.kinsta import KinstaClient, RateGovernor
from scheduler.runner import Runner
from scheduler.sandbox import DEFAULT_API_KEY, SandboxServer
from scheduler.sandbox.state import CACHELESS_SHARE, Fleet, SandboxEnvironment
from tests.conftest import FakeClock, checked_sandbox

FAST = Polling(first_poll_s=0.03, max_interval_s=0.1, not_found_grace_s=5, deadline_s=10)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    yield from checked_sandbox(time_scale=0.005)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    engine = make_engine(f"sqlite:///{tmp_path / 'history.db'}")
    upgrade(engine)
    yield sql_store(engine)
    engine.dispose()


@pytest.fixture
def run_job(
    sandbox: SandboxServer, store: HistoryStore
) -> Iterator[Callable[..., list[tuple[str, TaskStatus, str]]]]:
    """Run actions on targets through the real runner; (site/environment, status, message)."""
    clock = SystemClock()
    client = KinstaClient(
        sandbox.url, Secret(DEFAULT_API_KEY), RateGovernor(RateLimits(), clock), clock
    )
    runner = Runner(client, store, clock, FAST, sandbox.sandbox.fleet.company_id, started_by="test")

    def run(
        *actions: tuple[str, dict[str, Any]], sites: tuple[str, ...] = ("*",), env: str = "live"
    ) -> list[tuple[str, TaskStatus, str]]:
        job = Job(
            "fleet-test",
            None,
            TargetSelector(sites=sites, environment=env),
            tuple(CATALOGUE.step(name, **options) for name, options in actions),
        )
        done = runner.run(job, RunTrigger.MANUAL, datetime.now(UTC))
        assert done is not None and done.status is not RunStatus.RUNNING
        return [
            (f"{t.site}/{t.environment}", t.status, t.message or "")
            for t in store.tasks.run_tasks(done.run_id)
        ]

    yield run
    client.close()


def environments(fleet: Fleet) -> list[SandboxEnvironment]:
    return [env for site in fleet.sites for env in site.environments]


# --- item 3: environments without CDN and edge cache ---------------------------------------------


def test_some_environments_have_neither_cache_id_decided_by_the_seed() -> None:
    fleets = [Fleet(40, seed, 1.0, FakeClock()) for seed in (1, 1, 2)]
    bare = [{e.id for e in environments(f) if e.cdn_cache_id is None} for f in fleets]
    for fleet in fleets:
        for env in environments(fleet):
            assert (env.cdn_cache_id is None) == (env.edge_cache_id is None)
    share = len(bare[0]) / len(environments(fleets[0]))
    assert CACHELESS_SHARE / 2 < share < CACHELESS_SHARE * 2
    assert bare[0] == bare[1]  # the same seed, the same environments without caches
    assert {e.id for e in environments(fleets[0])} != {e.id for e in environments(fleets[2])}


def test_an_environment_without_caches_shows_null_ids(sandbox: SandboxServer) -> None:
    fleet = sandbox.sandbox.fleet
    bare = next(e for e in environments(fleet) if e.cdn_cache_id is None)
    clock = SystemClock()
    with KinstaClient(
        sandbox.url, Secret(DEFAULT_API_KEY), RateGovernor(RateLimits(), clock), clock
    ) as client:
        listed = next(e for e in client.environments.list(bare.site_id) if e.id == bare.id)
    assert listed.cdn_cache_id is None and listed.id_edge_cache is None
    # the response validated against the spec (checked_sandbox), nulls included


def test_clear_cdn_cache_skips_the_environments_without_one(
    sandbox: SandboxServer, run_job: Callable[..., list[tuple[str, TaskStatus, str]]]
) -> None:
    tasks = run_job(("clear_cdn_cache", {}), env="all")
    state = sandbox.sandbox.fleet.state()
    skipped = {key for key, status, _ in tasks if status is TaskStatus.SKIPPED}
    assert skipped == {key for key, env in state.items() if env["cdn_cache_id"] is None}
    assert skipped and len(skipped) < len(tasks)  # both paths ran
    assert {status for key, status, _ in tasks if key not in skipped} == {TaskStatus.SUCCEEDED}


# --- item 6: system backups before a restore or a push -------------------------------------------


def test_a_restore_is_preceded_by_a_system_backup_of_the_target(
    sandbox: SandboxServer, run_job: Callable[..., list[tuple[str, TaskStatus, str]]]
) -> None:
    fleet = sandbox.sandbox.fleet
    site = fleet.sites[1]
    env = site.environments[0]
    run_job(("backup", {"tag": "known-good"}), sites=(site.name,))
    plugin = next(iter(env.plugins))
    good = env.plugins[plugin].version
    env.plugins[plugin].version = "0.0.1-broken"
    tasks = run_job(("restore_backup", {"backup": "latest_manual"}), sites=(site.name,))
    assert [status for _, status, _ in tasks] == [TaskStatus.SUCCEEDED]
    assert env.plugins[plugin].version == good
    system = [b for b in env.backups if b.type == "system"]
    assert len(system) == 1 and system[0].snapshot["plugins"][plugin] == "0.0.1-broken"
    assert system[0].created_at >= max(b.created_at for b in env.backups if b.type == "manual")


def test_restore_latest_after_a_push_undoes_the_push_and_latest_manual_ignores_it(
    sandbox: SandboxServer, run_job: Callable[..., list[tuple[str, TaskStatus, str]]]
) -> None:
    fleet = sandbox.sandbox.fleet
    site = next(s for s in fleet.sites if len(s.environments) == 2)
    live, staging = site.environments
    before_push = live.snapshot()
    run_job(("backup", {"tag": "weekly"}), sites=(site.name,))
    assert live.snapshot() != staging.snapshot()

    pushed = run_job(("push_to_live", {}), sites=(site.name,), env="staging")
    assert [status for _, status, _ in pushed] == [TaskStatus.SUCCEEDED]
    assert live.snapshot() == staging.snapshot()
    assert [b.note for b in live.backups if b.type == "system"] == ["Before push from Staging"]

    # `latest` is any type: the system backup Kinsta took before the push, so the push is undone
    run_job(("restore_backup", {"backup": "latest"}), sites=(site.name,))
    assert live.snapshot() == before_push
    # `latest_manual` still means our own backup, though two system backups are newer now
    tasks = run_job(("restore_backup", {"backup": "latest_manual"}), sites=(site.name,))
    manual = next(b for b in live.backups if b.type == "manual")
    assert tasks[0][2] == f"restored backup {manual.id}"
    assert len([b for b in live.backups if b.type == "system"]) == 3
