"""Pause, resume and blackouts through the real CLI: `pause` written by one process is obeyed
by daemons in others (two replicas on PostgreSQL), `plan`, `history` and /metrics show it, a
blackout skips the daemon's slots and `trigger` asks for --force. Every-second schedules, a
blackout that covers every date (so no test depends on the day)."""

from __future__ import annotations

import json
import re
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from tests.acceptance.conftest import Cli, Daemon, SandboxProcess, run_rows, runs, use, wait_until

HEAD = """version: 1
daemon: {heartbeat: 0.3s, shutdown_timeout: 5s}
kinsta:
  rate_limits: {per_minute: 600}
  polling: {first_poll: 0.05s, max_interval: 0.2s}
"""
TICK = """jobs:
  - id: tick
    schedule: {every: 1s}
    catch_up: false
    targets: {sites: ["%s"]}
    actions: [clear_cache]
%s"""


def first_site(sandbox: SandboxProcess) -> str:
    return sorted(sandbox.state())[0].split("/")[0]


def tick_rows(cli: Cli, status: str) -> int:
    return sum(r["job_id"] == "tick" and r["status"] == status for r in run_rows(cli))


def paused_rows(cli: Cli, after: datetime, job: str = "tick", why: str = "paused by %") -> int:
    """Slots of `job` after `after` recorded with an error like `why`, read straight from the
    database (a cheap condition to poll; what the test asserts comes from `history`)."""
    engine = sa.create_engine(cli.env["KINSTA_SCHEDULER_DATABASE_URL"])
    query = (
        "SELECT count(*) FROM runs WHERE job_id = :job AND error LIKE :why "
        "AND scheduled_for > :after"
    )
    try:
        with engine.connect() as connection:
            found = connection.execute(sa.text(query), {"job": job, "why": why, "after": after})
            return int(found.scalar_one())
    finally:
        engine.dispose()


def metrics(port: str) -> str:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text: str = response.read().decode()
    return text


def test_pause_and_resume_from_the_cli_checks_what_it_is_given(
    cli: Cli, quick_sandbox: SandboxProcess
) -> None:
    use(cli, quick_sandbox, HEAD + TICK % (first_site(quick_sandbox), ""))
    unknown = cli("pause", "tik")
    assert unknown.code == 2 and "no job 'tik' in jobs.yaml; did you mean 'tick'?" in unknown.err
    past = cli("pause", "tick", "--until", "2020-01-01T00:00Z")
    assert past.code == 2 and "--until: '2020-01-01T00:00Z' is in the past" in past.err
    assert "Traceback" not in unknown.err + past.err
    assert cli("resume", "tick").code == 2  # not paused: nothing to resume

    done = cli("pause", "tick", "--until", "2h", "--reason", "deploy freeze")
    assert done.code == 0, done.err
    assert "job tick paused by " in done.out and ": deploy freeze" in done.out
    (row,) = cli("plan", "--offline", "--format", "json").json()
    paused: dict[str, Any] = row["paused"]
    until = datetime.fromisoformat(paused["until"])
    assert (paused["source"], paused["reason"]) == ("pause", "deploy freeze")
    assert timedelta(minutes=119) < until - datetime.now(UTC) <= timedelta(hours=2)
    assert "[paused]" in cli("plan", "--offline").out
    assert re.search(r"paused: tick by \S+ until .*: deploy freeze", cli("history").out)
    refused = cli("trigger", "tick")
    assert refused.code == 2 and "run it anyway with --force, or `resume tick` first" in refused.err

    lifted = cli("resume", "tick")
    assert lifted.code == 0 and "job tick resumed" in lifted.out and "deploy freeze" in lifted.out
    assert cli("plan", "--offline", "--format", "json").json()[0]["paused"] is None
    assert "paused:" not in cli("history").out


def test_two_daemons_on_postgresql_obey_a_pause_written_by_another_process(
    cli: Cli, quick_sandbox: SandboxProcess, daemons: list[Daemon], pg_url: str
) -> None:
    from tests.conftest import _reset_pg

    _reset_pg(pg_url)
    use(cli, quick_sandbox, HEAD + TICK % (first_site(quick_sandbox), ""), database=pg_url)
    pair = [Daemon(cli, name="d1"), Daemon(cli, "--metrics-port", "0", name="d2")]
    daemons.extend(pair)
    port = pair[1].wait_for(r"metrics at http://127\.0\.0\.1:(\d+)/metrics", timeout=60).group(1)
    for daemon in pair:
        daemon.wait_for("daemon.started", timeout=60)
    wait_until(lambda: tick_rows(cli, "succeeded") >= 2, timeout=60)

    assert cli("pause", "tick", "--reason", "freeze").code == 0
    settled = datetime.now(UTC) + timedelta(seconds=1)  # the pause is written by now
    wait_until(lambda: paused_rows(cli, settled) >= 3, timeout=60)
    wait_until(
        lambda: 'kinsta_scheduler_job_paused{job="tick",source="pause"} 1.0' in metrics(port)
    )
    resumed = datetime.now(UTC)  # slots before this were held; the CLI writes after it
    assert cli("resume", "tick").code == 0
    before = tick_rows(cli, "succeeded")
    wait_until(lambda: tick_rows(cli, "succeeded") >= before + 2, timeout=60)
    wait_until(lambda: 'kinsta_scheduler_job_paused{job="tick"' not in metrics(port))
    for daemon in pair:
        assert daemon.stop() == 0

    history = [r for r in runs(cli) if r["job_id"] == "tick"]
    held = [r for r in history if r["status"] == "skipped" and "paused by" in (r["error"] or "")]
    assert held and all(r["error"].endswith(": freeze") for r in held)
    # From a second after the pause was written until `resume` was started, no slot ran, on
    # either daemon: every one was recorded skipped with the pause's reason.
    during = [r for r in history if settled < datetime.fromisoformat(r["scheduled_for"]) < resumed]
    assert len(during) >= 3 and all(r in held for r in during), during
    for daemon in pair:  # each replica held the slots itself (one of them wrote each row)
        assert any(
            line.get("event") == "run.held" and line["reason"].endswith(": freeze")
            for line in log_lines(daemon)
        )


def log_lines(daemon: Daemon) -> list[dict[str, Any]]:
    return [json.loads(line) for line in daemon.text().splitlines() if line.startswith("{")]


def test_a_blackout_skips_the_daemons_slots_and_plan_and_trigger_say_so(
    cli: Cli, quick_sandbox: SandboxProcess, daemons: list[Daemon]
) -> None:
    always = "    blackouts: ['2000-01-01 to 2999-12-31, freeze']\n"
    use(cli, quick_sandbox, HEAD + TICK % (first_site(quick_sandbox), always))
    daemon = Daemon(cli)
    daemons.append(daemon)
    wait_until(lambda: tick_rows(cli, "skipped") >= 2, timeout=60)
    assert daemon.stop() == 0
    history = runs(cli)
    assert history and all(
        r["status"] == "skipped" and r["error"] == "blackout: freeze" for r in history
    )
    (row,) = cli("plan", "--offline", "--format", "json", "--count", "3").json()
    assert row["blackout"] == ["freeze"] * 3 and row["paused"] is None
    assert cli("plan", "--offline").out.count("[blackout: freeze]") == 5

    refused = cli("trigger", "tick")
    assert refused.code == 2 and "Traceback" not in refused.err
    assert "job tick is held now (blackout: freeze)" in refused.err and "--force" in refused.err
    forced = cli("trigger", "tick", "--force")
    assert forced.code == 0, forced.err
    assert "forced: job tick runs although it is held (blackout: freeze)" in forced.err
    assert [r["status"] for r in runs(cli) if r["trigger"] == "manual"] == ["succeeded"]


REPLICATED = """blackouts:
  - {name: rolling freeze, cron: "* * * * *", duration: 2m}
jobs:
  - id: frozen
    schedule: {every: 1s}
    catch_up: false
    targets: {sites: ["%(site)s"]}
    actions: [clear_cache]
    blackouts: [{name: release freeze, from: "%(start)s", to: "%(end)s", timezone: UTC}]
  - id: windowed
    schedule: {every: 1s}
    catch_up: false
    targets: {sites: ["%(site)s"]}
    actions: [clear_cache]
"""
BLACKOUTS = {"frozen": "release freeze", "windowed": "rolling freeze"}


def test_two_daemons_on_postgresql_record_each_blacked_out_slot_once(
    cli: Cli, quick_sandbox: SandboxProcess, daemons: list[Daemon], pg_url: str
) -> None:
    """`frozen` lies in its own fixed range (a day either side of the test's now, in UTC),
    `windowed` in the file's recurring window (opening every minute for two): both replicas
    fire every slot and hold it, and each slot has one row, skipped with the blackout's name."""
    from tests.conftest import _reset_pg

    _reset_pg(pg_url)
    wall = "%Y-%m-%d %H:%M"
    now = datetime.now(UTC)
    values = {
        "site": first_site(quick_sandbox),
        "start": (now - timedelta(days=1)).strftime(wall),
        "end": (now + timedelta(days=1)).strftime(wall),
    }
    use(cli, quick_sandbox, HEAD + REPLICATED % values, database=pg_url)
    pair = [Daemon(cli, name="d1"), Daemon(cli, name="d2")]
    daemons.extend(pair)
    for daemon in pair:
        daemon.wait_for("daemon.started", timeout=60)
    both = datetime.now(UTC) + timedelta(seconds=1)  # every slot after this, both replicas fire

    def enough() -> bool:
        return all(paused_rows(cli, both, job, "blackout: %") >= 4 for job in BLACKOUTS)

    wait_until(enough, timeout=60)
    stopping = datetime.now(UTC)
    for daemon in pair:
        assert daemon.stop() == 0

    history = runs(cli)
    assert history and all(
        r["status"] == "skipped" and r["error"] == f"blackout: {BLACKOUTS[r['job_id']]}"
        for r in history
    ), history
    rows = Counter((r["job_id"], datetime.fromisoformat(r["scheduled_for"])) for r in history)
    assert set(rows.values()) == {1}, rows  # one row per slot, whoever wrote it
    held = [
        Counter(
            (line["job_id"], datetime.fromisoformat(line["scheduled_for"]))
            for line in log_lines(daemon)
            if line.get("event") == "run.held"
        )
        for daemon in pair
    ]
    for job, name in BLACKOUTS.items():
        # Every slot from both replicas' start to the stop was held, by each replica, and
        # recorded once.
        slots = [slot for j, slot in rows if j == job and both < slot < stopping]
        assert len(slots) >= 4 and (max(slots) - min(slots)).total_seconds() == len(slots) - 1
        assert all(by[(job, slot)] == 1 for by in held for slot in slots), (held, slots)
        assert any(
            line.get("event") == "run.held" and line["reason"] == f"blackout: {name}"
            for daemon in pair
            for line in log_lines(daemon)
        )

    planned = {r["job_id"]: r for r in cli("plan", "--offline", "--format", "json").json()}
    assert {job: planned[job]["blackout"] for job in BLACKOUTS} == {
        job: [name] * 5 for job, name in BLACKOUTS.items()
    }
    table = cli("plan", "--offline").out
    assert all(table.count(f"[blackout: {name}]") == 5 for name in BLACKOUTS.values()), table
