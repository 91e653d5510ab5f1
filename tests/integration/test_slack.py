"""Slack slash commands end to end: signed requests through the daemon's real HTTP server, a
daemon whose runner works on the sandbox, and a local stand-in for Slack's response_url. A
command that is allowed does its work (checked at the sandbox) and is a run in history with
trigger `slack` and the user; every refusal changes nothing. The request clock is fixed
(FakeClock), so the five-minute window is tested without waiting and on any date."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from click.testing import CliRunner

from scheduler import config as config_module
from scheduler.cli import cli
from scheduler.clock import SystemClock
from scheduler.daemon import Collaborators, Daemon
from scheduler.domain import Config, Polling, RateLimits, RunTrigger, Secret
from scheduler.events import Bus
from scheduler.history import HistoryStore, RunFilter
from scheduler.httpd import HttpServer, Routes
from scheduler.kinsta import KinstaClient, RateGovernor
from scheduler.metrics import Metrics, add_routes
from scheduler.notify import Dispatcher
from scheduler.runner import Runner
from scheduler.sandbox import DEFAULT_API_KEY, SandboxServer
from scheduler.slack import signing
from scheduler.slack.commands import Command, Invocation
from scheduler.slack.service import ACK_BUDGET_S, PATH, WORKING, SlashCommands
from scheduler.slack.work import MAX_PROGRESS_POSTS, PROGRESS_EVERY_S, Prepared, Work
from tests.conftest import FakeClock

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
FAST = Polling(first_poll_s=0.03, max_interval_s=0.1, not_found_grace_s=5, deadline_s=10)
JOBS = """version: 1
notify:
  slack_commands:
    signing_secret: ${SLACK_SIGNING_SECRET}
    allow_users: [U0ALICE, U0BOB]
    allow_channels: [C0OPS]
    mutating: [clear-cache, trigger]
    commands:
      trigger: {allow_users: [U0ALICE]}
jobs:
  - id: caches
    targets: {sites: ["*"]}
    actions: [clear_cache]
  - id: nightly
    schedule: {cron: "30 2 * * *", timezone: Europe/Amsterdam}
    actions: [clear_cache]
"""


class SlackStandIn:
    """Slack's side of response_url: keeps every message posted to it."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with stand_in._changed:
                    stand_in.messages.append(json.loads(body))
                    stand_in._changed.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/commands/T0/1/token"

    def wait_for(self, count: int, timeout_s: float = 15.0) -> list[dict[str, Any]]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.messages) >= count, timeout_s)
            return list(self.messages)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Slack:
    """Sends slash commands as Slack does, signed at the fixed request clock's time."""

    url: str
    response_url: str
    clock: FakeClock
    secret: str = SECRET
    sent: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def command(
        self, text: str, *, user: str = "U0ALICE", channel: str = "C0OPS", age_s: float = 0
    ) -> httpx.Response:
        body = urlencode({
            "command": "/kinsta",
            "text": text,
            "user_id": user,
            "user_name": "alice" if user == "U0ALICE" else "someone",
            "channel_id": channel,
            "channel_name": "ops",
            "team_id": "T0",
            "trigger_id": f"{len(self.sent)}.{time.monotonic_ns()}",  # Slack's: one per command
            "response_url": self.response_url,
        }).encode()  # fmt: skip
        stamp = str(int(self.clock.now().timestamp() - age_s))
        headers = {
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signing.signature(Secret(self.secret), stamp, body),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        self.sent.append((headers, body))
        return self.send(headers, body)

    def send(self, headers: dict[str, str], body: bytes) -> httpx.Response:
        return httpx.post(self.url, content=body, headers=headers, timeout=10)


@pytest.fixture
def stand_in() -> Iterator[SlackStandIn]:
    server = SlackStandIn()
    yield server
    server.close()


@pytest.fixture
def serve(
    sandbox: SandboxServer, store: HistoryStore, tmp_path: Path, stand_in: SlackStandIn
) -> Iterator[Callable[..., Slack]]:
    """A daemon on the sandbox with its HTTP server (metrics, health, Slack commands)."""
    clock = SystemClock()
    client = KinstaClient(
        sandbox.url, Secret(DEFAULT_API_KEY), RateGovernor(RateLimits(), clock), clock
    )
    stops: list[Callable[[], None]] = []

    def start(
        text: str = JOBS,
        *,
        progress_every_s: float = PROGRESS_EVERY_S,
        max_progress_posts: int = MAX_PROGRESS_POSTS,
        ack_budget_s: float = ACK_BUDGET_S,
        gate: threading.Event | None = None,
    ) -> Slack:
        path = tmp_path / "jobs.yaml"
        path.write_text(text)

        def load() -> Config:
            return config_module.load(path, {"SLACK_SIGNING_SECRET": SECRET})

        company = sandbox.sandbox.fleet.company_id
        runner = Runner(client, store, clock, FAST, company, started_by="test:1")
        parts = Collaborators(store, lambda job: runner, clock, load, path, cancel=runner.cancel)
        daemon = Daemon(load(), parts)
        daemon.start()
        request_clock = FakeClock()
        dispatcher = Dispatcher(clock, Bus().publish)
        work = (Work if gate is None else _gated(gate))(
            daemon,
            store,
            clock,
            progress_every_s=progress_every_s,
            max_progress_posts=max_progress_posts,
        )
        slack = SlashCommands(
            daemon, store, dispatcher, request_clock, work=work, ack_budget_s=ack_budget_s
        )
        routes = slack.add_routes(add_routes(Routes(), Metrics(), daemon.health))
        server = HttpServer(routes, "127.0.0.1", 0).start()
        stops.extend([lambda: daemon.shutdown(timeout_s=5), slack.close, server.stop])
        url = f"http://127.0.0.1:{server.port}{PATH}"
        return Slack(url, stand_in.url, request_clock)

    yield start
    for stop in stops:
        stop()
    client.close()


def _gated(gate: threading.Event) -> type[Work]:
    """Work whose quick part waits for the test to open the gate (a slow history, say)."""

    class Gated(Work):
        def prepare(self, command: Command, asked: Invocation) -> Prepared:
            assert gate.wait(10)
            return super().prepare(command, asked)

    return Gated


def _site(sandbox: SandboxServer, index: int = 0) -> str:
    return sandbox.sandbox.fleet.sites[index].name


def _effects(sandbox: SandboxServer) -> dict[str, dict[str, int]]:
    return sandbox.sandbox.fleet.counters()


def test_clear_cache_clears_one_environment_and_posts_the_result(
    serve: Callable[..., Slack],
    sandbox: SandboxServer,
    store: HistoryStore,
    stand_in: SlackStandIn,
    database_url: str,
) -> None:
    # The answer in time is this test's point, not the time (the slow path has its own test):
    # a loaded machine may take longer than Slack's three seconds to look the site up.
    slack = serve(ack_budget_s=30)
    site = _site(sandbox)
    response = slack.command(f"clear-cache {site}")
    assert response.status_code == 200
    ack = response.json()
    assert ack["response_type"] == "in_channel"
    assert f"<@U0ALICE> asked to clear the cache of {site}/live" in ack["text"]
    (posted,) = stand_in.wait_for(1)
    assert posted["response_type"] == "in_channel"
    assert f"(clear_cache on {site}/live) succeeded" in posted["text"], posted
    assert _effects(sandbox) == {f"{site}/live": {"cache:clear:accepted": 1, "cache:clear:done": 1}}
    (run,) = store.queries.list_runs(RunFilter())
    assert run.trigger is RunTrigger.SLACK and run.job_id == f"clear_cache@{site}/live"
    assert run.requested_by == "slack:U0ALICE (alice)" and run.started_by == "test:1"
    shown = CliRunner().invoke(cli, ["--database", database_url, "history", "--format", "json"])
    assert shown.exit_code == 0, shown.output
    (row,) = json.loads(shown.stdout)
    assert row["trigger"] == "slack" and row["requested_by"] == "slack:U0ALICE (alice)"
    assert row["status"] == "succeeded" and row["targets"] == [f"{site}/live"]


def _refusals(site: str) -> list[tuple[str, dict[str, Any], int, str]]:
    """(command, how it is sent, HTTP status, what the answer says)."""
    return [
        (f"clear-cache {site}", {"secret": "not-the-secret"}, 401, "bad Slack signature"),
        (f"clear-cache {site}", {"age_s": 301}, 401, "stale Slack request"),
        (f"clear-cache {site}", {"age_s": -301}, 401, "stale Slack request"),
        (
            f"clear-cache {site}",
            {"user": "U0MALLORY"},
            200,
            "you may not use `/kinsta clear-cache`",
        ),
        (f"clear-cache {site}", {"channel": "C0RANDOM"}, 200, "not enabled in this channel"),
        (f"trigger caches {site}", {"user": "U0BOB"}, 200, "you may not use `/kinsta trigger`"),
        (f"restart-php {site}", {}, 200, "`/kinsta restart-php` is turned off here"),
        ("clear-cache no-such-site", {}, 200, "No site named `no-such-site`"),
        (f"clear-cache {site} nowhere", {}, 200, f"{site} has no environment `nowhere`"),
        ("trigger no-such-job", {}, 200, "No job `no-such-job` in jobs.yaml"),
        ("reboot-everything now", {}, 200, "I don't know `reboot-everything`"),
        ("clear-cache", {}, 200, "Usage: `/kinsta clear-cache SITE [ENV]`"),
        ("clear-cache <!channel>", {}, 200, "`&lt;!channel&gt;` is not a name"),
    ]


def test_refusals_change_nothing(
    serve: Callable[..., Slack],
    sandbox: SandboxServer,
    store: HistoryStore,
    stand_in: SlackStandIn,
) -> None:
    slack = serve(ack_budget_s=30)  # the slow-answer path has its own test
    for text, how, status, says in _refusals(_site(sandbox)):
        sent = dict(how)
        slack.secret = sent.pop("secret", SECRET)
        response = slack.command(text, **sent)
        assert response.status_code == status, (text, how)
        body = response.json()["text"] if status == 200 else response.text
        assert says in body, (text, how, body)
        if status == 200:
            assert response.json()["response_type"] == "ephemeral"
        assert SECRET not in body
    time.sleep(0.3)  # a reply or run a refusal wrongly started would show by now
    assert store.queries.list_runs(RunFilter()) == []
    assert _effects(sandbox) == {}
    assert stand_in.messages == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_replayed_request_is_refused(
    serve: Callable[..., Slack], sandbox: SandboxServer, store: HistoryStore, stand_in: SlackStandIn
) -> None:
    slack = serve(ack_budget_s=30)  # the slow-answer path has its own test
    first = slack.command(f"clear-cache {_site(sandbox)}")
    assert first.status_code == 200
    stand_in.wait_for(1)
    again = slack.send(*slack.sent[0])
    assert again.status_code == 401 and "replayed" in again.text
    slack.clock.advance(60)  # a minute later, still inside the window
    assert slack.send(*slack.sent[0]).status_code == 401
    assert len(store.queries.list_runs(RunFilter())) == 1
    assert sum(c.get("cache:clear:accepted", 0) for c in _effects(sandbox).values()) == 1


def test_trigger_narrowed_to_a_site_runs_the_job_there_only(
    serve: Callable[..., Slack], sandbox: SandboxServer, store: HistoryStore, stand_in: SlackStandIn
) -> None:
    slack = serve(ack_budget_s=30)  # the slow-answer path has its own test
    site = _site(sandbox, 2)
    response = slack.command(f"trigger caches {site}")
    assert "asked to run caches on" in response.json()["text"]
    (posted,) = stand_in.wait_for(1)
    assert "succeeded" in posted["text"], posted
    assert set(_effects(sandbox)) == {f"{site}/live"}
    (run,) = store.queries.list_runs(RunFilter(job_id="caches"))
    assert run.trigger is RunTrigger.SLACK and run.targets == (f"{site}/live",)
    assert store.runs.last_slot("caches") is None  # an on-demand run is no slot


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_long_run_reports_progress_before_its_result(
    serve: Callable[..., Slack], sandbox: SandboxServer, stand_in: SlackStandIn
) -> None:
    slack = serve(
        JOBS.replace("mutating: [clear-cache, trigger]", "mutating: [restart-php]"),
        progress_every_s=0.02,
        max_progress_posts=2,
    )
    site = _site(sandbox)
    assert slack.command(f"restart-php {site} live").status_code == 200
    messages = stand_in.wait_for(3)
    assert "still running after" in messages[0]["text"], messages
    assert "(restart_php on" in messages[-1]["text"] and "succeeded" in messages[-1]["text"]
    assert len(messages) <= 3
    assert _effects(sandbox)[f"{site}/live"]["php:restart:accepted"] == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_reads_answer_from_history(
    serve: Callable[..., Slack], sandbox: SandboxServer, stand_in: SlackStandIn
) -> None:
    slack = serve(ack_budget_s=30)  # the slow-answer path has its own test
    site = _site(sandbox)
    slack.command(f"clear-cache {site}")
    stand_in.wait_for(1)
    slack.clock.advance(1)
    status = slack.command(f"status {site}").json()["text"]
    assert f"*{site}*" in status and "live: PHP" in status and "from Kinsta now" in status
    assert "live clear_cache: succeeded" in status
    history = slack.command(f"history {site} 3").json()["text"]
    assert f"clear_cache@{site}/live (slack by slack:U0ALICE (alice)): succeeded" in history
    upcoming = slack.command("next").json()["text"]
    assert "nightly: " in upcoming and "(Europe/Amsterdam)" in upcoming
    assert "Run only when triggered: caches" in upcoming
    help_text = slack.command("help", user="U0BOB").json()["text"]
    assert "clear-cache SITE [ENV]" in help_text and "trigger JOB" not in help_text
    assert "Turned off here: restart-php." in help_text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_answer_not_ready_in_time_follows_at_the_response_url(
    serve: Callable[..., Slack], sandbox: SandboxServer, store: HistoryStore, stand_in: SlackStandIn
) -> None:
    gate = threading.Event()
    slack = serve(ack_budget_s=0.2, gate=gate)  # Slack still hears within its 3 s
    site = _site(sandbox)
    assert slack.command(f"status {site}").json() == {"response_type": "ephemeral", "text": WORKING}
    assert slack.command(f"clear-cache {site}").json()["text"] == WORKING
    assert stand_in.messages == [] and store.queries.list_runs(RunFilter()) == []
    gate.set()
    messages = stand_in.wait_for(3)
    (status,) = [m for m in messages if f"*{site}*" in m["text"]]
    assert status["response_type"] == "ephemeral"
    (accepted,) = [m for m in messages if "asked to clear" in m["text"]]
    (result,) = [m for m in messages if f"(clear_cache on {site}/live)" in m["text"]]
    assert accepted["response_type"] == "in_channel"
    assert messages.index(accepted) < messages.index(result)
    assert "succeeded" in result["text"], result
    assert len(store.queries.list_runs(RunFilter())) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_without_slack_commands_the_endpoint_does_not_exist(
    serve: Callable[..., Slack], sandbox: SandboxServer, store: HistoryStore
) -> None:
    slack = serve(JOBS.split("notify:", maxsplit=1)[0] + "jobs:" + JOBS.split("jobs:")[1])
    response = slack.command(f"clear-cache {_site(sandbox)}")
    assert response.status_code == 404
    assert httpx.get(slack.url.replace(PATH, "/healthz"), timeout=5).status_code in (200, 503)
    assert store.queries.list_runs(RunFilter()) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_request_clock_decides_what_is_stale(
    serve: Callable[..., Slack], sandbox: SandboxServer
) -> None:
    """Freshness is judged by the injected clock, not the host's: a request signed 400 days
    before today is fresh to a clock that says so, and stale once that clock moves on."""
    slack = serve(ack_budget_s=30)  # the slow-answer path has its own test
    slack.clock.advance(-timedelta(days=400).total_seconds())
    assert slack.command(f"status {_site(sandbox)}").status_code == 200
    slack.clock.advance(301)
    stale = slack.command(f"status {_site(sandbox)}", age_s=301)
    assert stale.status_code == 401 and "stale" in stale.text
