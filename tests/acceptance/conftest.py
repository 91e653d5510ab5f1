"""Acceptance fixtures: the real `kinsta-scheduler` executable, in subprocesses."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import OPERATION_IDS

EXE = str(Path(sys.executable).with_name("kinsta-scheduler"))
SANDBOX_KEY = "acceptance-key-7f3a9c"
SANDBOX_PER_MINUTE = 600  # jobs.yaml files in these tests may use up to this
DATABASE_FILE = "kinsta-scheduler.db"  # the history beside jobs.yaml when none is named


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Cli:
    cwd: Path
    env: dict[str, str]

    def __call__(self, *args: str, timeout: float = 120) -> Result:
        done = subprocess.run(
            [EXE, *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [EXE, *args],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@dataclass
class SandboxProcess:
    url: str
    admin: str

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "stats")

    def state(self) -> dict[str, Any]:
        """Per "site/environment": plugins, themes, backups, php, domains, broken, counters."""
        return self._call("GET", "state")

    def post(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", endpoint, body)

    def page(self, domain: str, path: str = "/") -> tuple[int, str]:
        """What a browser gets from a fake site (the sandbox serves them by Host header)."""
        base = self.admin.removesuffix("/_sandbox")
        request = urllib.request.Request(f"{base}{path}", headers={"Host": domain})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def _call(
        self, method: str, endpoint: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        url = f"{self.admin}/{endpoint}"
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            answer: dict[str, Any] = json.load(response)
        return answer


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    # Not the harness's terminal size either (pytest-xdist sets COLUMNS=80): the CLI runs as
    # it does in a script or cron, with no terminal.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KINSTA_") and k not in ("COLUMNS", "LINES")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["KINSTA_SANDBOX_OPERATION_IDS"] = OPERATION_IDS  # `sandbox` and `--sandbox` alike
    return Cli(tmp_path, env)


def serve(
    cli: Cli,
    time_scale: float,
    sites: int = 5,
    seed: int = 3,
    per_minute: int = SANDBOX_PER_MINUTE,
    flags: tuple[str, ...] = (),
) -> Iterator[SandboxProcess]:
    """`kinsta-scheduler sandbox` on a free port; `flags` are more of its options."""
    process = cli.start(
        "sandbox",
        "--port",
        "0",
        "--sites",
        str(sites),
        "--seed",
        str(seed),
        "--time-scale",
        str(time_scale),
        "--per-minute",
        str(per_minute),
        "--api-key",
        SANDBOX_KEY,
        "--operation-ids",
        OPERATION_IDS,
        *flags,
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    match = re.search(r"at (http://127\.0\.0\.1:(\d+)/v2)", line)
    assert match, line
    try:
        yield SandboxProcess(match.group(1), f"http://127.0.0.1:{match.group(2)}/_sandbox")
    finally:  # also when a test using it as a context manager fails inside
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()


@pytest.fixture
def sandbox_process(cli: Cli) -> Iterator[SandboxProcess]:
    """`kinsta-scheduler sandbox` on a free loopback port, its operations 20x faster."""
    yield from serve(cli, 0.05)


@pytest.fixture
def quick_sandbox(cli: Cli) -> Iterator[SandboxProcess]:
    """The same, its operations 100x faster (site creation takes 1.8 s instead of 180 s, half to three times that)."""
    yield from serve(cli, 0.01)


class Daemon:
    """`kinsta-scheduler run` with its output in files (a pipe could fill up and block it)."""

    def __init__(
        self, cli: Cli, *args: str, name: str = "daemon", options: tuple[str, ...] = ()
    ) -> None:
        self.log = cli.cwd / f"{name}.log"
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [EXE, *options, "run", *args],
                cwd=cli.cwd,
                env=cli.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text())
            if found:
                return found
            assert self.process.poll() is None, self.text()[-3000:]
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} not seen:\n{self.text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait(timeout=10)


def use(cli: Cli, sandbox: SandboxProcess, jobs: str, database: str | None = None) -> None:
    (cli.cwd / "jobs.yaml").write_text(jobs)
    cli.env.update(
        KINSTA_API_URL=sandbox.url,
        KINSTA_API_KEY=SANDBOX_KEY,
        KINSTA_SCHEDULER_SITE_BASE_URL=sandbox.url.removesuffix("/v2"),
    )
    if database:
        cli.env["KINSTA_SCHEDULER_DATABASE_URL"] = database
    assert cli("db", "upgrade").code == 0


def runs(cli: Cli) -> list[dict[str, Any]]:
    result = cli("history", "--format", "json", "--limit", "1000")
    assert result.code == 0, result.err
    found: list[dict[str, Any]] = result.json()
    return found


def run_rows(cli: Cli) -> list[dict[str, Any]]:
    """The runs table read straight from the history the CLI uses (job_id, trigger, status):
    a cheap condition to poll, where `runs(cli)` starts a process (about a second of CPU) per
    look. What a test asserts still comes from `history`."""
    url = cli.env.get("KINSTA_SCHEDULER_DATABASE_URL") or f"sqlite:///{cli.cwd / DATABASE_FILE}"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT job_id, trigger, status FROM runs"))
            return [dict(row._mapping) for row in rows]
    except sa.exc.DBAPIError:  # no table yet, or locked by a writer for a moment: look again
        return []
    finally:
        engine.dispose()


def pending_plugin(state: dict[str, Any]) -> tuple[str, str]:
    """From the sandbox's state: a live environment with a plugin update on offer, as
    (site name, plugin), the first in name order."""
    for key, env in sorted(state.items()):
        site, environment = key.split("/")
        pending = sorted(n for n in env["updates"] if n in env["plugins"])
        if environment == "live" and pending:
            return site, pending[0]
    raise AssertionError("no plugin update in the seeded fleet")


def wait_until(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")
