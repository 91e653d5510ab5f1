"""Overlap policies through the real daemon against a sandbox process: runs last longer than
their jobs' interval. `skip` records each slot that comes while its run goes as skipped, saying
why; `allow` runs beside the running run, environment locks still serialising the tasks on one
environment; `cancel_previous` cancels the running run (it ends `cancelled`, said to be by the
overlap policy) and the new slot runs; `buffer_one` runs each next slot right after the previous
run ends, never beside it."""

from __future__ import annotations

import contextlib
import itertools
import re
from datetime import datetime, timedelta
from typing import Any

from tests.acceptance.conftest import (
    Cli,
    Daemon,
    SandboxProcess,
    run_rows,
    runs,
    serve,
    use,
    wait_until,
)

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


SLOW = """version: 1
daemon: {heartbeat: 0.3s, shutdown_timeout: 30s}
kinsta:
  rate_limits: {per_minute: 600}
  polling: {first_poll: 0.05s, max_interval: 0.2s}
jobs:
  - id: skipping
    schedule: {every: 1s}
    catch_up: false
    targets: {sites: ["%s"]}
    overlap: skip
    actions: [backup]
  - id: allowing
    schedule: {every: 1s}
    catch_up: false
    targets: {sites: ["%s"]}
    overlap: allow
    actions: [backup]
"""


def _sequential(spans: list[dict[str, Any]]) -> None:
    """Each span (a run, a task) started once the one before it had ended."""
    spans = sorted(spans, key=lambda s: _when(s["started_at"]))
    for before, after in itertools.pairwise(spans):
        assert _when(after["started_at"]) >= _when(before["finished_at"]), (before, after)


def _enough(cli: Cli) -> bool:
    """Two runs of `allowing` and one of `skipping` done, two slots of `skipping` skipped."""
    rows = run_rows(cli)
    done = [r["job_id"] for r in rows if r["status"] == "succeeded"]
    skipped = sum(r["job_id"] == "skipping" and r["status"] == "skipped" for r in rows)
    return skipped >= 2 and done.count("allowing") >= 2 and "skipping" in done


def test_skip_and_allow_in_the_daemon(cli: Cli, daemons: list[Daemon]) -> None:
    """Backups take 2.4 s, exactly (no spread), and both jobs fire every second:
    `skip` records each slot that comes while its run goes as skipped; `allow` starts a run
    beside the running one, whose task waits for the environment's lock (the sandbox never
    sees two operations on one environment at once)."""
    with contextlib.contextmanager(serve)(cli, 0.02, flags=("--duration-spread", "0")) as box:
        sites = sorted({key.split("/")[0] for key in box.state()})[:2]
        use(cli, box, SLOW % tuple(sites))
        daemon = Daemon(cli)
        daemons.append(daemon)
        try:
            wait_until(lambda: _enough(cli), timeout=40)
        except AssertionError:
            raise AssertionError(f"{run_rows(cli)}\n{daemon.text()[-3000:]}") from None
        assert daemon.stop() == 0
        assert box.stats()["overlaps"] == 0
    history = sorted(runs(cli), key=lambda r: r["run_id"])

    # skip: the job's runs follow one another, and each slot that came while one went is
    # recorded skipped, saying why.
    ran = [r for r in history if r["job_id"] == "skipping" and r["status"] == "succeeded"]
    _sequential(ran)
    skipped = [r for r in history if r["job_id"] == "skipping" and r["status"] == "skipped"]
    still = re.compile(r"^(the previous run|run \d+ of this job \(by .+\)) was still running$")
    assert skipped and all(still.match(r["error"]) for r in skipped), skipped
    for slot in skipped:
        at = _when(slot["scheduled_for"])
        going = [r for r in ran if _when(r["scheduled_for"]) < at]
        assert going and at <= _when(going[-1]["finished_at"]) + timedelta(seconds=1), slot

    # allow: runs of the job overlap in time, each decision said; their tasks on its one
    # environment never did.
    mine = [r for r in history if r["job_id"] == "allowing"]
    assert mine and all(r["status"] != "skipped" for r in mine), mine
    later = [
        b
        for a, b in itertools.permutations([r for r in mine if r["status"] == "succeeded"], 2)
        if _when(a["started_at"]) <= _when(b["started_at"]) < _when(a["finished_at"])
    ]
    assert later, mine
    said = [e["detail"] or "" for e in cli("history", "daemon", "--format", "json").json()]
    for run in later:
        due = _when(run["scheduled_for"]).isoformat()
        assert any(
            re.fullmatch(
                rf"job allowing, slot {re.escape(due)}: runs beside run \d+ "
                r"\(overlap: allow\)",
                e,
            )
            for e in said
        ), (run, said)
    tasks = cli("history", "--tasks", "--job", "allowing", "--format", "json", "--limit", "1000")
    done = [t for t in tasks.json() if t["started_at"] and t["finished_at"]]
    assert len(done) >= 2 and len({(t["site"], t["environment"]) for t in done}) == 1
    _sequential(done)
