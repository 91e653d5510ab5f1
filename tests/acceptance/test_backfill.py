"""backfill through the real CLI against a sandbox process: the slots of a past range with no
row, or a `missed` one, run one after another (trigger `backfill`); slots that ran, or were
skipped, are left alone; `--dry-run` runs nothing; a second backfill finds nothing to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler.domain import RunStatus, RunTrigger
from scheduler.history import make_engine, sql_store
from tests.acceptance.conftest import DATABASE_FILE, Cli, SandboxProcess, runs, use

JOBS = """version: 1
kinsta:
  rate_limits: {per_minute: 600}
  polling: {first_poll: 0.05s, max_interval: 0.2s}
jobs:
  - id: hourly
    schedule: {cron: "0 * * * *", timezone: UTC}
    targets: {sites: ["%s"]}
    actions: [clear_cache]
"""
DAY = datetime(2026, 11, 1, tzinfo=UTC)  # in the past on any day the suite runs
SLOTS = [DAY + timedelta(hours=h) for h in range(6)]  # 00:00 to 05:00, both ends included


def _iso(slot: datetime) -> str:
    return slot.isoformat().replace("+00:00", "Z")


def _recorded(cli: Cli) -> None:
    """01:00 succeeded, 02:00 missed (no daemon ran), 03:00 skipped (on purpose)."""
    engine = make_engine(f"sqlite:///{cli.cwd / DATABASE_FILE}")
    store = sql_store(engine)
    try:
        ran = store.runs.claim_run("hourly", RunTrigger.SCHEDULE, SLOTS[1], DAY, started_by="x")
        assert ran is not None
        store.runs.finish_run(ran.run_id, RunStatus.SUCCEEDED, DAY, owner=ran.owner_token)
        for slot, status in ((SLOTS[2], RunStatus.MISSED), (SLOTS[3], RunStatus.SKIPPED)):
            store.runs.record_run(
                "hourly", RunTrigger.SCHEDULE, slot, DAY, status=status, error="before"
            )
    finally:
        engine.dispose()


def test_backfill_runs_exactly_the_slots_that_never_ran(
    cli: Cli, sandbox_process: SandboxProcess
) -> None:
    site = next(iter(sandbox_process.state())).split("/")[0]
    use(cli, sandbox_process, JOBS % site)
    _recorded(cli)
    window = ["--from", "2026-11-01T00:00:00+00:00", "--to", "2026-11-01T05:00:00+00:00"]
    dry = cli("backfill", "hourly", *window, "--dry-run")
    assert dry.code == 0, dry.err
    assert dry.out.splitlines()[0].startswith("backfill of job hourly: 4 slot(s) to run, 2 ")
    assert "  2026-11-01T02:00:00+00:00  (recorded missed)" in dry.out
    assert len(runs(cli)) == 3  # nothing ran

    done = cli("backfill", "hourly", *window)
    assert done.code == 0, done.err
    rows = {r["scheduled_for"]: r for r in runs(cli)}
    backfilled = sorted(k for k, r in rows.items() if r["trigger"] == "backfill")
    assert backfilled == [_iso(SLOTS[h]) for h in (0, 2, 4, 5)]
    assert all(rows[k]["status"] == "succeeded" for k in backfilled)
    assert rows[_iso(SLOTS[3])]["status"] == "skipped"
    assert len(rows) == 6

    again = cli("backfill", "hourly", *window)
    assert again.code == 0 and again.out.startswith("backfill of job hourly: 0 slot(s) to run")
    assert len(runs(cli)) == 6

    future = cli("backfill", "hourly", "--from", "1h", "--to", "2999-01-01T00:00:00+00:00")
    assert future.code == 2 and "past slots only" in future.err

    # A paused job's slots are left out, unless --force.
    assert cli("pause", "hourly", "--reason", "migration").code == 0
    later = ["--from", "2026-11-02T00:00:00+00:00", "--to", "2026-11-02T01:00:00+00:00"]
    held = cli("backfill", "hourly", *later)
    assert held.code == 0 and held.out.startswith("backfill of job hourly: 0 slot(s) to run")
    assert held.out.count("left out, held: paused by ") == 2 and len(runs(cli)) == 6
    forced = cli("backfill", "hourly", *later, "--force")
    assert forced.code == 0 and len(runs(cli)) == 8
