"""Client reports for real: a sandbox run (a safe update rolled back on one site, updates kept
on the others), then `report` through the real command line as JSON, HTML and PDF; the HTML
opened in a real headless browser (no console error, the sites, versions and three SVG charts
on the page, a screenshot), the PDF read back with poppler."""

from __future__ import annotations

import subprocess
from pathlib import Path

from scheduler.reports.html import CHART_TITLES
from scheduler.sandbox.wordpress import SITE_LABELS
from tests.acceptance.conftest import Cli, SandboxProcess, pending_plugin, use
from tests.browser import Browser, browser  # noqa: F401 - the fixture

JOBS = """version: 1
kinsta:
  rate_limits: {{per_minute: 600}}
  polling: {{first_poll: 0.05s, max_interval: 0.2s}}
report:
  title: Acme Agency maintenance
  accent: teal
jobs:
  - id: nightly
    targets: {{environment: live}}
    on_failure: continue
    actions:
      - inventory
      - backup
      - update_plugins: {{safe: true, isolate: false, verify: {{compare: false}}}}
      - inventory
"""


def test_a_report_after_a_sandbox_run(
    cli: Cli,
    quick_sandbox: SandboxProcess,
    browser: Browser,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    site, plugin = pending_plugin(quick_sandbox.state())
    quick_sandbox.post("break-on-update", {"name": plugin, "mode": "fatal"})
    use(cli, quick_sandbox, JOBS.format())
    ran = cli("trigger", "nightly", "--yes")
    assert ran.code == 1, ran.out + ran.err[-2000:]  # the rolled-back update fails the run

    doc = cli("report", "--since", "1d", "--format", "json").json()
    history = cli("history", "--tasks", "--since", "1d", "--limit", "1000", "--format", "json")
    tasks = history.json()
    assert doc["fleet"]["sites"] == len({t["site"] for t in tasks})
    rolled = [t for t in tasks if t["status"] == "rolled_back"]
    assert doc["fleet"]["rollbacks"] == len(rolled) >= 1
    broken = next(s for s in doc["sites"] if s["site"] == site)
    assert broken["rollbacks"][0]["reason"].startswith(rolled[0]["message"][:40])
    moved = [
        (s["site"], u["item"], u["before"], u["after"]) for s in doc["sites"] for u in s["updates"]
    ]
    assert moved and all(before != after for _, _, before, after in moved)
    assert all(s["versions"] and s["versions"][0]["php"]["end"] for s in doc["sites"])
    assert sum(d["requests"] for d in doc["fleet"]["per_day"]) > len(tasks)  # trigger's, recorded

    assert cli("report", "--since", "1d", "--out", "report.html").code == 0
    browser.open((cli.cwd / "report.html").as_uri())
    assert browser.console_errors() == []
    text = browser.text()
    assert "Acme Agency maintenance" in text
    for name, item, before, after in moved[:5]:
        assert name in text and item in text and f"{before} → {after}" in text
    charts = browser.find_all("svg.chart")
    assert len(charts) == 3 and browser.find_all("svg.chart rect[data-series]")
    assert [c.get_attribute("aria-label") for c in charts] == list(CHART_TITLES)
    assert browser.screenshot(tmp_path / "report.png").stat().st_size > 10_000

    made = cli("report", "--since", "1d", "--format", "pdf", "--out", "report.pdf")
    assert made.code == 0, made.err
    pdf = subprocess.run(
        ["pdftotext", str(cli.cwd / "report.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert site in pdf and "Outcomes per action" in pdf and moved[0][3] in pdf
    subprocess.run(["pdftoppm", "-r", "30", "-png", "-f", "1", "-l", "1", str(cli.cwd / "report.pdf"),
                    str(tmp_path / "page")], check=True)  # fmt: skip
    assert (tmp_path / "page-1.png").stat().st_size > 1000


def test_a_label_keeps_the_sites_whose_listing_carries_it(
    cli: Cli, quick_sandbox: SandboxProcess
) -> None:
    use(cli, quick_sandbox, JOBS.format().replace("safe: true, ", ""))
    assert cli("trigger", "nightly", "--yes").code == 0
    every = {s["site"] for s in cli("report", "--since", "1d", "--format", "json").json()["sites"]}
    found: dict[str, set[str]] = {}
    for label in SITE_LABELS:  # what the sandbox's sites may carry, 0 to 2 each
        done = cli("report", "--since", "1d", "--label", label.upper(), "--format", "json")
        if done.code == 0:
            found[label] = {s["site"] for s in done.json()["sites"]}
        else:
            assert done.code == 2 and "no site carries it" in done.err, done.err
    assert found and all(sites and sites <= every for sites in found.values())
