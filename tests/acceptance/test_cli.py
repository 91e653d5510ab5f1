"""The real CLI in a subprocess against the sandbox: trigger, history, show, validate, run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.acceptance.conftest import (
    SANDBOX_KEY,
    Cli,
    Daemon,
    SandboxProcess,
    run_rows,
    wait_until,
)

JOBS = """version: 1
kinsta:
  polling: {first_poll: 0.1s, max_interval: 0.3s}
jobs:
  - id: clear-all
    targets: {sites: ["*"], environment: all}
    actions: [clear_cache]
"""


def point_at(cli: Cli, sandbox: SandboxProcess, database: str | None = None) -> None:
    (cli.cwd / "jobs.yaml").write_text(JOBS)
    cli.env.update(KINSTA_API_URL=sandbox.url, KINSTA_API_KEY=SANDBOX_KEY)
    if database:
        cli.env["KINSTA_SCHEDULER_DATABASE_URL"] = database


def trigger_and_check(cli: Cli, sandbox: SandboxProcess) -> None:
    if "KINSTA_SCHEDULER_DATABASE_URL" in cli.env:
        assert cli("db", "upgrade").code == 0
    result = cli("trigger", "clear-all")
    assert result.code == 0, result.err
    assert "run 1: succeeded" in result.out
    assert SANDBOX_KEY not in result.out + result.err

    runs = cli("history", "--format", "json").json()
    assert len(runs) == 1
    run = runs[0]
    assert (
        run["job_id"] == "clear-all" and run["trigger"] == "manual" and run["status"] == "succeeded"
    )
    assert run["tasks_failed"] == 0 and run["tasks_total"] >= 5
    assert run["started_at"].endswith("Z") and run["finished_at"] >= run["started_at"]

    shown = cli("show", str(run["run_id"]), "--format", "json").json()
    tasks = shown["tasks"]
    environments = {(t["site"], t["environment"]) for t in tasks}
    assert len(tasks) == len(environments) == run["tasks_total"]  # one task per environment
    for task in tasks:
        assert task["status"] == "succeeded" and task["action"] == "clear_cache"
        assert (
            task["operation_id"].startswith("cache:clear-")
            and task["operation_status"] == "succeeded"
        )
        assert task["operations"][0]["timeline"][-1]["state"] == "succeeded"

    task_rows = cli("history", "--tasks", "--format", "json").json()
    assert {(t["site"], t["environment"]) for t in task_rows} == environments

    stats = sandbox.stats()
    assert (
        stats["violations"] == []
        and stats["response_violations"] == []
        and stats["rate_limited"] == 0
    )
    assert stats["by_operation"]["clearSiteCache"] == run["tasks_total"]


def test_trigger_then_history_and_show_on_sqlite(cli: Cli, sandbox_process: SandboxProcess) -> None:
    point_at(cli, sandbox_process)
    trigger_and_check(cli, sandbox_process)
    assert (cli.cwd / "kinsta-scheduler.db").exists()  # the default: beside jobs.yaml
    csv = cli("history", "--format", "csv")
    assert csv.out.splitlines()[0].startswith("run_id,job_id,trigger,scheduled_for")
    table = cli("show", "1")
    assert table.code == 0 and "clear_cache" in table.out


@pytest.mark.pg
def test_trigger_then_history_and_show_on_postgresql(
    cli: Cli, sandbox_process: SandboxProcess, pg_url: str
) -> None:
    from tests.conftest import _reset_pg

    _reset_pg(pg_url)
    point_at(cli, sandbox_process, pg_url)
    trigger_and_check(cli, sandbox_process)


@pytest.mark.pg
def test_a_new_postgresql_database_must_be_upgraded_first(
    cli: Cli, sandbox_process: SandboxProcess, pg_url: str
) -> None:
    from tests.conftest import _reset_pg

    _reset_pg(pg_url)
    point_at(cli, sandbox_process, pg_url)
    result = cli("trigger", "clear-all")
    assert result.code == 2
    assert "run `kinsta-scheduler db upgrade`" in result.err and "Traceback" not in result.err


def test_bad_jobs_yaml_lists_every_problem_and_exits_2(cli: Cli) -> None:
    (cli.cwd / "jobs.yaml").write_text(
        "version: 1\njobs:\n  - id: a\n    schedule: {cron: '* * *'}\n    actions: [clear_cache]\n"
        "  - id: a\n    actions: [explode]\n"
    )
    for command in (("validate",), ("trigger", "a"), ("run",)):
        result = cli(*command)
        assert result.code == 2, command
        assert "Traceback" not in result.err
        lines = result.err.strip().splitlines()
        assert "jobs.yaml:4: job 'a': schedule: invalid cron expression '* * *'" in lines[0]
        assert lines[1] == "jobs.yaml:6: job 'a': id: duplicate job id (first at job #1)"


def test_missing_api_key_and_unknown_ids_exit_2(cli: Cli, sandbox_process: SandboxProcess) -> None:
    (cli.cwd / "jobs.yaml").write_text(JOBS)
    result = cli("trigger", "clear-all")
    assert result.code == 2 and "no API key: set KINSTA_API_KEY" in result.err
    point_at(cli, sandbox_process)
    assert cli("trigger", "no-such-job").err.strip() == "error: no job 'no-such-job' in jobs.yaml"
    assert cli("trigger", "no-such-job").code == 2
    shown = cli("show", "42")
    assert (shown.code, shown.err.strip()) == (2, "error: no run 42")
    bad_since = cli("history", "--since", "last tuesday")
    assert bad_since.code == 2 and "'last tuesday'" in bad_since.err
    bad_status = cli("history", "--status", "exploded")
    assert bad_status.code == 2 and "unknown status 'exploded'" in bad_status.err
    bad_format = cli("history", "--format", "xml")
    assert bad_format.code == 2 and "Traceback" not in bad_format.err


def test_a_wrong_key_fails_cleanly_without_printing_it(
    cli: Cli, sandbox_process: SandboxProcess
) -> None:
    point_at(cli, sandbox_process)
    cli.env["KINSTA_API_KEY"] = "wrong-secret-key-123"
    result = cli("trigger", "clear-all")
    assert result.code == 2
    assert "HTTP 401" in result.err and "wrong-secret-key-123" not in result.err + result.out


def test_validate_online_with_a_key_kinsta_rejects_exits_2(
    cli: Cli, sandbox_process: SandboxProcess
) -> None:
    point_at(cli, sandbox_process)
    cli.env["KINSTA_API_KEY"] = "wrong-secret-key-123"
    result = cli("validate")
    assert result.code == 2, result
    assert result.err.strip().splitlines() == [
        "error: GET /validate: HTTP 401: No or invalid API key provided to the request"
    ]
    assert "ok" not in result.out and "wrong-secret-key-123" not in result.err + result.out


def test_the_daemon_fires_on_schedule_and_stops_on_sigterm(cli: Cli) -> None:
    (cli.cwd / "jobs.yaml").write_text(
        # clear_cache exactly 0.2 s, polled within 0.3 s (its first scouts too: two
        # max_intervals): each run ends well within its 2 s slot, so none is skipped (a 1 s
        # slot was overrun now and then while other tests' processes held both cores)
        "version: 1\nsandbox: {sites: 3, time_scale: 0.02, duration_spread: 0}\n"
        "kinsta:\n  polling: {first_poll: 0.05s, max_interval: 0.15s}\n"
        "jobs:\n  - id: tick\n    schedule: {every: 2s}\n    actions: [clear_cache]\n"
    )
    daemon = Daemon(cli, "--sandbox", options=("--log-format", "json"))
    daemon.wait_for("daemon.started", timeout=60)  # a loaded machine may take seconds to start

    def succeeded() -> int:
        return sum(r["job_id"] == "tick" and r["status"] == "succeeded" for r in run_rows(cli))

    wait_until(lambda: succeeded() >= 2, timeout=60)
    assert daemon.stop() == 0, daemon.text()
    err = daemon.text()
    assert '"event": "daemon.stopped"' in err and "Traceback" not in err
    runs = cli("history", "--job", "tick", "--format", "json").json()
    assert len(runs) >= 2
    assert all(r["trigger"] == "schedule" for r in runs)
    # a run may outlast its second on a loaded machine: the next slot is skipped (overlap)
    assert {r["status"] for r in runs} <= {"succeeded", "interrupted", "skipped"}
    assert all("still running" in (r["error"] or "") for r in runs if r["status"] == "skipped")
    assert sum(r["status"] == "succeeded" for r in runs) >= 2


def test_plan_lists_next_fire_times(cli: Cli) -> None:
    (cli.cwd / "jobs.yaml").write_text(
        "version: 1\ntimezone: Europe/Amsterdam\njobs:\n"
        "  - id: nightly\n    schedule: {cron: '30 2 * * *'}\n    actions: [clear_cache]\n"
    )
    plan = cli("plan", "--count", "3", "--format", "json").json()
    assert plan[0]["job_id"] == "nightly" and len(plan[0]["next"]) == 3
    assert all(t.endswith(("T01:30:00Z", "T00:30:00Z")) for t in plan[0]["next"])


def test_python_dash_m_works(cli: Cli) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "scheduler", "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(cli.cwd),
    )
    assert done.returncode == 0 and "trigger" in done.stdout


def test_several_companies_each_run_with_their_own_key(cli: Cli) -> None:
    (cli.cwd / "jobs.yaml").write_text(
        "version: 1\nsandbox: {sites: 2, time_scale: 0.05}\n"
        "kinsta:\n  polling: {first_poll: 0.1s, max_interval: 0.3s}\n"
        "  companies:\n    - {name: agency}\n    - {name: client-b}\n"
        "jobs:\n"
        "  - {id: a, company: agency, actions: [clear_cache]}\n"
        "  - {id: b, company: client-b, actions: [clear_cache]}\n"
    )
    assert cli("validate", "--sandbox").code == 0
    missing = cli("validate")
    assert missing.code == 2 and "company 'agency' has no api_key" in missing.err
    for job_id in ("a", "b"):
        result = cli("trigger", job_id, "--sandbox")
        assert result.code == 0, result.err
    tasks = {
        job: cli("history", "--tasks", "--job", job, "--format", "json").json()
        for job in ("a", "b")
    }
    sites = {job: {t["site"] for t in rows} for job, rows in tasks.items()}
    assert len(sites["a"]) == len(sites["b"]) == 2
    assert sites["a"].isdisjoint(sites["b"])  # each company's own fleet


def test_standalone_sandbox_rejects_bad_fault_settings(cli: Cli) -> None:
    for value, problem in (
        ("error=lots", "--faults: error: 'lots' is not a number"),
        ("error", "--faults: 'error' is not NAME=VALUE"),
        ("error=0.1,statuses=500/418", "--faults: status '418': use one of 500, 502, 503, 504"),
        ("error=0.1,only=sometimes", "--faults: method 'sometimes': use polls, mutating"),
    ):
        result = cli("sandbox", "--faults", value)
        assert result.code == 2 and problem in result.err, (value, result.err)
        assert "Traceback" not in result.err


def test_history_prune_from_the_command_line(cli: Cli, sandbox_process: SandboxProcess) -> None:
    point_at(cli, sandbox_process)
    for _ in range(3):
        assert cli("trigger", "clear-all").code == 0
    preview = cli("history", "prune", "--older-than", "0m", "--keep-last", "1", "--dry-run")
    assert preview.code == 0 and preview.out.startswith("would remove 2 run(s)")
    assert len(cli("history", "--format", "json").json()) == 3
    done = cli("history", "prune", "--older-than", "0m", "--keep-last", "1")
    assert done.code == 0 and done.out.startswith("removed 2 run(s)")
    assert [r["run_id"] for r in cli("history", "--format", "json").json()] == [3]
    assert cli("history", "prune", "--older-than", "soon").code == 2


def test_sites_report(cli: Cli, sandbox_process: SandboxProcess) -> None:
    point_at(cli, sandbox_process)
    assert cli("trigger", "clear-all").code == 0
    rows = cli("sites", "--format", "json").json()
    assert len(rows) == 5
    assert all(r["last_success_at"] and r["last_failure_at"] is None for r in rows)
    assert {a["action"] for r in rows for a in r["actions"]} == {"clear_cache"}
    table = cli("sites")
    assert table.code == 0 and rows[0]["site"] in table.out
    assert cli("sites", "--site", "no-such-site").code == 2


def test_history_governor_lists_events(cli: Cli, sandbox_process: SandboxProcess) -> None:
    point_at(cli, sandbox_process)
    assert cli("db", "upgrade").code == 0
    result = cli("history", "governor", "--format", "json")
    assert result.code == 0 and result.json() == []
    assert cli("history", "governor", "--since", "whenever").code == 2


def test_an_older_sqlite_history_upgrades_only_when_asked(
    cli: Cli, sandbox_process: SandboxProcess
) -> None:
    point_at(cli, sandbox_process)
    assert cli("db", "upgrade", "0001").code == 0
    refused = cli("trigger", "clear-all")
    assert (
        refused.code == 2
        and "run `kinsta-scheduler db upgrade` (or pass --upgrade-db)" in refused.err
    )
    assert cli("trigger", "clear-all", "--upgrade-db").code == 0
    assert cli("db", "current").out.split()[1] == cli("db", "current").out.split()[3]
