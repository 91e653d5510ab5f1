"""The daemon holds the slots of a paused, disabled or blacked-out job: each is recorded
`skipped` with the reason and never claimed; a resumed (or expired) pause lets the next slot
run. Firings are made by hand at chosen fire times, so nothing waits for a schedule."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler import config as config_module
from scheduler.clock import SystemClock
from scheduler.daemon import Collaborators, Daemon
from scheduler.domain import Config, Polling, RateLimits, RunStatus, RunTrigger, Secret
from scheduler.history import HistoryStore, RunFilter
from scheduler.kinsta import KinstaClient, RateGovernor
from scheduler.metrics import Metrics
from scheduler.pauses import JobPause
from scheduler.runner import Runner
from scheduler.sandbox import DEFAULT_API_KEY, SandboxServer

FAST = Polling(first_poll_s=0.03, max_interval_s=0.1, not_found_grace_s=5, deadline_s=10)
JOBS = """version: 1
{top}jobs:
  - id: tick
    schedule: {{every: 1s}}
    catch_up: false
    targets: {{sites: ["{site}"]}}
    actions: [clear_cache]
{extra}"""
ALWAYS = "[{from: 2000-01-01, to: 2999-12-31, name: freeze}]"


@pytest.fixture
def make_daemon(
    sandbox: SandboxServer, store: HistoryStore, tmp_path: Path
) -> Iterator[Callable[..., Daemon]]:
    clock = SystemClock()
    client = KinstaClient(
        sandbox.url, Secret(DEFAULT_API_KEY), RateGovernor(RateLimits(), clock), clock
    )
    site = sandbox.sandbox.fleet.sites[0].name
    path = tmp_path / "jobs.yaml"

    def make(top: str = "", extra: str = "") -> Daemon:
        path.write_text(JOBS.format(top=top, site=site, extra=extra))

        def load() -> Config:
            return config_module.load(path, {})

        company = sandbox.sandbox.fleet.company_id
        runner = Runner(client, store, clock, FAST, company, started_by="test")
        daemon = Daemon(
            load(),
            Collaborators(store, lambda job: runner, clock, load, path, cancel=runner.cancel),
        )
        return daemon

    yield make
    client.close()


def fire(daemon: Daemon, seconds_ago: int, job_id: str = "tick") -> datetime:
    """Fire the job's slot of `seconds_ago` seconds back (well within misfire_grace)."""
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=seconds_ago)
    daemon._fire(job_id, fired=[slot])
    return slot


def outcome(store: HistoryStore, slot: datetime, job_id: str = "tick") -> tuple[RunStatus, str]:
    (run,) = [
        r for r in store.queries.list_runs(RunFilter(job_id=job_id)) if r.scheduled_for == slot
    ]
    return run.status, run.error or ""


def test_a_paused_job_is_skipped_with_the_reason_and_runs_again_once_resumed(
    make_daemon: Callable[..., Daemon], store: HistoryStore
) -> None:
    daemon = make_daemon()
    now = datetime.now(UTC)
    store.pauses.pause(JobPause("tick", now, "ops@bastion", now + timedelta(hours=1), "freeze"))
    held = fire(daemon, 30)
    status, reason = outcome(store, held)
    assert status is RunStatus.SKIPPED
    assert reason.startswith("paused by ops@bastion at ") and reason.endswith(": freeze")
    assert store.tasks.run_tasks(store.queries.list_runs(RunFilter())[0].run_id) == []
    store.pauses.resume("tick", datetime.now(UTC))
    assert outcome(store, fire(daemon, 20)) == (RunStatus.SUCCEEDED, "")


def test_an_expired_pause_holds_nothing(
    make_daemon: Callable[..., Daemon], store: HistoryStore
) -> None:
    daemon = make_daemon()
    then = datetime.now(UTC) - timedelta(hours=2)
    store.pauses.pause(JobPause("tick", then, "ops@bastion", then + timedelta(hours=1)))
    assert outcome(store, fire(daemon, 30)) == (RunStatus.SUCCEEDED, "")


def test_enabled_false_skips_every_slot_without_asking_the_database(
    make_daemon: Callable[..., Daemon], store: HistoryStore
) -> None:
    daemon = make_daemon(extra="    enabled: false\n")
    for seconds in (30, 29):
        assert outcome(store, fire(daemon, seconds)) == (
            RunStatus.SKIPPED,
            "disabled in jobs.yaml (enabled: false)",
        )
    assert daemon.holds.paused_jobs() == {"tick": ("jobs.yaml", None)}


def test_a_slot_inside_a_blackout_is_skipped_with_its_name(
    make_daemon: Callable[..., Daemon], store: HistoryStore
) -> None:
    top = f"blackouts: {ALWAYS}\n"
    assert outcome(store, fire(make_daemon(top=top), 30)) == (RunStatus.SKIPPED, "blackout: freeze")
    own = f"    blackouts: {ALWAYS.replace('freeze', 'own freeze')}\n"
    assert outcome(store, fire(make_daemon(extra=own), 20)) == (
        RunStatus.SKIPPED,
        "blackout: own freeze",
    )
    ended = "blackouts: [{from: 2000-01-01, to: 2000-01-02}]\n"
    assert outcome(store, fire(make_daemon(top=ended), 10)) == (RunStatus.SUCCEEDED, "")


def test_metrics_show_the_paused_jobs_and_until_when(
    make_daemon: Callable[..., Daemon], store: HistoryStore
) -> None:
    daemon = make_daemon()
    until = datetime(2999, 1, 1, tzinfo=UTC)
    store.pauses.pause(JobPause("tick", datetime.now(UTC), "ops@bastion", until))
    store.pauses.pause(JobPause("gone-from-jobs-yaml", datetime.now(UTC), "ops@bastion"))
    metrics = Metrics()
    metrics.watch_pauses(daemon.holds.paused_jobs)
    assert "kinsta_scheduler_job_paused{" not in metrics.exposition().decode()
    daemon.holds.refresh()  # the daemon's duty
    text = metrics.exposition().decode()
    assert 'kinsta_scheduler_job_paused{job="tick",source="pause"} 1.0' in text
    (line,) = [x for x in text.splitlines() if x.startswith("kinsta_scheduler_job_paused_until")]
    assert line.startswith('kinsta_scheduler_job_paused_until_timestamp_seconds{job="tick"} ')
    assert float(line.split()[-1]) == until.timestamp()
    assert "gone-from-jobs-yaml" not in text
    store.pauses.resume("tick", datetime.now(UTC))
    daemon.holds.refresh()
    assert 'job="tick"' not in metrics.exposition().decode()


def test_a_run_asked_for_on_demand_obeys_pauses_and_blackouts(
    make_daemon: Callable[..., Daemon], store: HistoryStore
) -> None:
    """A Slack command's run goes under the same holds as a slot: refused, nothing recorded."""
    from scheduler.errors import RunRefused
    from scheduler.runner import OnDemand

    daemon = make_daemon(top=f"blackouts: {ALWAYS}\n")
    job = daemon.config.job("tick")
    assert job is not None
    with pytest.raises(RunRefused, match="tick is held now: blackout: freeze"):
        daemon.run_now(job, RunTrigger.SLACK, OnDemand("slack:U0ALICE (alice)"))
    daemon = make_daemon()
    now = datetime.now(UTC)
    store.pauses.pause(JobPause("tick", now, "ops@bastion", now + timedelta(hours=1), "freeze"))
    with pytest.raises(RunRefused, match="tick is held now: paused by ops@bastion"):
        daemon.run_now(job, RunTrigger.SLACK, OnDemand("slack:U0ALICE (alice)"))
    assert store.queries.list_runs(RunFilter()) == []
