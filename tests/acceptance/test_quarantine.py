"""Quarantine through the real CLI, against a sandbox on loopback: a release that breaks the site
is rolled back on the canary and quarantined (the canary's good updates still applied); the
next night over the fleet holds it back and applies the others; `plan`, `sites` and `show` say
what is held back and why; `quarantine release` lets it through."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from scheduler.sandbox import DEFAULT_API_KEY, SandboxServer
from scheduler.sandbox.wordpress import Item
from scheduler.sandbox_values import SandboxRelease
from tests.acceptance.conftest import Cli
from tests.conftest import checked_sandbox

BAD = "elementor"
OFFERED = (
    ("akismet", "5.0.0", "5.0.1"),
    (BAD, "3.2.0", "3.3.0"),
    ("redirection", "1.0.0", "1.0.1"),
    ("wordfence", "7.0.0", "7.0.1"),
)
SITES = 4
PER_MINUTE = 600  # three nights in a minute: Kinsta's 120 would make them wait for budget


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """Every live environment offers the four updates; updating the bad one breaks the site."""
    for server in checked_sandbox(sites=SITES, seed=3, time_scale=0.002, per_minute=PER_MINUTE):
        for site in server.sandbox.fleet.sites:
            live = site.environments[0]
            live.plugins = {n: Item(n, n.title(), old, new) for n, old, new in OFFERED}
        server.sandbox.fleet.releases.add(SandboxRelease(BAD, None, "fatal"))
        yield server


def jobs(canary: str) -> str:
    safe = "{safe: true, verify: {contains: Powered by WordPress}}"
    return f"""version: 1
kinsta:
  rate_limits: {{per_minute: {PER_MINUTE}}}
  polling: {{first_poll: 0.02s, max_interval: 0.1s}}
jobs:
  - id: canary
    targets: {{sites: [{canary}], environment: live}}
    actions:
      - update_plugins: {safe}
  - id: fleet
    targets: {{environment: live}}
    actions:
      - update_plugins: {safe}
      - inventory
"""


def plugins(sandbox: SandboxServer) -> dict[str, dict[str, str]]:
    state = sandbox.sandbox.fleet.state()
    return {k.split("/")[0]: v["plugins"] for k, v in state.items() if k.endswith("/live")}


def check(result: Any, code: int = 0) -> Any:
    assert result.code == code, result.out + result.err[-3000:]
    return result


def test_a_rolled_back_release_is_quarantined_held_back_and_released(
    cli: Cli, sandbox: SandboxServer
) -> None:
    canary = sandbox.sandbox.fleet.sites[0].name
    (cli.cwd / "jobs.yaml").write_text(jobs(canary))
    cli.env.update(
        KINSTA_API_URL=sandbox.url,
        KINSTA_API_KEY=DEFAULT_API_KEY,
        KINSTA_SCHEDULER_SITE_BASE_URL=sandbox.url.removesuffix("/v2"),
    )
    check(cli("db", "upgrade"))

    # The canary: the bulk update breaks the site, is restored; isolation keeps the good three.
    assert "rolled_back" in check(cli("trigger", "canary"), 1).out
    assert plugins(sandbox)[canary] == {"akismet": "5.0.1", BAD: "3.2.0",
                                        "redirection": "1.0.1", "wordfence": "7.0.1"}  # fmt: skip
    (entry,) = check(cli("quarantine", "list", "--format", "json")).json()
    assert (entry["name"], entry["version"], entry["site"]) == (BAD, "3.3.0", canary)
    assert entry["run_id"] == 1 and "answered 500" in entry["reason"]
    shown = check(cli("show", "1")).out
    assert "step 4: elementor" in shown and "failed, restored" in shown
    plan = check(cli("plan", "--offline", "--format", "json")).json()
    assert all(row["held_back"][0]["name"] == BAD for row in plan)

    # The next night over the fleet: the bad version is held back everywhere, the rest applied.
    check(cli("trigger", "fleet"))
    for site, found in plugins(sandbox).items():
        assert found[BAD] == "3.2.0" and found["akismet"] == "5.0.1", site
    tasks = check(cli("show", "2", "--format", "json")).json()["tasks"]
    updates = [t for t in tasks if t["action"] == "update_plugins"]
    assert {t["status"] for t in updates} == {"succeeded", "skipped"}
    assert all(BAD in t["result"]["held_back"] for t in updates)
    assert "held back elementor: 3.3.0 quarantined" in check(cli("show", "2")).out
    sites = check(cli("sites", "--format", "json")).json()
    offers = [p for s in sites for i in s["inventory"] for p in i["plugins"] if p["name"] == BAD]
    assert len(offers) == SITES and all("quarantined" in p for p in offers)
    table = check(cli("sites")).out  # the reason shows without --format json too
    assert table.count(f"plugin {BAD} 3.2.0 -> 3.3.0 held back: 3.3.0 quarantined") == SITES

    # Released (the breakage was the sites', say): the next night takes it.
    sandbox.sandbox.fleet.releases.remove(BAD, None)
    assert check(cli("quarantine", "release", BAD)).out == f"released plugins {BAD} 3.3.0\n"
    check(cli("trigger", "fleet"))
    assert {found[BAD] for found in plugins(sandbox).values()} == {"3.3.0"}
    assert check(cli("quarantine", "release", BAD), 2).err.startswith("error: nothing")
