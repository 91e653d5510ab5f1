"""`cancel` as operators use it: a night of slow backups runs in one process (`trigger`, or the
daemon), and `cancel` from a second process stops it through the history database. No target
starts once the run's heartbeat has read the request back, every operation started is followed
to its final state and recorded, the targets not started are skipped saying why, the run ends
`cancelled` with who asked and why, and nothing Kinsta accepted is missing from history."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import (
    EXE,
    Cli,
    Daemon,
    SandboxProcess,
    serve,
    use,
    wait_until,
)
from tests.acceptance.test_daemon import get, receiver  # noqa: F401 - a fixture

BEAT_S = 0.2
SLACK_S = 1.0  # a target admitted just before the notice records its start a little later
# (the exact count of targets started by the notice is checked in tests/integration/test_cancel.py)
JOBS = f"""version: 1
daemon: {{heartbeat: {BEAT_S}s, shutdown_timeout: 20s}}
kinsta:
  rate_limits: {{per_minute: 600}}
  polling: {{first_poll: 0.05s, max_interval: 0.2s}}
%s
jobs:
  - id: backups
    %s
    targets: {{environment: all}}
    concurrency: 2
    actions: [backup, clear_cache]
"""


@pytest.fixture
def fleet(cli: Cli) -> Iterator[SandboxProcess]:
    """Twelve sites (about twenty environments), a backup taking 0.6 to 3.6 s."""
    yield from serve(cli, 0.01, sites=12)


def started_night(cli: Cli, log: Callable[[], str]) -> int:
    """The running run's id, once a task of it has finished (the process `log` tells so)."""
    wait_until(lambda: '"event": "task.finished"' in log(), timeout=60)
    (running,) = cli("history", "--status", "running", "--format", "json").json()
    run_id: int = running["run_id"]
    return run_id


def work_after_cancel(log: str) -> bool:
    """Whether a task finished after a run ended cancelled (the next slot was not skipped)."""
    lines = [json.loads(x) for x in log.splitlines() if x.startswith("{")]
    ends = [i for i, x in enumerate(lines) if x.get("status") == "cancelled"]
    return bool(ends) and any(x["event"] == "task.finished" for x in lines[ends[0] :])


def noticed_at(log: str) -> datetime:
    (line,) = [json.loads(x) for x in log.splitlines() if '"run.cancel_noticed"' in x]
    return datetime.fromisoformat(line["timestamp"])


def assert_cancelled_with_nothing_lost(
    cli: Cli, fleet: SandboxProcess, run_id: int, noticed: datetime, reason: str
) -> None:
    shown = cli("show", str(run_id), "--format", "json").json()
    assert shown["status"] == "cancelled", shown["error"]
    assert shown["cancel"]["requested_by"].endswith(f"@{socket.gethostname()}")
    assert shown["cancel"]["reason"] == reason
    assert shown["error"].startswith("cancelled by ") and f": {reason} (" in shown["error"]
    tasks = shown["tasks"]
    assert {t["status"] for t in tasks} <= {"succeeded", "skipped"}, tasks  # none left behind
    skipped = [t for t in tasks if t["status"] == "skipped"]
    assert skipped and all(t["message"].startswith("not started: cancelled by") for t in skipped)
    assert all(t["operations"] == [] for t in skipped)
    for task in tasks:
        if task["status"] == "succeeded":  # followed to its end
            assert [op["state"] for op in task["operations"]] == ["succeeded"], task
            started = datetime.fromisoformat(task["started_at"].replace("Z", "+00:00"))
            assert started <= noticed + timedelta(seconds=SLACK_S), (task, noticed)
    assert sum(t["action"] == "backup" and bool(t["operations"]) for t in tasks) > 0
    assert_nothing_lost(cli, fleet)


def assert_nothing_lost(cli: Cli, fleet: SandboxProcess) -> None:
    """Every backup Kinsta accepted is a task's operation in history, whatever run sent it."""
    listed = cli(
        "history", "--tasks", "--action", "backup", "--limit", "100000", "--format", "json"
    )
    sent: dict[str, int] = {}
    for task in listed.json():
        key = f"{task['site']}/{task['environment']}"
        sent[key] = sent.get(key, 0) + (task["operation_id"] is not None)
    for key, env in fleet.state().items():
        assert env["counters"].get("backups:add-manual:accepted", 0) == sent.get(key, 0), key
    assert fleet.stats()["overlaps"] == 0


def test_cancel_stops_a_triggered_night_from_another_process(
    cli: Cli, fleet: SandboxProcess, tmp_path: Path
) -> None:
    use(cli, fleet, JOBS % ("", ""))
    log = tmp_path / "trigger.log"
    with log.open("w") as out:
        night = subprocess.Popen(
            [EXE, "trigger", "backups"], cwd=cli.cwd, env=cli.env, stdout=out, stderr=out
        )
    try:
        run_id = started_night(cli, log.read_text)
        asked = cli("cancel", str(run_id), "--reason", "bad release")
        assert asked.code == 0, asked.err
        assert re.match(rf"run {run_id} \(job backups\): cancel requested by \S+@", asked.out)
        assert night.wait(timeout=60) == 1  # a run that did not succeed
    finally:
        if night.poll() is None:
            night.kill()
    output = log.read_text()
    assert f"run {run_id}: cancelled" in output
    assert_cancelled_with_nothing_lost(cli, fleet, run_id, noticed_at(output), "bad release")

    again = cli("cancel", str(run_id))
    assert again.code == 2 and f"run {run_id} (job backups) already ended: cancelled" in again.err
    assert "Traceback" not in again.err  # unknown ids and bad input: test_hostile_input.py
    listed = cli("history", "--status", "cancelled", "--format", "json").json()
    assert [r["run_id"] for r in listed] == [run_id] and "bad release" in listed[0]["error"]


def test_cancel_by_job_stops_the_daemons_night_and_the_next_slot_runs(
    cli: Cli,
    fleet: SandboxProcess,
    daemons: list[Daemon],
    receiver: tuple[str, list[tuple[str, Any]]],  # noqa: F811 - the fixture imported above
) -> None:
    url, received = receiver
    use(cli, fleet, JOBS % (f"notify: {{webhooks: [{url}/json]}}", "schedule: {every: 2s}"))
    daemon = Daemon(cli, "--metrics-port", "0")
    daemons.append(daemon)
    port = daemon.wait_for(r"metrics at http://127\.0\.0\.1:(\d+)/metrics").group(1)
    run_id = started_night(cli, daemon.text)
    asked = cli("cancel", "--job", "backups", "--reason", "maintenance window closed")
    assert asked.code == 0 and asked.out.startswith(f"run {run_id} (job backups): cancel"), asked
    wait_until(lambda: work_after_cancel(daemon.text()), timeout=60)  # the next slot ran
    _, metrics = get(f"http://127.0.0.1:{port}/metrics")
    assert 'kinsta_scheduler_runs_total{job="backups",status="cancelled"} 1.0' in metrics
    assert daemon.stop() == 0
    noticed = noticed_at(daemon.text())
    assert_cancelled_with_nothing_lost(cli, fleet, run_id, noticed, "maintenance window closed")
    (message,) = [b for path, b in received if path == "/json" and b["event"] == "cancelled"]
    assert message["run_id"] == run_id and message["status"] == "cancelled"
    assert message["cancel"]["reason"] == "maintenance window closed"
    assert "maintenance window closed" in message["text"]
