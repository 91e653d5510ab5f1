"""Nothing lost, nothing repeated: injected API faults, kill -9 in the middle of a fleet run, and
a database outage under a running daemon. The fast form of benchmarks/faults.py."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections import Counter

import pytest
from sqlalchemy.engine import make_url

from tests.acceptance.conftest import (
    Cli,
    Daemon,
    SandboxProcess,
    run_rows,
    runs,
    use,
    wait_until,
)
from tests.conftest import _reset_pg
from tests.relay import Relay
from tests.reliability.conftest import LONG

HEAD = """version: 1
daemon: {heartbeat: 0.3s, shutdown_timeout: 10s, db_retry: 60s}
kinsta:
  timeout: 1s
  rate_limits: {per_minute: 600}
  polling: {first_poll: 0.05s, max_interval: 0.2s}
"""
FLEET = """jobs:
  - id: fleet
    schedule: {every: %s}
    catch_up: false
    targets: {environment: all}
    concurrency: 3
    actions: [backup, {update_plugins: {exclude: [woocommerce]}}, clear_cache]
"""
# Kinsta keeps at most five manual backups per environment, so a job run more often than that
# prunes them (the long form runs ten).
PRUNED_FLEET = FLEET.replace("clear_cache]", "clear_cache, {prune_backups: {keep: 3}}]")
# the sandbox's operation kind -> the action recorded for it
MUTATIONS = {"backups:add-manual": "backup", "wp-plugins:bulk-update": "update_plugins"}


def settled(cli: Cli, run_id: int) -> dict[str, object]:
    shown: dict[str, object] = cli("show", str(run_id), "--format", "json").json()
    assert shown["status"] != "running"
    for task in shown["tasks"]:  # type: ignore[attr-defined]
        assert task["status"] not in ("pending", "running"), task
        for op in task["operations"]:
            assert op["state"] in ("succeeded", "failed", "timed_out"), op
    return shown


def accepted(sandbox: SandboxProcess) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for key, env in sandbox.state().items():
        for kind in MUTATIONS:
            counts[(key, kind)] = env["counters"].get(f"{kind}:accepted", 0)
    return counts


def test_api_faults_complete_idempotent_work_and_repeat_no_mutation(
    cli: Cli, quick_sandbox: SandboxProcess
) -> None:
    use(cli, quick_sandbox, HEAD + PRUNED_FLEET % "1h")
    quick_sandbox.post("faults", {"error": 0.02, "drop": 0.02, "hang": 0.01, "hang_s": 1.5})
    for _ in range(10 if LONG else 2):
        cli("trigger", "fleet", timeout=600)
    faults = quick_sandbox.stats()["faults"]
    assert sum(faults.values()) >= 2, faults  # the faults really happened

    for run in runs(cli):
        shown = settled(cli, run["run_id"])
        for task in shown["tasks"]:  # type: ignore[attr-defined]
            if task["action"] == "clear_cache":  # idempotent: retried until done
                assert task["status"] in ("succeeded", "skipped"), task
            if task["status"] == "failed":
                assert task["message"], task  # with its cause
                assert any(
                    cause in task["message"]
                    for cause in ("HTTP 5", "uncertain", "Timeout", "rror", "not reached")
                ), task["message"]
    triggers = len(runs(cli))
    for (key, kind), count in accepted(quick_sandbox).items():
        assert count <= triggers, (key, kind, count)  # at most once per run: never repeated


def test_kill_9_during_a_fleet_run_loses_and_repeats_nothing(
    cli: Cli, quick_sandbox: SandboxProcess, daemons: list[Daemon]
) -> None:
    use(cli, quick_sandbox, HEAD + FLEET % "4s")
    first = Daemon(cli)
    daemons.append(first)
    first.wait_for(r'"action": "update_plugins", "status": "(succeeded|skipped)"')
    first.process.kill()
    first.process.wait(timeout=10)
    (cli.cwd / "jobs.yaml").write_text(HEAD + FLEET % "36500d")
    second = Daemon(cli, name="second")
    daemons.append(second)
    second.wait_for(r"run\.recovered")
    assert second.stop() == 0
    history = runs(cli)
    assert [r["status"] for r in history if r["status"] == "running"] == []
    assert len(history) == 1  # the run was not lost, and nothing ran it again
    shown = settled(cli, history[0]["run_id"])
    recorded = Counter(
        (f"{t['site']}/{t['environment']}", op["action"])
        for t in shown["tasks"]  # type: ignore[attr-defined]
        for op in t["operations"]
    )
    for (key, kind), count in accepted(quick_sandbox).items():
        assert count <= 1, (key, kind, count)  # never sent twice
        assert count == recorded[(key, MUTATIONS[kind])], (key, kind)  # and every one recorded


@pytest.mark.pg
def test_the_daemon_survives_a_database_outage(
    cli: Cli, quick_sandbox: SandboxProcess, daemons: list[Daemon], pg_url: str
) -> None:
    _reset_pg(pg_url)
    url = make_url(pg_url)
    relay = Relay(url.host or "127.0.0.1", url.port or 5432)
    relayed = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    try:
        use(cli, quick_sandbox, HEAD + FLEET % "3s", database=relayed)
        daemon = Daemon(cli, "--metrics-port", "0")
        daemons.append(daemon)
        port = daemon.wait_for(r"metrics at http://127\.0\.0\.1:(\d+)/metrics").group(1)
        daemon.wait_for(r'"action": "backup", "status": "succeeded"')
        relay.cut()
        wait_until(lambda: health(port) == 503, timeout=15)  # reports unhealthy meanwhile
        time.sleep(30 if LONG else 3)
        relay.restore()
        wait_until(lambda: health(port) == 200, timeout=30)
        wait_until(lambda: any(r["status"] == "succeeded" for r in run_rows(cli)), timeout=60)
        assert daemon.process.poll() is None  # it survived
        assert daemon.stop() == 0
    finally:
        relay.close()
    cli.env["KINSTA_SCHEDULER_DATABASE_URL"] = pg_url  # read the history directly
    history = runs(cli)
    assert history and all(r["status"] != "running" for r in history)
    for run in history:
        if run["status"] in ("succeeded", "failed", "interrupted"):
            settled(cli, run["run_id"])
    # The outage was felt (which write met it first depends on timing), and survived.
    felt = (
        "history.retrying",
        "run.heartbeat_failed",
        "history.rows_waiting",
        "ledger_unavailable",
    )
    assert any(sign in daemon.text() for sign in felt)
    for (key, kind), count in accepted(quick_sandbox).items():
        runs_with_tasks = sum(1 for r in history if r["tasks_total"])
        assert count <= runs_with_tasks, (key, kind)


def health(port: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@pytest.mark.pg
def test_a_daemon_started_during_a_database_outage_waits_for_it(
    cli: Cli, quick_sandbox: SandboxProcess, daemons: list[Daemon], pg_url: str
) -> None:
    """A failover at boot is not a bad configuration: the daemon waits up to `db_retry` (it
    used to exit 2 at once), and a SIGTERM meanwhile ends it quietly (exit 0)."""
    _reset_pg(pg_url)
    url = make_url(pg_url)
    relay = Relay(url.host or "127.0.0.1", url.port or 5432)
    relayed = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    try:
        use(cli, quick_sandbox, HEAD + FLEET % "3s", database=relayed)
        relay.cut()
        daemon = Daemon(cli)
        daemons.append(daemon)
        daemon.wait_for("history.waiting_for_database")
        time.sleep(1.5)
        assert daemon.process.poll() is None  # still waiting, not exited
        relay.restore()
        daemon.wait_for("daemon.started", timeout=30)
        assert daemon.stop() == 0
        relay.cut()
        second = Daemon(cli, name="second")
        daemons.append(second)
        second.wait_for("history.waiting_for_database")
        assert second.stop() == 0
        assert "Traceback" not in daemon.text() + second.text()
    finally:
        relay.close()
