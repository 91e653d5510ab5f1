"""Slack commands as operators run them: `kinsta-scheduler run --http-port 0` in a subprocess on
the sandbox, a signed slash command over HTTP (signed with the host's clock, as Slack's own
would be), a stand-in for Slack's response_url, and `history --format json` afterwards. The
signing secret must appear nowhere: not in the log, not in any answer."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import pytest

from scheduler.secret import Secret
from scheduler.slack import signing
from tests.acceptance.conftest import Cli, Daemon, SandboxProcess, runs, use, wait_until

SECRET = "0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f"
JOBS = """version: 1
kinsta:
  rate_limits: {per_minute: 600}
  polling: {first_poll: 0.05s, max_interval: 0.2s}
notify:
  slack_commands:
    signing_secret: ${SLACK_SIGNING_SECRET}
    allow_users: [U0ALICE]
    allow_channels: [C0OPS]
    mutating: [clear-cache]
jobs: []
"""


@pytest.fixture
def response_url() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    posted: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posted.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/commands/T0/1/x", posted
    server.shutdown()
    server.server_close()


def _command(url: str, text: str, response_url: str, secret: str = SECRET) -> tuple[int, str]:
    body = urlencode({
        "command": "/kinsta",
        "text": text,
        "user_id": "U0ALICE",
        "user_name": "alice",
        "channel_id": "C0OPS",
        "trigger_id": str(time.monotonic_ns()),
        "response_url": response_url,
    }).encode()  # fmt: skip
    stamp = str(int(time.time()))
    headers = {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signing.signature(Secret(secret), stamp, body),
    }
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_a_signed_clear_cache_through_the_daemon(
    cli: Cli,
    quick_sandbox: SandboxProcess,
    daemons: list[Daemon],
    response_url: tuple[str, list[dict[str, Any]]],
) -> None:
    reply_to, posted = response_url
    site = sorted(quick_sandbox.state())[0].split("/")[0]
    cli.env["SLACK_SIGNING_SECRET"] = SECRET
    use(cli, quick_sandbox, JOBS)
    daemon = Daemon(cli, "--http-port", "0")
    daemons.append(daemon)
    url = daemon.wait_for(r"slack commands at (http://127\.0\.0\.1:\d+/slack/commands)").group(1)

    status, text = _command(url, f"clear-cache {site}", reply_to, secret="not-it")
    assert status == 401 and "bad Slack signature" in text
    status, text = _command(url, f"clear-cache {site}", reply_to)
    assert status == 200 and "asked to clear the cache" in json.loads(text)["text"]
    wait_until(lambda: len(posted) >= 1, timeout=20)
    assert "succeeded" in posted[0]["text"], posted
    counters = quick_sandbox.state()[f"{site}/live"]["counters"]
    assert counters.get("cache:clear:accepted") == 1
    assert daemon.stop() == 0

    (run,) = runs(cli)
    assert run["trigger"] == "slack" and run["requested_by"] == "slack:U0ALICE (alice)"
    assert run["job_id"] == f"clear_cache@{site}/live" and run["status"] == "succeeded"
    assert SECRET not in daemon.text()
