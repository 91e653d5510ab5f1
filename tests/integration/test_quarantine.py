"""Quarantine and culprit isolation through the runner, against the sandbox, on SQLite and
PostgreSQL: a site with one bad and three good plugin updates ends the night with the three
good ones applied and the bad version quarantined; the next run holds it back everywhere and
updates the rest; released, it goes through; isolation stops at the run's timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from scheduler.actions.catalogue import CATALOGUE
from scheduler.actions.safe import SAFE_TAG
from scheduler.clock import SystemClock
from scheduler.domain import (
    Job,
    RateLimits,
    Run,
    RunStatus,
    RunTrigger,
    Secret,
    TargetSelector,
    Task,
    TaskStatus,
)
from scheduler.history import HistoryStore
from scheduler.kinsta import KinstaClient, RateGovernor
from scheduler.kinsta.probe import SiteProbe
from scheduler.runner import Runner
from scheduler.sandbox import DEFAULT_API_KEY, SandboxServer
from scheduler.sandbox.state import Fleet
from scheduler.sandbox.wordpress import Item
from scheduler.sandbox_values import SandboxRelease
from tests.conftest import checked_sandbox
from tests.integration.test_runner import FAST

BAD = "elementor"
# (name, installed, offered): one bad release among four updates on offer
OFFERED = (
    ("akismet", "5.0.0", "5.0.1"),
    (BAD, "3.2.0", "3.3.0"),
    ("redirection", "1.0.0", "1.0.1"),
    ("wordfence", "7.0.0", "7.0.1"),
)
GOOD = ["akismet", "redirection", "wordfence"]


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """Operations 500x faster than Kinsta's: a night of isolation steps takes seconds."""
    yield from checked_sandbox(time_scale=0.002)


@pytest.fixture
def fleet(sandbox: SandboxServer) -> Fleet:
    """The first two sites' live environments offer the four updates; the bad one breaks."""
    fleet = sandbox.sandbox.fleet
    for site in fleet.sites[:2]:
        live = site.environments[0]
        live.plugins = {n: Item(n, n.title(), old, new) for n, old, new in OFFERED}
    fleet.releases.add(SandboxRelease(BAD, None, "fatal"))
    return fleet


@pytest.fixture
def run_job(
    sandbox: SandboxServer, store: HistoryStore, fleet: Fleet
) -> Iterator[Callable[..., Run]]:
    clock = SystemClock()
    client = KinstaClient(
        sandbox.url, Secret(DEFAULT_API_KEY), RateGovernor(RateLimits(), clock), clock
    )
    runner = Runner(
        client, store, clock, FAST, fleet.company_id, started_by="test", heartbeat_s=0.1
    )
    runner.probe = SiteProbe(5, via=sandbox.url.removesuffix("/v2"))

    def run(sites: int = 1, timeout_s: float = 600.0, **options: Any) -> Run:
        names = tuple(s.name for s in fleet.sites[:sites])
        update = CATALOGUE.step(
            "update_plugins", safe=True, verify={"contains": "Powered by WordPress"}, **options
        )
        job = Job("safe", None, TargetSelector(sites=names), (update,), timeout_s=timeout_s)
        found = runner.run(job, RunTrigger.MANUAL, datetime.now(UTC))
        assert found is not None
        return found

    yield run
    runner.probe.close()
    client.close()


def plugins(fleet: Fleet, site: int = 0) -> dict[str, str]:
    return {n: i.version for n, i in fleet.sites[site].environments[0].plugins.items()}


def only_task(store: HistoryStore, run: Run) -> Task:
    (task,) = store.tasks.run_tasks(run.run_id)
    return task


def test_one_bad_and_three_good_updates_end_with_the_three_applied(
    run_job: Callable[..., Run], store: HistoryStore, fleet: Fleet
) -> None:
    run = run_job()
    task = only_task(store, run)
    assert run.status is RunStatus.FAILED and task.status is TaskStatus.ROLLED_BACK
    assert plugins(fleet) == {"akismet": "5.0.1", BAD: "3.2.0", "redirection": "1.0.1",
                              "wordfence": "7.0.1"}  # fmt: skip
    live = fleet.sites[0].environments[0]
    assert live.broken is None
    result = task.result or {}
    assert result["quarantined"] == [{"name": BAD, "version": "3.3.0"}]
    assert result["isolation"] == {"kept": GOOD, "untried": [], "stopped": None}
    steps = result["steps"]
    assert [(s["items"], s["verdict"], s["outcome"]) for s in steps] == [
        (["akismet", BAD, "redirection", "wordfence"], "failed", "restored"),
        (["akismet", BAD], "failed", "restored"),
        (["akismet"], "passed", "kept"),
        ([BAD], "failed", "restored"),
        (["redirection", "wordfence"], "passed", "kept"),
    ]
    assert all(isinstance(s["backup"], int) for s in steps)
    assert steps[0]["backup"] == result["backup"]["id"] != steps[3]["backup"]
    assert any("PHP fatal" in p for p in steps[0]["problems"])
    assert any("answered 500" in p for p in steps[3]["problems"])
    assert task.versions_after == {"plugins": plugins(fleet)}
    assert "quarantined elementor 3.3.0" in (task.message or "")
    # The night's first backup stays; the one a later step needed is gone.
    ours = [b for b in live.backups if b.type == "manual" and b.note == SAFE_TAG]
    assert [b.id for b in ours] == [result["backup"]["id"]]
    (entry,) = store.quarantine.entries()
    assert (entry.kind, entry.name, entry.version) == ("plugins", BAD, "3.3.0")
    assert (entry.site, entry.environment) == (fleet.sites[0].name, "live")
    assert (entry.run_id, entry.task_id) == (run.run_id, task.task_id)
    assert entry.reason == "; ".join(steps[3]["problems"])  # what its own step failed
    assert "answered 500" in entry.reason


def test_the_next_run_holds_the_version_back_and_a_release_lets_it_through(
    run_job: Callable[..., Run], store: HistoryStore, fleet: Fleet
) -> None:
    run_job()  # the first site isolates the bad release
    second = run_job(sites=2)
    assert second.status is RunStatus.SUCCEEDED
    isolated, fresh = store.tasks.run_tasks(second.run_id)
    assert isolated.status is TaskStatus.SKIPPED
    assert isolated.message == (
        f"plugins: no update passes the job's filters; held back (quarantined): {BAD}"
    )
    assert fresh.status is TaskStatus.SUCCEEDED  # the other site: the rest, and no rollback
    assert (fresh.message or "").endswith(f"site verified; held back (quarantined): {BAD}")
    held = (fresh.result or {})["held_back"][BAD]
    assert held.startswith("3.3.0 quarantined: rolled back on") and "answered 500" in held
    assert plugins(fleet, 1) == plugins(fleet, 0)
    assert plugins(fleet, 1)[BAD] == "3.2.0"

    fleet.releases.remove(BAD, None)  # the failure was the site's, say: the operator releases
    (released,) = store.quarantine.release(BAD, None, datetime.now(UTC))
    assert released.version == "3.3.0" and not released.active
    third = run_job(sites=2)
    assert third.status is RunStatus.SUCCEEDED
    assert plugins(fleet, 0)[BAD] == plugins(fleet, 1)[BAD] == "3.3.0"
    assert store.quarantine.entries() == []


def test_isolation_starts_no_step_the_run_has_no_time_for(
    run_job: Callable[..., Run], store: HistoryStore, fleet: Fleet
) -> None:
    """A step's requests take 7 s of the key's budget (120 a minute): with a 5 s timeout the
    bulk step is restored and nothing more is tried or quarantined."""
    task = only_task(store, run_job(timeout_s=5.0))
    assert task.status is TaskStatus.ROLLED_BACK
    result = task.result or {}
    assert len(result["steps"]) == 1 and result["quarantined"] == []
    isolation = result["isolation"]
    assert isolation["kept"] == [] and len(isolation["untried"]) == 4
    assert isolation["stopped"].startswith("the run's timeout is")
    assert "not tried (the run's timeout is" in (task.message or "")
    assert plugins(fleet)[BAD] == "3.2.0" and plugins(fleet)["akismet"] == "5.0.0"
    assert store.quarantine.entries() == []


def test_isolate_false_restores_and_stops(
    run_job: Callable[..., Run], store: HistoryStore, fleet: Fleet
) -> None:
    task = only_task(store, run_job(isolate=False))
    assert task.status is TaskStatus.ROLLED_BACK
    result = task.result or {}
    assert len(result["steps"]) == 1 and "isolation" not in result
    assert store.quarantine.entries() == []
    assert plugins(fleet)["akismet"] == "5.0.0"


def test_a_single_bad_update_is_quarantined_without_isolation(
    run_job: Callable[..., Run], store: HistoryStore, fleet: Fleet
) -> None:
    task = only_task(store, run_job(include=[BAD]))
    assert task.status is TaskStatus.ROLLED_BACK
    assert [op.action for op in task.operations] == ["backup", "update_plugins", "restore_backup"]
    assert (task.result or {})["quarantined"] == [{"name": BAD, "version": "3.3.0"}]
    assert [e.name for e in store.quarantine.entries()] == [BAD]


def test_a_cancel_stops_the_isolation_between_steps(
    run_job: Callable[..., Run], store: HistoryStore, fleet: Fleet
) -> None:
    """A run winding down starts no new step: the step in flight ends (restored or kept), the
    rest stays as it was, untried, and nothing is convicted on the way."""
    live = fleet.sites[0].environments[0]
    done: list[Run] = []
    night = threading.Thread(target=lambda: done.append(run_job()))
    night.start()
    deadline = time.monotonic() + 30
    while live.counters.get("backups:restore:done", 0) < 1:  # the bulk step was restored
        assert time.monotonic() < deadline and night.is_alive()
        time.sleep(0.01)
    asked = store.runs.request_cancel(1, datetime.now(UTC), by="ops@host", reason="enough")
    assert asked is not None
    night.join(timeout=60)
    (run,) = done
    assert run.status is RunStatus.CANCELLED
    task = only_task(store, run)
    assert task.status is TaskStatus.ROLLED_BACK
    isolation = (task.result or {})["isolation"]
    assert isolation["stopped"].startswith("the run winds down: "), isolation
    assert isolation["untried"] and BAD in isolation["untried"]
    assert store.quarantine.entries() == [] and live.broken is None
