"""The daemon fires jobs on short real schedules, claims slots, and reloads jobs.yaml."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler import config as config_module
from scheduler import recovery
from scheduler.clock import SystemClock
from scheduler.daemon import Collaborators, Daemon
from scheduler.domain import Config, Polling, RateLimits, Run, RunStatus, RunTrigger, Secret
from scheduler.history import HistoryStore, RunFilter, make_engine, sql_store
from scheduler.history.migrate import upgrade
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
) -> Iterator[Callable[..., Daemon]]:
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
            client,
            store,
            clock,
            FAST,
            sandbox.sandbox.fleet.company_id,
            started_by="test",
            heartbeat_s=load().daemon.heartbeat_s,
        )
        daemon = Daemon(
            load(),
            Collaborators(store, lambda job: runner, clock, load, path, cancel=runner.cancel),
        )
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
    make_daemon: Callable[..., Daemon], store: HistoryStore, sandbox: SandboxServer
) -> None:
    site = sandbox.sandbox.fleet.sites[0].name
    run_for(make_daemon(JOBS % site), 3.6)
    runs = store.queries.list_runs(RunFilter(job_id="every-second"))
    assert len(runs) >= 2
    assert {r.trigger for r in runs} == {RunTrigger.SCHEDULE}
    # On a loaded machine a run may outlast its second: the next slot is then recorded
    # skipped (the overlap rule), never run twice or at once.
    assert RunStatus.SUCCEEDED in {r.status for r in runs}
    for run in runs:
        assert run.status is RunStatus.SUCCEEDED or (
            run.status is RunStatus.SKIPPED and "still running" in (run.error or "")
        ), run
    slots = [r.scheduled_for for r in runs]
    assert len(set(slots)) == len(slots) and all(s.microsecond == 0 for s in slots)


def test_reload_adds_changes_and_removes_jobs(
    make_daemon: Callable[..., Daemon], tmp_path: Path
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
    make_daemon: Callable[..., Daemon], tmp_path: Path
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
    make_daemon: Callable[..., Daemon], store: HistoryStore
) -> None:
    daemon = make_daemon(JOBS % "no-such-site")
    daemon._fire("every-second")
    daemon._fire("every-second")  # the same second: the same slot, claimed once
    runs = store.queries.list_runs(RunFilter())
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

    # The daemon records the slot `missed` in its own history (test_slots.py says so); the
    # shared store sees no run.
    engine = make_engine(f"sqlite:///{tmp_path / 'own.db'}")
    upgrade(engine)
    own = sql_store(engine)
    daemon = Daemon(
        config,
        Collaborators(
            own, no_runner, SystemClock(), lambda: config, path, cancel=threading.Event()
        ),
    )
    daemon._fire("every-second")
    assert store.queries.list_runs(RunFilter()) == []
    assert [r.status for r in own.queries.list_runs(RunFilter())] == [RunStatus.MISSED]
    own.close()


def test_retention_prunes_old_history(tmp_path: Path, store: HistoryStore) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text("version: 1\nretention: {older_than: 1d, keep_last: 1}\njobs: []\n")
    config = config_module.load(path, {})
    old = datetime(2020, 1, 1, tzinfo=UTC)
    for day in range(3):
        slot = old + timedelta(days=day)
        run = store.runs.claim_run("j", RunTrigger.SCHEDULE, slot, slot, started_by="t")
        assert run is not None
        store.runs.finish_run(run.run_id, RunStatus.SUCCEEDED, slot)

    def no_runner(job: object) -> Runner:
        raise AssertionError("no job should run")

    daemon = Daemon(
        config,
        Collaborators(
            store, no_runner, SystemClock(), lambda: config, path, cancel=threading.Event()
        ),
    )
    daemon.start(paused=True)
    assert "__housekeeping__" in daemon.scheduled_jobs(internal=True)
    daemon.retain()
    assert [r.scheduled_for.day for r in store.queries.list_runs(RunFilter())] == [3]
    daemon.shutdown(timeout_s=1)


def test_an_edit_inside_a_jitter_delay_keeps_the_slot(
    make_daemon: Callable[..., Daemon], store: HistoryStore, tmp_path: Path
) -> None:
    jobs = (
        "version: 1\njobs:\n  - id: jittery\n    schedule: {every: 2s, jitter: 1.9s}\n"
        "    catch_up: false\n    targets: {sites: [nothing-matches]}\n"
        "    actions: [clear_cache]\n    concurrency: %d\n"
    )
    daemon = make_daemon(jobs % 1)
    thread = threading.Thread(target=daemon.run_forever)
    thread.start()
    try:
        while "jittery" not in daemon.next_fire_times():
            time.sleep(0.01)
        for _ in range(20):  # wait for a firing whose jitter leaves time to edit before it
            fire = datetime.fromisoformat(daemon.next_fire_times()["jittery"])
            slot = fire.replace(microsecond=0) - timedelta(seconds=fire.second % 2)
            if fire - slot > timedelta(seconds=1) and datetime.now(UTC) < slot:
                break
            time.sleep(max(0.0, (fire - datetime.now(UTC)).total_seconds()) + 0.05)
        else:
            raise AssertionError("no firing with a long enough jitter delay")
        time.sleep((slot - datetime.now(UTC)).total_seconds() + 0.3)
        assert datetime.now(UTC) < fire  # inside the slot's jitter delay
        (tmp_path / "jobs.yaml").write_text(jobs % 2)
        daemon._reload_event.set()
        time.sleep((fire - datetime.now(UTC)).total_seconds() + 1.0)
    finally:
        daemon.stop_event.set()
        thread.join(timeout=30)
    assert daemon.config.jobs[0].concurrency == 2  # the edit took effect
    assert slot in {r.scheduled_for for r in store.queries.list_runs(RunFilter(job_id="jittery"))}


def test_recovery_runs_while_every_run_thread_is_busy(
    sandbox: SandboxServer,
    store: HistoryStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("scheduler.daemon.wiring.MAX_PARALLEL_RUNS", 1)
    sandbox.sandbox.fleet.time_scale = 2.0  # restart_php: at least 20 s
    site = sandbox.sandbox.fleet.sites[0].name
    path = tmp_path / "jobs.yaml"
    path.write_text(
        "version: 1\ndaemon: {heartbeat: 0.25s, shutdown_timeout: 0.5s}\njobs:\n"
        f"  - id: slow\n    schedule: {{every: 1s}}\n    catch_up: false\n"
        f"    targets: {{sites: [{site}], environment: live}}\n    actions: [restart_php]\n"
    )
    config = config_module.load(path, {})
    clock = SystemClock()
    client = KinstaClient(
        sandbox.url, Secret(DEFAULT_API_KEY), RateGovernor(RateLimits(), clock), clock
    )
    runner = Runner(
        client, store, clock, FAST, sandbox.sandbox.fleet.company_id, started_by="t",
        heartbeat_s=0.25,
    )  # fmt: skip
    daemon = Daemon(
        config,
        Collaborators(store, lambda job: runner, clock, lambda: config, path, cancel=runner.cancel),
    )
    thread = threading.Thread(target=daemon.run_forever)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not store.queries.list_runs(
            RunFilter(status="running")
        ):  # the one run thread is busy
            assert time.monotonic() < deadline
            time.sleep(0.05)
        gone = datetime(2020, 1, 1, tzinfo=UTC)
        orphan = store.runs.claim_run("slow", RunTrigger.SCHEDULE, gone, gone, started_by="gone")
        assert orphan is not None
        deadline = time.monotonic() + 6
        while (found := store.queries.get_run(orphan.run_id)) and found.status is RunStatus.RUNNING:
            assert time.monotonic() < deadline, "recovery did not run while runs took the pool"
            time.sleep(0.1)
        assert found is not None and "recovered by" in (found.error or "")
    finally:
        daemon.stop_event.set()
        thread.join(timeout=30)
        client.close()


def test_a_claimed_run_is_held_before_it_executes(
    sandbox: SandboxServer, store: HistoryStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recovery in this process (same host and pid) must never take a run between its claim
    and its execution for a dead predecessor's (a catch-up run was adopted mid-way)."""
    path = tmp_path / "jobs.yaml"
    path.write_text(JOBS % "no-such-site")
    (job,) = config_module.load(path, {}).jobs
    clock = SystemClock()
    client = KinstaClient(
        sandbox.url, Secret(DEFAULT_API_KEY), RateGovernor(RateLimits(), clock), clock
    )
    me = "this-host:4242"
    runner = Runner(client, store, clock, FAST, sandbox.sandbox.fleet.company_id, started_by=me)
    seen: list[bool] = []

    def execute(job: object, run: Run, targets: object = None) -> Run:
        seen.append(recovery.owner_gone(run, me))
        return run

    monkeypatch.setattr(runner, "execute", execute)
    runner.run(job, RunTrigger.SCHEDULE, datetime(2026, 11, 1, tzinfo=UTC))
    client.close()
    assert seen == [False]
