"""Safe at fleet scale (issue 15's "Done when"), through the real CLI in subprocesses against a
sandbox of 30 sites (`kinsta-scheduler sandbox`): every live environment is offered a plugin
release that breaks the site (a fatal error) beside three good updates.

One job updates plugins safely in waves (`rollout: {canary: 3, waves: [50%, 100%]}`) behind a
circuit breaker (`halt_after: {rolled_back: 2}`), night after night:
1. the canary's sites break, are restored and isolate the culprit (their good updates kept);
   the breaker halts the run: no target outside the canary is touched (at the sandbox, and in
   `show`), the later waves are `not started`, and the run ends `halted` with its reason;
2. the release is quarantined with its evidence (site, run, task, the check that failed);
3. the next night holds it back on every site and updates everything else, canary first (the
   same sites) and wave after wave: each site ends with its three good updates, not the bad one;
4. the breakage fixed, `quarantine release` lets the version through on the following night.
A second test stops a night over the same fleet, without a breaker, by `cancel` from another
process: the run ends `cancelled`, each target either finished (its operations followed to
their end, its site restored) or skipped "not started", and every operation the sandbox
accepted is in history. `cancel` of a daemon's night (with its notification) and of a
`trigger`ed night of backups is in test_cancel.py; the `halted` notification (the daemon's, not
`trigger`'s) in tests/unit/test_notify.py.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import EXE, Cli, Result, SandboxProcess, serve, use, wait_until
from tests.acceptance.test_cancel import SLACK_S, noticed_at

SITES = 30
BAD = "plugin-a"
OFFERS = {  # name -> (installed, offered), on every live environment
    BAD: ("1.0.0", "2.0.0"),
    "plugin-b": ("1.0.0", "1.0.1"),
    "plugin-c": ("3.1.0", "3.2.0"),
    "plugin-d": ("0.9.0", "1.0.0"),
}
GOOD = sorted(set(OFFERS) - {BAD})
BEFORE = {name: installed for name, (installed, _) in OFFERS.items()}
KEPT = {name: OFFERS[name][1] if name in GOOD else BEFORE[name] for name in OFFERS}
# Three nights of thirty safe updates in under a minute: Kinsta's limits (120 requests and 35
# log reads a minute) would only make them wait for budget, which other tests look at.
PER_MINUTE = 6000
JOB = "plugin-updates"
JOBS = f"""version: 1
daemon: {{heartbeat: 0.2s}}
kinsta:
  rate_limits: {{per_minute: {PER_MINUTE}, logs_per_minute: {PER_MINUTE}, per_ip_per_minute: {PER_MINUTE}}}
  polling: {{first_poll: 0.02s, max_interval: 0.1s}}
jobs:
  - id: {JOB}
    targets: {{environment: live}}
    actions: [{{update_plugins: {{safe: true}}}}]
    rollout: {{canary: 3, waves: [50%, 100%]}}
    halt_after: {{rolled_back: 2}}
  - id: no-breaker
    targets: {{environment: live}}
    concurrency: 2                 # a night long enough to stop by hand
    actions: [{{update_plugins: {{safe: true}}}}]
"""


@pytest.fixture
def fleet(cli: Cli) -> Iterator[SandboxProcess]:
    """Thirty sites, operations a thousand times faster than Kinsta's (a backup about 0.1 s)."""
    flags = (
        *("--no-seeded-updates", f"--bad-release={BAD}@{OFFERS[BAD][1]}:fatal"),
        *("--logs-per-minute", str(PER_MINUTE), "--per-ip-per-minute", str(PER_MINUTE)),
    )
    for sandbox in serve(cli, 0.001, sites=SITES, per_minute=PER_MINUTE, flags=flags):
        for name, (installed, offered) in OFFERS.items():
            body = {"name": name, "version": offered, "installed": installed, "environment": "live"}
            assert sandbox.post("offer", body)["changed"] == SITES
        use(cli, sandbox, JOBS)
        yield sandbox
        stats = sandbox.stats()
        assert (stats["violations"], stats["response_violations"], stats["canned"]) == ([], [], {})
        assert stats["overlaps"] == 0  # never two operations at once on one environment


def check(result: Result, code: int = 0) -> Result:
    assert result.code == code, result.out + result.err[-3000:]
    return result


def shown(cli: Cli, run_id: int) -> dict[str, Any]:
    found: dict[str, Any] = check(cli("show", str(run_id), "--format", "json")).json()
    return found


def plugins(fleet: SandboxProcess) -> dict[str, dict[str, str]]:
    """Each live environment's offered plugins at their installed versions, by site."""
    return {
        key.removesuffix("/live"): {n: v for n, v in env["plugins"].items() if n in OFFERS}
        for key, env in fleet.state().items()
        if key.endswith("/live")
    }


def at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def canary_of(run: dict[str, Any]) -> set[str]:
    """The sites a run started before its first wave after the canary."""
    first_wave = at(run["waves"][1]["started_at"])
    return {t["site"] for t in run["tasks"] if t["started_at"] and at(t["started_at"]) < first_wave}


def test_the_breaker_halts_at_the_canary_and_the_quarantine_holds_the_release_back(
    cli: Cli, fleet: SandboxProcess
) -> None:
    night_one = night_one_halts_after_the_canary(cli, fleet)
    canary = {t["site"] for t in night_one["tasks"] if t["started_at"]}
    the_release_is_quarantined_with_its_evidence(cli, night_one)
    the_next_night_holds_it_back_and_updates_the_rest(cli, fleet, canary)
    released_it_goes_through(cli, fleet, canary)
    listed = check(cli("history", "--format", "json")).json()
    assert [(r["run_id"], r["status"]) for r in listed] == [
        (3, "succeeded"),
        (2, "succeeded"),
        (1, "halted"),
    ]
    assert listed[2]["error"] == night_one["error"]


def night_one_halts_after_the_canary(cli: Cli, fleet: SandboxProcess) -> dict[str, Any]:
    assert "run 1: halted" in check(cli("trigger", JOB), 1).out
    run = shown(cli, 1)
    assert run["status"] == "halted" and run["tasks_total"] == SITES
    assert run["error"].startswith("halted: ")
    assert "were rolled back (halt_after.rolled_back: 2) (27 task(s) not started" in run["error"]
    waves = [
        (w["name"], w["status"], w["targets"], w["done"], w["rolled_back"]) for w in run["waves"]
    ]
    assert waves == [
        ("canary", "ended", 3, 3, 3),
        ("wave 1 of 2", "not started", 12, 0, 0),
        ("wave 2 of 2", "not started", 15, 0, 0),
    ]
    started = [t for t in run["tasks"] if t["started_at"]]
    assert len(started) == 3 and {t["status"] for t in started} == {"rolled_back"}
    for task in run["tasks"]:
        if not task["started_at"]:
            assert task["status"] == "skipped" and task["operations"] == [], task
            assert task["message"].startswith("not started: halted: "), task
    # Isolation: the two sites done before the breaker tripped kept their three good updates
    # (the third may have been cut short by the halt: what it did not try waits for tomorrow).
    complete = [t for t in started if not t["result"]["isolation"]["untried"]]
    assert len(complete) >= 2
    assert all(sorted(t["result"]["isolation"]["kept"]) == GOOD for t in complete)
    canary = {t["site"] for t in started}
    found = plugins(fleet)
    assert all(found[t["site"]] == KEPT for t in complete)  # three good applied, not the bad
    for task in started:
        assert found[task["site"]] == task["versions_after"]["plugins"]
        assert task["versions_after"]["plugins"][BAD] == BEFORE[BAD]
    for key, env in fleet.state().items():  # no operation anywhere outside the canary
        assert env["broken"] is None and env["effects"] == {}, key
        if key.removesuffix("/live") not in canary:
            assert env["counters"] == {}, key
    assert all(found[site] == BEFORE for site in found.keys() - canary)
    return run


def the_release_is_quarantined_with_its_evidence(cli: Cli, night_one: dict[str, Any]) -> None:
    (entry,) = check(cli("quarantine", "list", "--format", "json")).json()
    assert (entry["kind"], entry["name"], entry["version"]) == ("plugins", BAD, OFFERS[BAD][1])
    assert entry["run_id"] == 1 and entry["released_at"] is None
    assert "answered 500, expected 200" in entry["reason"]
    proved = {  # the canary's tasks whose isolation found the culprit, by id
        t["task_id"]: t
        for t in night_one["tasks"]
        if t["result"] and t["result"].get("quarantined")
    }
    assert entry["rollbacks"] == len(proved) >= 2
    assert (entry["site"], entry["environment"]) == (proved[entry["task_id"]]["site"], "live")
    assert [(q["name"], q["site"]) for q in night_one["quarantined"]] == [(BAD, entry["site"])]
    for row in check(cli("plan", "--offline", "--format", "json")).json():
        # both jobs update plugins: each shows the halt and holds the release back
        assert [(h["job_id"], h["run_id"]) for h in row["halted"]] == [(JOB, 1)], row
        assert [h["name"] for h in row["held_back"]] == [BAD], row


def the_next_night_holds_it_back_and_updates_the_rest(
    cli: Cli, fleet: SandboxProcess, canary: set[str]
) -> None:
    check(cli("trigger", JOB))  # the release is still bad: held back, it breaks nothing
    run = shown(cli, 2)
    assert run["status"] == "succeeded" and run["quarantined"] == []
    assert all(w["status"] == "ended" and w["done"] == w["targets"] for w in run["waves"])
    assert all(w["failed"] == w["rolled_back"] == 0 for w in run["waves"])
    assert canary_of(run) == canary  # the same sites lead every night
    for task in run["tasks"]:
        assert task["result"]["held_back"][BAD].startswith(f"{OFFERS[BAD][1]} quarantined")
        if task["site"] not in canary:  # the canary's sites got their good updates last night
            assert task["status"] == "succeeded", task
            assert sorted(task["result"]["updated"]) == GOOD
            assert "held back (quarantined): plugin-a" in task["message"]
    assert plugins(fleet) == {site: KEPT for site in plugins(fleet)}  # three good, not the bad
    assert all(env["broken"] is None for env in fleet.state().values())


def released_it_goes_through(cli: Cli, fleet: SandboxProcess, canary: set[str]) -> None:
    # The cause is found and fixed (the sandbox's rule goes): the operator releases the version.
    fleet.post("bad-release", {"name": BAD, "version": OFFERS[BAD][1], "effect": None})
    released = check(cli("quarantine", "release", BAD))
    assert released.out == f"released plugins {BAD} {OFFERS[BAD][1]}\n"
    check(cli("trigger", JOB))
    run = shown(cli, 3)
    assert run["status"] == "succeeded" and canary_of(run) == canary
    assert run["quarantined"] == [] and run["waves"][-1]["status"] == "ended"
    assert {t["status"] for t in run["tasks"]} == {"succeeded"}
    assert all(t["result"]["updated"] == [BAD] for t in run["tasks"])
    assert all(not t["result"].get("held_back") for t in run["tasks"])
    latest = {name: offered for name, (_, offered) in OFFERS.items()}
    assert plugins(fleet) == {site: latest for site in plugins(fleet)}
    assert all(env["broken"] is None for env in fleet.state().values())


def test_cancel_stops_a_night_going_wrong_with_nothing_lost(
    cli: Cli, fleet: SandboxProcess, tmp_path: Path
) -> None:
    log = tmp_path / "night.log"
    with log.open("w") as out:
        night = subprocess.Popen(
            [EXE, "trigger", "no-breaker"], cwd=cli.cwd, env=cli.env, stdout=out, stderr=out
        )
    try:
        wait_until(lambda: any(env["counters"] for env in fleet.state().values()))
        asked = check(cli("cancel", "--job", "no-breaker", "--reason", "plugin-a breaks sites"))
        found = re.match(r"run (\d+) \(job no-breaker\): cancel requested by \S+@", asked.out)
        assert found, asked.out
        assert night.wait(timeout=60) == 1
    finally:
        if night.poll() is None:
            night.kill()
    run_id = int(found.group(1))
    output = log.read_text()
    assert f"run {run_id}: cancelled" in output
    run = shown(cli, run_id)
    assert run["status"] == "cancelled" and run["cancel"]["reason"] == "plugin-a breaks sites"
    assert run["error"].startswith("cancelled by ")
    started = [t for t in run["tasks"] if t["started_at"]]
    assert 0 < len(started) < SITES
    noticed = noticed_at(output)
    for task in run["tasks"]:
        if not task["started_at"]:
            assert task["status"] == "skipped" and task["operations"] == [], task
            assert task["message"].startswith("not started: cancelled by "), task
            continue
        assert at(task["started_at"]) <= noticed + timedelta(seconds=SLACK_S), (task, noticed)
        assert task["status"] in ("rolled_back", "succeeded") and task["finished_at"], task
        assert {op["state"] for op in task["operations"]} == {"succeeded"}, task
    nothing_lost(fleet, run["tasks"])


def nothing_lost(fleet: SandboxProcess, tasks: list[dict[str, Any]]) -> None:
    """Every operation the sandbox accepted is in history and ended; no site is left broken,
    none keeps the bad release, and each site touched keeps one manual backup."""
    recorded = {f"{t['site']}/{t['environment']}": len(t["operations"]) for t in tasks}
    for key, env in fleet.state().items():
        counters = env["counters"]
        accepted = {k.removesuffix(":accepted"): n for k, n in counters.items() if ":acc" in k}
        assert sum(accepted.values()) == recorded.get(key, 0), (key, counters)
        assert all(counters.get(f"{kind}:done") == n for kind, n in accepted.items()), counters
        assert env["broken"] is None and env["effects"] == {}, key
        if counters:
            manual = [b for b in env["backups"] if b["type"] == "manual"]
            assert len(manual) == 1, (key, env["backups"])
    assert {versions[BAD] for versions in plugins(fleet).values()} == {BEFORE[BAD]}
