"""The API key, set to a recognisable value, appears nowhere: not in any command's output or
logs (debug level included), not in error messages for a wrong key, not in the history
database, not in the daemon's log, whatever faults happen on the way."""

from __future__ import annotations

import re
import sqlite3
import time

from tests.acceptance.conftest import EXE, Cli, Daemon, SandboxProcess

CANARY = "kinsta-canary-KEY-5b1d9e0c"


def test_the_api_key_never_leaks(cli: Cli, daemons: list[Daemon]) -> None:
    sandbox = cli.start(
        "sandbox", "--port", "0", "--sites", "3", "--time-scale", "0.01",
        "--per-minute", "600", "--api-key", CANARY,
    )  # fmt: skip
    assert sandbox.stderr is not None
    match = re.search(r"at (http://127\.0\.0\.1:(\d+)/v2)", sandbox.stderr.readline())
    assert match
    box = SandboxProcess(match.group(1), f"http://127.0.0.1:{match.group(2)}/_sandbox")
    try:
        (cli.cwd / "jobs.yaml").write_text(
            """version: 1
daemon: {heartbeat: 0.3s, shutdown_timeout: 5s}
kinsta:
  timeout: 1s
  rate_limits: {per_minute: 600}
  polling: {first_poll: 0.05s, max_interval: 0.2s}
jobs:
  - id: nightly
    schedule: {every: 2s}
    targets: {environment: all}
    actions: [backup, update_plugins, clear_cache, fetch_logs, inventory]
"""
        )
        cli.env.update(KINSTA_API_URL=box.url, KINSTA_API_KEY=CANARY)
        box.post("faults", {"error": 0.05, "drop": 0.03, "hang": 0.02, "hang_s": 1.5})
        outputs = []
        for args in (
            ("db", "upgrade"),
            ("validate",),
            ("--log-level", "debug", "trigger", "nightly"),
            ("--log-level", "debug", "plan"),
            ("history", "--tasks", "--format", "json", "--limit", "1000"),
            ("show", "1", "--format", "json"),
            ("sites", "--format", "json"),
            ("history", "governor"),
        ):
            result = cli(*args, timeout=180)
            outputs.append(result.out + result.err)
        daemon = Daemon(cli, options=("--log-level", "debug"))
        daemons.append(daemon)
        daemon.wait_for(r'"event": "run.finished"', timeout=60)
        assert daemon.stop() == 0
        outputs.append(daemon.text())

        cli.env["KINSTA_API_KEY"] = CANARY + "-wrong"  # a rejected key is not echoed either
        for args in (("trigger", "nightly"), ("--log-level", "debug", "validate")):
            result = cli(*args)
            outputs.append(result.out + result.err)
        cli.env["KINSTA_API_KEY"] = CANARY
        broken = cli("--database", "postgresql://nobody@127.0.0.1:1/none", "trigger", "nightly")
        assert broken.code == 2
        outputs.append(broken.out + broken.err)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
        sandbox.stdout.close()  # type: ignore[union-attr]
        sandbox.stderr.close()

    assert sum("HTTP 401" in text or "rejected" in text.lower() for text in outputs[-3:-1])
    for text in outputs:
        assert CANARY not in text
    database = sqlite3.connect(cli.cwd / "kinsta-scheduler.db")
    tables = [
        row[0] for row in database.execute("SELECT name FROM sqlite_master WHERE type='table'")
    ]
    for table in tables:
        for row in database.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - our own table names
            assert CANARY not in repr(row), table
    database.close()
    assert sum(len(text) for text in outputs) > 20_000  # there was plenty to leak into
    assert any("run 1:" in text for text in outputs) and time.time() > 0 and EXE


PASTED = "CANARY-KEY-123456"


def test_a_key_a_header_cannot_carry_is_refused_and_never_printed(
    cli: Cli, quick_sandbox: SandboxProcess
) -> None:
    """A key pasted with its line break (or with a curly quote) is a validation error, exit 2;
    before, httpx's "Illegal header value b'Bearer ...'" carried it to the terminal."""
    (cli.cwd / "jobs.yaml").write_text(
        "version: 1\njobs:\n  - id: j1\n    schedule: {every: 1h}\n    actions: [clear_cache]\n"
    )
    cli.env["KINSTA_API_URL"] = quick_sandbox.url
    for key in (PASTED + "\r", PASTED + "\n", PASTED + "\u2019"):
        cli.env["KINSTA_API_KEY"] = key
        for args in (("validate",), ("trigger", "j1"), ("run",), ("plan",)):
            result = cli("--log-level", "debug", *args, timeout=60)
            assert result.code == 2, (args, result.err)
            assert PASTED not in result.out + result.err, args
            assert "KINSTA_API_KEY: the API key" in result.err and "Traceback" not in result.err


def test_the_client_never_carries_a_header_value_into_an_error() -> None:
    import httpx
    import pytest

    from scheduler.clock import SystemClock
    from scheduler.domain import RateLimits, Secret
    from scheduler.errors import BadInputError, TransportError
    from scheduler.kinsta import KinstaClient, RateGovernor

    clock = SystemClock()
    with pytest.raises(BadInputError) as refused:
        KinstaClient(
            "http://127.0.0.1:9/v2", Secret(PASTED + "\r"), RateGovernor(RateLimits(), clock), clock
        )
    assert PASTED not in str(refused.value)

    def unwritable(request: httpx.Request) -> httpx.Response:
        raise httpx.LocalProtocolError(f"Illegal header value b'Bearer {PASTED}'")

    client = KinstaClient(
        "http://127.0.0.1:9/v2",
        Secret(PASTED),
        RateGovernor(RateLimits(), clock),
        clock,
        transport=httpx.MockTransport(unwritable),
    )
    with pytest.raises(TransportError) as failed:
        client.validate()
    client.close()
    assert PASTED not in str(failed.value) and "could not be written" in str(failed.value)
