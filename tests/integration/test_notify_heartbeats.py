"""Heartbeats as the daemon wires them (bootstrap, a real run on the in-process sandbox, the
daemon's RunFinished hook) against an HTTP receiver on loopback: a run's start ping comes
before its success ping, a job's own heartbeat URL is pinged by that job only, the others ping
notify's, and every ping is recorded in history."""

from __future__ import annotations

from pathlib import Path

from scheduler.bootstrap import open_notifications, open_services
from scheduler.config import parse
from scheduler.daemon.runs import published_runs
from scheduler.domain import RunStatus, RunTrigger
from tests.standins import http_receiver

JOBS = """version: 1
database: sqlite:///{db}
kinsta:
  polling: {{first_poll: 0.05s, max_interval: 0.1s}}
sandbox: {{sites: 1, seed: 1, time_scale: 0.01}}
notify:
  heartbeat_url: {url}/default
jobs:
  - id: own
    heartbeat_url: {url}/own
    targets: {{environment: live}}
    actions: [clear_cache]
  - id: shared
    targets: {{environment: live}}
    actions: [clear_cache]
"""


def test_start_and_success_pings_go_to_each_jobs_own_heartbeat(tmp_path: Path) -> None:
    with http_receiver() as (url, received):
        text = JOBS.format(db=tmp_path / "history.db", url=url)
        config = parse(text, str(tmp_path / "jobs.yaml"), {})
        services = open_services(config, sandbox=True, upgrade_sqlite=True)
        try:
            open_notifications(services)
            after_run = published_runs(services.store, services.bus.publish)  # the daemon's
            for job in config.jobs:
                runner = services.runner_for(job)
                run = runner.run(job, RunTrigger.SCHEDULE, runner.clock.now())
                assert run is not None and run.status is RunStatus.SUCCEEDED
                after_run(job, run)
            services.sandbox.sandbox.fleet.fail_next["cache:clear"] = 1  # type: ignore[union-attr]
            (own, _) = config.jobs
            failed = services.runner_for(own).run(own, RunTrigger.MANUAL, runner.clock.now())
            assert failed is not None and failed.status is RunStatus.FAILED
            after_run(own, failed)
            recorded = services.store.events.notifications()
        finally:
            services.close()
    assert [(method, path) for method, path, _ in received] == [
        ("GET", "/own/start"),
        ("GET", "/own"),
        ("GET", "/default/start"),
        ("GET", "/default"),
        ("GET", "/own/start"),  # the failed run started, and never pinged its success
    ]
    pings = sorted((r.job_id or "", r.kind, r.channel, r.ok) for r in recorded)
    assert pings == [
        ("own", "heartbeat", "heartbeat", True),
        ("own", "start", "heartbeat", True),
        ("own", "start", "heartbeat", True),
        ("shared", "heartbeat", "heartbeat", True),
        ("shared", "start", "heartbeat", True),
    ]
