"""Aim and preview, and confirmations (issue 16, items 5 and 6), through the real CLI against a
sandbox process: `trigger --dry-run` sends nothing but the read of the site list (checked at the
sandbox, by method) and records no run; `--site`/`--environment` narrow a run; a job that
restores asks first, and without a terminal refuses (exit 2) unless --yes; `db downgrade` too."""

from __future__ import annotations

from typing import Any

from scheduler.sandbox.spec import load_spec
from tests.acceptance.conftest import Cli, SandboxProcess, runs, use

JOBS = """version: 1
kinsta:
  rate_limits: {per_minute: 600}
  polling: {first_poll: 0.05s, max_interval: 0.2s}
jobs:
  - id: nightly
    schedule: {cron: "0 3 * * *"}
    targets: {environment: all}
    actions: [backup, clear_cache]
  - id: restore-all
    targets: {environment: live}
    actions: [{restore_backup: {backup: latest}}]
"""

METHOD = {route.name: route.method for route in load_spec().routes}


def _sent(sandbox: SandboxProcess) -> dict[str, int]:
    """Requests the sandbox served, by method."""
    by_method: dict[str, int] = {}
    for name, count in sandbox.stats()["by_operation"].items():
        method = METHOD.get(name, "?")
        by_method[method] = by_method.get(method, 0) + count
    return by_method


def _targets(run: dict[str, Any]) -> set[str]:
    return {t.split("/")[0] for t in run["targets"]}


def test_dry_run_sends_no_change_and_site_narrows_a_run(
    cli: Cli, sandbox_process: SandboxProcess
) -> None:
    use(cli, sandbox_process, JOBS)
    before = _sent(sandbox_process)
    dry = cli("trigger", "nightly", "--dry-run")
    assert dry.code == 0, dry.err
    assert dry.out.startswith("dry run of job nightly: ") and "no run is recorded" in dry.out
    lines = [line for line in dry.out.splitlines() if line.startswith("  ")]
    assert lines and all("backup (~" in line and "clear_cache (~" in line for line in lines)
    after = _sent(sandbox_process)
    sent = {m: n - before.get(m, 0) for m, n in after.items() if n != before.get(m, 0)}
    assert sent == {"GET": 2}, sandbox_process.stats()["by_operation"]  # the key, the sites
    assert runs(cli) == []
    site = lines[0].split()[0].split("/")[0]

    narrowed = cli("trigger", "nightly", "--site", site, "--environment", "live")
    assert narrowed.code == 0, narrowed.err
    (run,) = runs(cli)
    assert run["targets"] == [f"{site}/live"] and run["tasks_total"] == 2
    missing = cli("trigger", "nightly", "--site", "no-such-site")
    assert missing.code == 2 and "none of job 'nightly''s targets" in missing.err
    assert len(runs(cli)) == 1


def test_a_restore_asks_first_and_refuses_without_a_terminal(
    cli: Cli, sandbox_process: SandboxProcess
) -> None:
    use(cli, sandbox_process, JOBS)
    before = _sent(sandbox_process)
    refused = cli("trigger", "restore-all")
    assert refused.code == 2 and "Traceback" not in refused.err
    assert "confirm with --yes (no terminal to ask)" in refused.err
    assert "run restore_backup (job restore-all) on " in refused.err
    assert set(_sent(sandbox_process)) - set(before) <= {"GET"}
    assert sum(n for m, n in _sent(sandbox_process).items() if m != "GET") == sum(
        n for m, n in before.items() if m != "GET"
    )
    assert runs(cli) == []
    preview = cli("trigger", "restore-all", "--dry-run")  # a preview needs no confirmation
    assert preview.code == 0 and "restore_backup (~" in preview.out

    downgrade = cli("db", "downgrade", "base")
    assert downgrade.code == 2 and "confirm with --yes" in downgrade.err
    assert "every table of the history" in downgrade.err
    assert cli("db", "current").out.startswith("database: 0")  # still there
    assert cli("db", "downgrade", "base", "--yes").code == 0
    assert cli("db", "current").out.startswith("database: empty")
