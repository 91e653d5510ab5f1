"""`make screenshots`: the README's pictures of the dashboard and of a client report, made from
the sandbox by the real CLI and the real daemon, so they show what the code does today.

    python -m tests.screenshots --out docs

Starts `kinsta-scheduler sandbox` (eight sites, operations 200 times faster than Kinsta's,
every update of `elementor` breaking the homepage so a safe update rolls it back), runs an
on-demand maintenance job once (backup, safe plugin updates, theme updates, inventory), lets
the daemon run a cache job twice with its dashboard on, then photographs each page in Debian's
chromium and turns the first page of a PDF report into a PNG with pdftoppm. The acceptance
suite runs the same into a temporary directory (tests/acceptance/test_screenshots.py)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.acceptance.conftest import Cli, Daemon, SandboxProcess, run_rows, serve, use, wait_until
from tests.browser import Browser
from tests.conftest import OPERATION_IDS

PAGES = ("fleet", "runs", "run", "schedule", "budget")
JOBS = """version: 1
timezone: Europe/Amsterdam
daemon: {heartbeat: 0.3s, shutdown_timeout: 5s}
kinsta:
  rate_limits: {per_minute: 600, logs_per_minute: 600}
  polling: {first_poll: 0.05s, max_interval: 0.3s}
report: {title: "Maintenance report: Example Agency", accent: "#0b7285"}
jobs:
  - id: hourly-cache-clear
    schedule: {every: 3s}
    catch_up: false
    targets: {sites: ["*"], environment: live}
    actions: [clear_cache]
  - id: sunday-maintenance
    schedule: {cron: "0 3 * * 0"}
    targets: {sites: ["*"], environment: live}
    actions:
      - backup: {tag: weekly}
      - update_plugins: {safe: true}
      - update_themes
      - clear_cache
      - inventory
"""


def _cli(workdir: Path) -> Cli:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KINSTA_") and k not in ("COLUMNS", "LINES")
    }
    env.update(PYTHONUNBUFFERED="1", KINSTA_SANDBOX_OPERATION_IDS=OPERATION_IDS)
    return Cli(workdir, env)


def _check(cli: Cli, *args: str, codes: tuple[int, ...] = (0,)) -> str:
    result = cli(*args, timeout=300)
    if result.code not in codes:
        raise SystemExit(f"kinsta-scheduler {' '.join(args)}: exit {result.code}\n{result.err}")
    return result.out


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback
        return json.load(answer)


@contextlib.contextmanager
def _sandbox(cli: Cli) -> Iterator[SandboxProcess]:
    yield from serve(cli, 0.005, sites=8, seed=7, flags=("--bad-release", "elementor:fatal"))


def _photograph(browser: Browser, base: str, cli: Cli, out: Path) -> list[Path]:
    runs = json.loads(_check(cli, "history", "--job", "sunday-maintenance", "--format", "json"))
    urls = {
        "fleet": "/",
        "runs": "/runs",
        "run": f"/runs/{runs[0]['run_id']}",
        "schedule": "/schedule",
        "budget": "/budget",
    }
    shots = []
    for name in PAGES:
        browser.open(base + urls[name])
        errors = browser.console_errors()
        if errors:
            raise SystemExit(f"{urls[name]}: console errors {errors}")
        shots.append(browser.screenshot(out / f"dashboard-{name}.png", max_height=1600))
    return shots


def _ticks(cli: Cli) -> int:
    return sum(r["job_id"] == "hourly-cache-clear" for r in run_rows(cli))


def _report(cli: Cli, out: Path) -> Path:
    pdf = cli.cwd / "report.pdf"
    _check(cli, "report", "--since", "30d", "--format", "pdf", "--out", str(pdf))
    stem = cli.cwd / "report-page"
    subprocess.run(
        ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(stem)],
        check=True,
    )
    target = out / "report.png"
    target.write_bytes(stem.with_suffix(".png").read_bytes())
    return target


def make(out: Path) -> list[Path]:
    """Every picture, written to `out`; returns their paths."""

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ks-screenshots-") as workdir:
        cli = _cli(Path(workdir))
        with _sandbox(cli) as sandbox:
            use(cli, sandbox, JOBS)
            # One maintenance night on demand (some updates are rolled back: exit 1), then the
            # daemon's cache job twice, paused afterwards so the pages hold still.
            _check(cli, "trigger", "sunday-maintenance", "--yes", codes=(0, 1))
            daemon = Daemon(cli, "--http-port", "0")
            try:
                port = daemon.wait_for(r"metrics at http://127\.0\.0\.1:(\d+)/metrics").group(1)
                base = f"http://127.0.0.1:{port}"
                wait_until(lambda: _ticks(cli) >= 2, timeout=60)
                _check(cli, "pause", "hourly-cache-clear", "--reason", "holding still for pictures")
                # Requests per minute reach history every 10 s.
                wait_until(lambda: bool(_get_json(base + "/budget?format=json")["requests"]), 30)
                time.sleep(1)
                browser = Browser(width=1280, height=800)
                try:
                    shots = _photograph(browser, base, cli, out)
                finally:
                    browser.close()
            finally:
                daemon.stop()
            shots.append(_report(cli, out))
    return shots


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    for path in make(args.out):
        print(f"{path} ({path.stat().st_size // 1024} KiB)")  # noqa: T201


if __name__ == "__main__":
    main()
