"""Overlap policies through the real daemon against a sandbox process: runs last longer than
their jobs' two-second interval. `cancel_previous` cancels the running run (it ends
`cancelled`, said to be by the overlap policy) and the new slot runs; `buffer_one` runs each
next slot right after the previous run ends, never beside it."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from tests.acceptance.conftest import Cli, Daemon, SandboxProcess, run_rows, runs, use, wait_until

JOBS = """version: 1
daemon: {heartbeat: 0.3s, shutdown_timeout: 30s}
kinsta:
  rate_limits: {per_minute: 600}
  polling: {first_poll: 0.05s, max_interval: 0.2s}
jobs:
  - id: cancelling
    schedule: {every: 2s}
    catch_up: false
    targets: {sites: ["%s", "%s"], environment: all}
    concurrency: 1
    overlap: cancel_previous
    actions: [backup]
  - id: buffering
    schedule: {every: 2s}
    catch_up: false
    targets: {sites: ["%s", "%s"], environment: all}
    concurrency: 1
    overlap: buffer_one
    actions: [backup]
"""


def _of(cli: Cli, job: str) -> list[dict[str, Any]]:
    return sorted((r for r in runs(cli) if r["job_id"] == job), key=lambda r: r["run_id"])


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_cancel_previous_and_buffer_one_in_the_daemon(
    cli: Cli, quick_sandbox: SandboxProcess, daemons: list[Daemon]
) -> None:
    sites = sorted({key.split("/")[0] for key in quick_sandbox.state()})[:4]
    use(cli, quick_sandbox, JOBS % tuple(sites))
    daemon = Daemon(cli)
    daemons.append(daemon)

    def enough() -> bool:
        rows = run_rows(cli)
        cancelled = any(r["job_id"] == "cancelling" and r["status"] == "cancelled" for r in rows)
        buffered = [r for r in rows if r["job_id"] == "buffering" and r["status"] != "skipped"]
        return cancelled and len(buffered) >= 3

    try:
        wait_until(enough, timeout=60)
    except AssertionError:
        raise AssertionError(f"{run_rows(cli)}\n{daemon.text()[-3000:]}") from None
    assert daemon.stop() == 0

    cancelling = _of(cli, "cancelling")
    cancelled = [r for r in cancelling if r["status"] == "cancelled"]
    assert cancelled and all(
        r["cancel"]["requested_by"] == "overlap: cancel_previous of job cancelling"
        for r in cancelled
    )
    first = cancelled[0]
    assert any(r["run_id"] > first["run_id"] and r["status"] != "skipped" for r in cancelling)
    assert not [r for r in cancelling if "still running" in (r["error"] or "")]

    ran = [r for r in _of(cli, "buffering") if r["status"] not in ("skipped", "running")]
    for before, after in itertools.pairwise(ran):
        assert _when(after["started_at"]) >= _when(before["finished_at"]), (before, after)
    skipped = [r for r in _of(cli, "buffering") if r["status"] == "skipped"]
    reasons = ("already waiting for the running run", "the daemon stopped while this slot waited")
    assert all(any(why in r["error"] for why in reasons) for r in skipped), skipped
    assert "overlap: buffer_one" in daemon.text() and quick_sandbox.stats()["overlaps"] == 0
