"""The dashboard in a real browser, served by the real daemon on the sandbox: runs happen, every
page opens without a console error, the fleet's numbers match `sites` and the runs page's match
`history`, and links lead from the fleet to a run to an operation. Screenshots go to tmp_path."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.acceptance.conftest import Cli, Daemon, SandboxProcess, run_rows, use, wait_until
from tests.browser import Browser, browser  # noqa: F401 - the fixture

JOBS = """version: 1
daemon: {heartbeat: 0.3s, shutdown_timeout: 5s}
kinsta:
  rate_limits: {per_minute: 600}
  polling: {first_poll: 0.05s, max_interval: 0.2s}
jobs:
  - id: tick
    schedule: {every: 2s}
    catch_up: false
    targets: {sites: [%s]}
    actions: [clear_cache, inventory]
"""


def _json(cli: Cli, *args: str) -> Any:
    result = cli(*args, "--format", "json")
    assert result.code == 0, result.err
    return result.json()


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback
        return json.load(answer)


def _settled(cli: Cli) -> None:
    """Two runs succeeded, then the job is paused and nothing runs any more."""
    wait_until(lambda: sum(r["status"] == "succeeded" for r in run_rows(cli)) >= 2, timeout=60)
    assert cli("pause", "tick", "--reason", "screenshots").code == 0
    wait_until(lambda: all(r["status"] != "running" for r in run_rows(cli)), timeout=30)
    time.sleep(1.5)  # a slot being claimed while the pause was written is recorded by now


def test_every_page_in_the_browser(
    cli: Cli,
    quick_sandbox: SandboxProcess,
    daemons: list[Daemon],
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    sites = sorted({key.split("/")[0] for key in quick_sandbox.state()})[:2]
    use(cli, quick_sandbox, JOBS % ", ".join(f'"{s}"' for s in sites))
    daemon = Daemon(cli, "--http-port", "0")
    daemons.append(daemon)
    port = daemon.wait_for(r"metrics at http://127\.0\.0\.1:(\d+)/metrics").group(1)
    base = f"http://127.0.0.1:{port}"
    _settled(cli)
    shots = tmp_path / "shots"  # kept with the test's tmp_path, to look at when it fails

    expected = _json(cli, "sites")
    browser.open(base + "/")
    assert browser.console_errors() == []
    assert browser.find("#fleet-summary").get_attribute("data-count") == str(len(expected))
    for site in expected:
        row = browser.find(f'tr.site[data-site="{site["site"]}"]')
        assert row.get_attribute("data-actions") == str(len(site["actions"]))
        pending = sum(s["pending_updates"] for s in site["inventory"])
        assert row.get_attribute("data-pending") == str(pending)
    browser.screenshot(shots / "fleet.png")

    runs = _json(cli, "history", "--limit", "1000")
    browser.open(base + "/runs")
    assert browser.console_errors() == []
    # The paused job's slots go on being recorded `skipped`: the runs that ran are compared.
    for status in ("succeeded", "failed"):
        marks = browser.find_all(f'.lane[data-job="tick"] a.run[data-status="{status}"]')
        assert len(marks) == sum(r["status"] == status for r in runs), status
    browser.screenshot(shots / "runs.png")

    browser.open(base + "/")
    link = browser.find(f'tr.site[data-site="{sites[0]}"] a.latest-run')
    run_id = str(link.get_attribute("href")).rsplit("/", 1)[1]
    link.click()
    assert browser.url == f"{base}/runs/{run_id}"
    assert browser.console_errors() == []
    shown = _json(cli, "show", run_id)
    assert browser.find("#run").get_attribute("data-tasks") == str(len(shown["tasks"]))
    operation = browser.find("a.operation-link")
    anchor = str(operation.get_attribute("href")).split("#", 1)[1]
    operation.click()
    assert browser.url.endswith("#" + anchor)
    section = browser.find(f"section#{anchor}")
    assert section.get_attribute("data-operation") == operation.text
    assert section.get_attribute("data-state") == "succeeded"
    browser.screenshot(shots / "run.png")

    browser.open(base + "/schedule")
    assert browser.console_errors() == []
    assert browser.find('tr.job[data-job="tick"]').get_attribute("data-paused") == "yes"
    browser.screenshot(shots / "schedule.png")

    # The counts reach history every 10 s (scheduler.history.usage.FLUSH_S).
    wait_until(lambda: bool(_get_json(base + "/budget?format=json")["requests"]), timeout=30)
    browser.open(base + "/budget")
    assert browser.console_errors() == []
    assert int(str(browser.find("section.company").get_attribute("data-total"))) > 0
    browser.screenshot(shots / "budget.png")
    with urllib.request.urlopen(base + "/healthz", timeout=10) as answer:  # noqa: S310
        assert answer.status == 200
    assert _get_json(base + "/budget?format=json")["per_minute_limit"] == 600
    assert daemon.stop() == 0
