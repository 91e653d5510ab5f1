"""The daemon as operators run it: a subprocess, real signals, the sandbox, SQLite and the real
PostgreSQL. Short intervals so each test takes seconds."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import Cli, Daemon, SandboxProcess, run_rows, runs, use, wait_until

HEAD = """version: 1
daemon: {heartbeat: 0.3s, shutdown_timeout: %s}
kinsta:
  rate_limits: {per_minute: 600}
  polling: {first_poll: 0.05s, max_interval: 0.2s}
"""

# A job whose runs are long enough to be killed in the middle (%s: its interval).
BACKUPS = """jobs:
  - id: backups
    schedule: {every: %s}
    catch_up: false
    targets: {environment: all}
    concurrency: 2
    actions: [backup, clear_cache]
"""


def test_kill_9_mid_run_then_restart_resolves_every_operation(
    cli: Cli, quick_sandbox: SandboxProcess, daemons: list[Daemon]
) -> None:
    jobs = HEAD % "30s" + BACKUPS
    use(cli, quick_sandbox, jobs % "4s")
    first = Daemon(cli)
    daemons.append(first)
    first.wait_for(r'"action": "backup", "status": "succeeded"')  # mid-run: some done, some not
    first.process.kill()  # kill -9: no chance to record anything
    first.process.wait(timeout=10)
    (running,) = [r for r in runs(cli) if r["status"] == "running"]

    (cli.cwd / "jobs.yaml").write_text(jobs % "1h")  # no new slot while we look
    second = Daemon(cli, name="second")
    daemons.append(second)
    second.wait_for(r"run\.recovered", timeout=30)
    assert second.stop() == 0

    run = next(r for r in runs(cli) if r["run_id"] == running["run_id"])
    assert run["status"] in ("interrupted", "failed", "succeeded")
    assert "recovered by" in run["error"]
    shown = cli("show", str(run["run_id"]), "--format", "json").json()
    for task in shown["tasks"]:
        assert task["status"] not in ("running", "pending"), task
        for op in task["operations"]:
            assert op["state"] in ("succeeded", "failed", "timed_out"), op
    # nothing was sent twice: each environment got at most one backup from this run
    state = quick_sandbox.state()
    backups_sent = {
        f"{t['site']}/{t['environment']}"
        for t in shown["tasks"]
        if t["action"] == "backup" and t["operations"]
    }
    for key, env in state.items():
        accepted = env["counters"].get("backups:add-manual:accepted", 0)
        assert accepted == (1 if key in backups_sent else 0), key
    assert quick_sandbox.stats()["overlaps"] == 0


def test_sigterm_lets_running_tasks_finish_and_exits_0(
    cli: Cli, quick_sandbox: SandboxProcess, daemons: list[Daemon]
) -> None:
    use(
        cli,
        quick_sandbox,
        HEAD % "30s"
        + """jobs:
  - id: slow
    schedule: {every: 3s}
    targets: {environment: all}
    concurrency: 2
    actions: [backup]
""",
    )
    daemon = Daemon(cli)
    daemons.append(daemon)
    daemon.wait_for(r'"event": "task.finished"')
    assert daemon.stop() == 0
    assert "daemon.stopped" in daemon.text() and '"unfinished_runs": 0' in daemon.text()
    for run in runs(cli):
        assert run["status"] != "running"
        shown = cli("show", str(run["run_id"]), "--format", "json").json()
        for task in shown["tasks"]:
            assert task["status"] in ("succeeded", "interrupted"), task
            if task["status"] == "interrupted":
                assert task["message"] == "not started: the process was stopping"
                assert task["operations"] == []


def test_a_second_signal_exits_at_once(
    cli: Cli, sandbox_process: SandboxProcess, daemons: list[Daemon]
) -> None:
    # Backups of a few seconds (20x): the second signal must come while the first one's
    # shutdown still waits for one, never after the process began to exit on its own.
    use(
        cli,
        sandbox_process,
        HEAD % "60s"
        + """jobs:
  - id: slow
    schedule: {every: 2s}
    targets: {environment: all}
    concurrency: 1
    actions: [backup]
""",
    )
    daemon = Daemon(cli)
    daemons.append(daemon)
    daemon.wait_for(r'"event": "task.finished"')
    daemon.process.send_signal(signal.SIGTERM)
    daemon.wait_for(r"daemon\.stopping")
    started = time.monotonic()
    assert daemon.stop(signal.SIGINT, timeout=10) == 130
    assert time.monotonic() - started < 5
    assert "daemon.forced_exit" in daemon.text()


def test_catch_up_after_the_daemon_was_stopped(
    cli: Cli, quick_sandbox: SandboxProcess, daemons: list[Daemon]
) -> None:
    use(
        cli,
        quick_sandbox,
        HEAD % "5s"
        + """jobs:
  - id: tick
    schedule: {every: 1s}
    targets: {sites: ["nothing-matches"]}
    actions: [clear_cache]
""",
    )
    first = Daemon(cli)
    daemons.append(first)
    first.wait_for(r'"event": "run.finished"')
    assert first.stop() == 0
    time.sleep(3)  # a few slots go by with no daemon
    second = Daemon(cli, name="second")
    daemons.append(second)
    second.wait_for(r"catch_up\.run")
    wait_until(
        lambda: any(r["trigger"] == "catch_up" and r["status"] != "running" for r in run_rows(cli))
    )
    assert second.stop() == 0
    history = runs(cli)
    caught = [r for r in history if r["trigger"] == "catch_up"]
    missed = [r for r in history if r["status"] == "missed"]
    assert len(caught) == 1 and len(missed) >= 2
    assert all("missed while no daemon ran" in r["error"] for r in missed)
    slots = [r["scheduled_for"] for r in history]
    assert len(slots) == len(set(slots))  # every slot has one row


def test_two_daemons_on_postgresql_run_each_slot_once(
    cli: Cli, quick_sandbox: SandboxProcess, daemons: list[Daemon], pg_url: str
) -> None:
    from tests.conftest import _reset_pg

    _reset_pg(pg_url)
    site = sorted(quick_sandbox.state())[0].split("/")[0]
    use(
        cli,
        quick_sandbox,
        HEAD % "10s"
        + f"""jobs:
  - id: tick
    schedule: {{every: 1s}}
    catch_up: false
    targets: {{sites: ["{site}"]}}
    actions: [clear_cache]
""",
        database=pg_url,
    )
    pair = [Daemon(cli, name=f"d{n}") for n in (1, 2)]
    daemons.extend(pair)
    for daemon in pair:  # a loaded machine may take seconds to start one
        daemon.wait_for("daemon.started", timeout=60)
    wait_until(lambda: sum(r["job_id"] == "tick" for r in run_rows(cli)) >= 6, timeout=60)
    for daemon in pair:
        assert daemon.stop() == 0
    history = [r for r in runs(cli) if r["job_id"] == "tick"]
    slots = [r["scheduled_for"] for r in history]
    assert len(slots) == len(set(slots)) >= 5  # ~one per second, none twice
    ran = [r for r in history if r["status"] == "succeeded"]
    assert len(ran) >= 4
    # Each slot's clear reached Kinsta at most once: every run that succeeded sent it, and a run
    # stopped by the shutdown may or may not have sent it before it stopped.
    accepted = sum(
        env["counters"].get("cache:clear:accepted", 0) for env in quick_sandbox.state().values()
    )
    cut_short = sum(1 for r in history if r["status"] in ("failed", "interrupted"))
    assert len(ran) <= accepted <= len(ran) + cut_short
    claims = [line for d in pair for line in d.text().splitlines() if "run.already_claimed" in line]
    assert claims  # the other daemon tried the same slots and stood back


def test_a_restart_on_the_same_host_adopts_a_killed_run_at_once(
    cli: Cli, quick_sandbox: SandboxProcess, daemons: list[Daemon]
) -> None:
    """With a 30 s heartbeat a run goes stale after two minutes; but its recorded owner is this
    host and that process is gone, so a restart adopts it at once (issue 11 item 14)."""
    jobs = HEAD.replace("heartbeat: 0.3s", "heartbeat: 30s") % "30s" + BACKUPS
    use(cli, quick_sandbox, jobs % "4s")
    first = Daemon(cli)
    daemons.append(first)
    first.wait_for(r'"action": "backup", "status": "succeeded"')
    first.process.kill()
    first.process.wait(timeout=10)
    (running,) = [r for r in runs(cli) if r["status"] == "running"]
    (cli.cwd / "jobs.yaml").write_text(jobs % "1h")
    second = Daemon(cli, name="second")
    daemons.append(second)
    second.wait_for("daemon.started", timeout=60)
    began = time.monotonic()
    second.wait_for(r"run\.recovered", timeout=30)  # stale only after 120 s
    assert time.monotonic() - began < 30
    assert second.stop() == 0
    run = next(r for r in runs(cli) if r["run_id"] == running["run_id"])
    assert run["status"] != "running" and "recovered by" in run["error"]


def test_sigterm_under_a_rate_pause_exits_promptly_and_leaves_work_to_recovery(
    cli: Cli, quick_sandbox: SandboxProcess, daemons: list[Daemon]
) -> None:
    """A 429 with Retry-After 40 s pauses the key; SIGTERM with shutdown_timeout 2 s must not
    wait it out, must not record the waiting tasks `failed` ("client has been closed"), and the
    next start (which waits out the rest of the shared pause) settles what was left (issue 11
    item 3)."""
    jobs = (
        HEAD % "2s"
        + """jobs:
  - id: fleet
    schedule: {every: %s}
    catch_up: false
    targets: {environment: all}
    concurrency: 4
    actions: [clear_cache]
"""
    )
    use(cli, quick_sandbox, jobs % "3s")
    daemon = Daemon(cli)
    daemons.append(daemon)
    daemon.wait_for(r'"action": "clear_cache", "status": "succeeded"')
    quick_sandbox.post("faults", {"rate_limit_next": 1, "retry_after_s": 40})
    daemon.wait_for(r"rate_limited|governor\.paused|429", timeout=30)
    began = time.monotonic()
    assert daemon.stop(timeout=60) == 0
    assert time.monotonic() - began < 15  # not the 40 s pause
    text = daemon.text()
    assert "client has been closed" not in text and "Traceback" not in text
    for run in runs(cli):
        shown = cli("show", str(run["run_id"]), "--format", "json").json()
        for task in shown["tasks"]:
            assert "client has been closed" not in (task["message"] or ""), task
            assert task["status"] != "failed", task
    quick_sandbox.post("faults", {"rate_limit_next": 0, "retry_after_s": 1})
    (cli.cwd / "jobs.yaml").write_text(jobs % "1h")
    second = Daemon(cli, name="second")
    daemons.append(second)
    second.wait_for("daemon.started", timeout=90)

    def settled() -> bool:
        rows = run_rows(cli)
        return bool(rows) and all(r["status"] != "running" for r in rows)

    wait_until(settled, timeout=60)
    assert all(r["status"] != "running" for r in runs(cli))
    assert second.stop() == 0


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_and_healthz(
    cli: Cli, quick_sandbox: SandboxProcess, daemons: list[Daemon]
) -> None:
    site = sorted(quick_sandbox.state())[0].split("/")[0]
    use(
        cli,
        quick_sandbox,
        HEAD % "5s"
        + f"""jobs:
  - id: tick
    schedule: {{every: 1s}}
    targets: {{sites: ["{site}"]}}
    actions: [clear_cache]
""",
    )
    daemon = Daemon(cli, "--metrics-port", "0")
    daemons.append(daemon)
    port = daemon.wait_for(r"metrics at http://127\.0\.0\.1:(\d+)/metrics").group(1)
    daemon.wait_for(r'"event": "run.finished"')
    time.sleep(0.5)
    status, health = get(f"http://127.0.0.1:{port}/healthz")
    assert status == 200 and health.startswith("ok")
    status, body = get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    assert re.search(r'kinsta_scheduler_runs_total\{job="tick",status="succeeded"\} [1-9]', body)
    assert 'kinsta_scheduler_tasks_total{action="clear_cache",status="succeeded"}' in body
    assert 'kinsta_scheduler_api_requests_total{company="default"}' in body
    assert "kinsta_scheduler_rate_limited_total" in body
    assert 'kinsta_scheduler_last_success_timestamp_seconds{job="tick"}' in body
    assert (
        'kinsta_scheduler_operation_seconds_count{action="clear_cache",state="succeeded"}' in body
    )
    assert "kinsta_scheduler_schedule_lag_seconds_bucket" in body
    assert daemon.stop() == 0


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def do_GET(self) -> None:
        type(self).received.append((self.path, None))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, Any]]]]:
    received: list[tuple[str, Any]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_a_webhook_gets_one_aggregated_failure_message(
    cli: Cli,
    quick_sandbox: SandboxProcess,
    daemons: list[Daemon],
    receiver: tuple[str, list[tuple[str, Any]]],
) -> None:
    url, received = receiver
    use(
        cli,
        quick_sandbox,
        HEAD % "5s"
        + f"""notify:
  slack: {url}/slack-secret-token
  webhooks: [{url}/json, "http://127.0.0.1:1/unreachable"]
  heartbeat_url: {url}/ping
jobs:
  - id: caches
    schedule: {{every: 3s}}
    targets: {{environment: live}}
    actions: [clear_cache]
""",
    )
    quick_sandbox.post("fail-next", {"kind": "cache:clear", "count": 3})
    daemon = Daemon(cli)
    daemons.append(daemon)
    wait_until(lambda: any(path == "/ping" for path, _ in received), timeout=30)
    assert daemon.stop() == 0

    slack = [body for path, body in received if path == "/slack-secret-token"]
    generic = [body for path, body in received if path == "/json"]
    failure = [b for b in generic if b["event"] == "failure"]
    assert len(failure) == 1  # one message for the whole run
    assert len(failure[0]["failures"]) == 3
    assert {f["action"] for f in failure[0]["failures"]} == {"clear_cache"}
    assert "clear_cache failed on 3 environment(s)" in failure[0]["text"]
    assert any("failed on 3 environment(s)" in b["text"] for b in slack)
    assert [b["event"] for b in generic if b["event"] == "recovery"] == ["recovery"]
    assert "slack-secret-token" not in daemon.text()  # webhook URLs are masked like keys
    shown = cli("history", "--format", "json").json()
    assert {r["status"] for r in shown} >= {"failed", "succeeded"}
    deliveries = cli("history", "notifications", "--format", "json").json()
    delivered = {(d["kind"], d["channel"]) for d in deliveries if d["ok"]}
    assert {("failure", "slack"), ("failure", "json"), ("heartbeat", "heartbeat")} <= delivered
    lost = [d for d in deliveries if not d["ok"]]  # the unreachable one: recorded, not fatal
    assert lost and {d["destination"] for d in lost} == {"http://127.0.0.1"}
    assert all("secret" not in (d["destination"] or "") for d in deliveries)
    assert "notification.failed" in daemon.text()


def test_health_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    from scheduler import config as config_module
    from scheduler.clock import SystemClock
    from scheduler.daemon import Collaborators
    from scheduler.daemon import Daemon as RealDaemon
    from scheduler.history import make_engine, sql_store

    path = tmp_path / "jobs.yaml"
    path.write_text("version: 1\njobs: []\n")
    config = config_module.load(path, {})
    store = sql_store(make_engine("postgresql://nobody@127.0.0.1:1/none"))
    daemon = RealDaemon(
        config,
        Collaborators(
            store,
            lambda job: None,  # type: ignore[arg-type,return-value]
            SystemClock(),
            lambda: config,
            path,
            cancel=threading.Event(),
        ),
    )
    daemon.timetable.start(paused=True)
    ok, why = daemon.health()
    assert not ok and "the history database is unreachable" in why
    daemon.timetable.shutdown()
    store.engine.dispose()
    assert os.environ is not None


def test_reload_adds_changes_and_removes_jobs_and_keeps_the_last_good_schedule(
    cli: Cli, quick_sandbox: SandboxProcess, daemons: list[Daemon]
) -> None:
    def jobs(*entries: str) -> str:
        return HEAD % "5s" + "jobs:\n" + "".join(entries)

    def job(job_id: str, every: str) -> str:
        return (
            f"  - id: {job_id}\n    schedule: {{every: {every}}}\n"
            "    targets: {sites: [nothing-matches]}\n    actions: [clear_cache]\n"
        )

    use(cli, quick_sandbox, jobs(job("first", "1s"), job("slow", "1h")))
    daemon = Daemon(cli)
    daemons.append(daemon)
    daemon.wait_for(r'"job_id": "first".*"event": "run.finished"')
    (cli.cwd / "jobs.yaml").write_text(jobs(job("second", "1s"), job("slow", "2h")))
    reloaded = daemon.wait_for(r'"added": \["second"\].*"event": "config.reloaded"')
    assert '"changed": ["slow"]' in reloaded.group(0) and '"removed": ["first"]' in reloaded.group(
        0
    )
    daemon.wait_for(r'"job_id": "second".*"event": "run.finished"')
    marker = len(daemon.text())
    (cli.cwd / "jobs.yaml").write_text(jobs(job("second", "1s")) + "  - id: [broken\n")
    daemon.wait_for(r"config\.rejected")
    (cli.cwd / "jobs.yaml").unlink()
    daemon.wait_for(r"config\.missing")
    time.sleep(2.5)
    later = daemon.text()[marker:]
    assert '"job_id": "second"' in later and "run.finished" in later  # still on its schedule
    assert daemon.stop() == 0
    first_runs = [r for r in runs(cli) if r["job_id"] == "first"]
    last_first = max(r["scheduled_for"] for r in first_runs)
    second_runs = [r for r in runs(cli) if r["job_id"] == "second"]
    assert min(r["scheduled_for"] for r in second_runs) >= last_first
    # and the history says what happened to the file, and why an edit did not take effect
    (cli.cwd / "jobs.yaml").write_text(jobs(job("second", "1s")))
    events = cli("history", "daemon", "--format", "json").json()
    kinds = [e["kind"] for e in reversed(events)]
    assert kinds == ["started", "config_reloaded", "config_rejected", "config_missing", "stopped"]
    by_kind = {e["kind"]: e["detail"] for e in events}
    assert "added: second" in by_kind["config_reloaded"]
    assert "jobs.yaml" in by_kind["config_rejected"] and "YAML" in by_kind["config_rejected"]
