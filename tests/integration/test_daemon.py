"""The daemon fires jobs on short real schedules, claims slots, and reloads jobs.yaml."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler import config as config_module
from scheduler.clock import SystemClock
from scheduler.daemon import Daemon
from scheduler.domain import Config, Polling, RateLimits, RunStatus, RunTrigger, Secret
from scheduler.history import HistoryStore, RunFilter
from scheduler.kinsta import KinstaClient, RateGovernor
from scheduler.runner import Runner
from scheduler.sandbox import DEFAULT_API_KEY, SandboxServer

FAST = Polling(first_poll_s=0.03, max_interval_s=0.1, not_found_grace_s=5, deadline_s=10)
JOBS = """version: 1
jobs:
  - id: every-second
    schedule: {every: 1s}
    targets: {sites: ["%s"]}
    actions: [clear_cache]
"""


@pytest.fixture
def make_daemon(
    sandbox: SandboxServer, store: HistoryStore, tmp_path: Path
) -> Iterator[Callable[[str], Daemon]]:
    clock = SystemClock()
    client = KinstaClient(
        sandbox.url, Secret(DEFAULT_API_KEY), RateGovernor(RateLimits(), clock), clock
    )
    path = tmp_path / "jobs.yaml"

    def make(text: str) -> Daemon:
        path.write_text(text)

        def load() -> Config:
            return config_module.load(path, {})

        runner = Runner(
            client, store, clock, FAST, sandbox.sandbox.fleet.company_id, started_by="test"
        )
        daemon = Daemon(load(), lambda job: runner, clock, load, path, cancel=runner.cancel)
        made.append(daemon)
        return daemon

    made: list[Daemon] = []
    yield make
    for daemon in made:
        daemon.shutdown(timeout_s=5)
    client.close()


def run_for(daemon: Daemon, seconds: float) -> None:
    thread = threading.Thread(target=daemon.run_forever)
    thread.start()
    time.sleep(seconds)
    daemon.stop_event.set()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_interval_job_fires_each_slot_once(
    make_daemon: Callable[[str], Daemon], store: HistoryStore, sandbox: SandboxServer
) -> None:
    site = sandbox.sandbox.fleet.sites[0].name
    run_for(make_daemon(JOBS % site), 3.6)
    runs = store.list_runs(RunFilter(job_id="every-second"))
    assert len(runs) >= 2
    assert {r.trigger for r in runs} == {RunTrigger.SCHEDULE}
    assert {r.status for r in runs} == {RunStatus.SUCCEEDED}
    slots = [r.scheduled_for for r in runs]
    assert len(set(slots)) == len(slots) and all(s.microsecond == 0 for s in slots)


def test_reload_adds_changes_and_removes_jobs(
    make_daemon: Callable[[str], Daemon], tmp_path: Path
) -> None:
    daemon = make_daemon(JOBS % "*")
    daemon.start(paused=True)
    (tmp_path / "jobs.yaml").write_text(
        JOBS.replace("every: 1s", "every: 1h") % "*"
        + "  - id: new-job\n    schedule: {cron: '0 3 * * *'}\n    actions: [clear_cache]\n"
    )
    assert daemon.reload()
    assert daemon.scheduled_jobs() == ["every-second", "new-job"]
    (tmp_path / "jobs.yaml").write_text(
        "version: 1\njobs:\n  - id: new-job\n    schedule: {cron: '0 3 * * *'}\n    actions: [clear_cache]\n"
    )
    assert daemon.reload()
    assert daemon.scheduled_jobs() == ["new-job"]
    assert not daemon.reload()  # unchanged content: nothing to do


def test_a_bad_reload_keeps_the_last_good_schedule(
    make_daemon: Callable[[str], Daemon], tmp_path: Path
) -> None:
    daemon = make_daemon(JOBS % "*")
    daemon.start(paused=True)
    revision = daemon.config.revision
    (tmp_path / "jobs.yaml").write_text("version: 1\njobs:\n  - id: x\n    actions: [nope]\n")
    assert not daemon.reload()
    assert daemon.config.revision == revision
    assert daemon.scheduled_jobs() == ["every-second"]
    (tmp_path / "jobs.yaml").unlink()
    assert not daemon.reload()
    assert daemon.scheduled_jobs() == ["every-second"]


def test_an_alias_bomb_copied_over_jobs_yaml_keeps_the_last_good_schedule(
    make_daemon: Callable[[str], Daemon], tmp_path: Path
) -> None:
    daemon = make_daemon(JOBS % "*")
    daemon.start(paused=True)
    revision = daemon.config.revision
    levels = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)]
    (tmp_path / "jobs.yaml").write_text("version: 1\n" + "\n".join(levels) + "\njobs: []\n")
    started = time.monotonic()
    assert not daemon.reload()
    assert time.monotonic() - started < 5
    assert daemon.config.revision == revision
    assert daemon.scheduled_jobs() == ["every-second"]


def test_fire_claims_the_unjittered_slot(
    make_daemon: Callable[[str], Daemon], store: HistoryStore
) -> None:
    daemon = make_daemon(JOBS % "no-such-site")
    daemon._fire("every-second")
    daemon._fire("every-second")  # the same second: the same slot, claimed once
    runs = store.list_runs(RunFilter())
    assert len(runs) in (1, 2)  # two only if the second boundary fell between the calls
    assert all(r.scheduled_for <= datetime.now(UTC) for r in runs)


def test_a_job_of_a_company_added_after_start_is_logged_not_run(
    tmp_path: Path, store: HistoryStore
) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(JOBS % "*")
    config = config_module.load(path, {})

    def no_runner(job: object) -> Runner:
        raise KeyError("client-b")

    daemon = Daemon(
        config, no_runner, SystemClock(), lambda: config, path, cancel=threading.Event()
    )
    daemon._fire("every-second")
    assert store.list_runs(RunFilter()) == []


def test_retention_prunes_old_history(tmp_path: Path, store: HistoryStore) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text("version: 1\nretention: {older_than: 1d, keep_last: 1}\njobs: []\n")
    config = config_module.load(path, {})
    old = datetime(2020, 1, 1, tzinfo=UTC)
    for day in range(3):
        slot = old + timedelta(days=day)
        run = store.claim_run("j", RunTrigger.SCHEDULE, slot, slot, started_by="t")
        assert run is not None
        store.finish_run(run.run_id, RunStatus.SUCCEEDED, slot)

    def no_runner(job: object) -> Runner:
        raise AssertionError("no job should run")

    daemon = Daemon(
        config,
        no_runner,
        SystemClock(),
        lambda: config,
        path,
        cancel=threading.Event(),
        store=store,
    )
    daemon.start(paused=True)
    assert "__housekeeping__" in daemon.scheduled_jobs(internal=True)
    daemon.retain()
    assert [r.scheduled_for.day for r in store.list_runs(RunFilter())] == [3]
    daemon.shutdown(timeout_s=1)
