"""Notifications without a network: the pure policy decides what to send, channels format it,
dispatch retries on the injected clock (httpx's MockTransport stands in for the receivers)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx

from scheduler.domain import (
    CancelRequest,
    Job,
    Notify,
    Run,
    RunStatus,
    RunTrigger,
    Secret,
    TargetSelector,
    Task,
    TaskStatus,
    Webhook,
)
from scheduler.events import (
    Bus,
    Event,
    NotificationDelivered,
    RunFinished,
    RunStarted,
    SlotsMissed,
)
from scheduler.notify import (
    ATTEMPTS,
    BACKOFF_S,
    START_ATTEMPTS,
    Dispatcher,
    Heartbeat,
    JsonWebhook,
    Message,
    Notifier,
    SlackChannel,
    destination,
    failure_lines,
    policy,
    start_url,
)
from tests.conftest import FakeClock

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
SLACK = Secret("https://hooks.slack.test/secret-token")
JSON = Secret("https://example.test/hook?key=secret")
PING = Secret("https://hc.test/ping/secret")
SETTINGS = Notify(webhooks=(Webhook("slack", SLACK), Webhook("json", JSON)), heartbeat_url=PING)


def run(status: RunStatus, error: str | None = None) -> Run:
    return Run(7, "caches", RunTrigger.SCHEDULE, T0, T0, T0, status, error=error)


def task(site: str, status: TaskStatus, message: str | None = "HTTP 500") -> Task:
    return Task(1, 7, site, "live", "clear_cache", status, message=message)


FAILED = (
    task("a", TaskStatus.FAILED),
    task("b", TaskStatus.FAILED),
    task("c", TaskStatus.SUCCEEDED),
)


def test_one_line_per_failed_action_with_the_shared_reason() -> None:
    assert failure_lines(FAILED) == [
        "clear_cache failed on 2 environment(s): a/live, b/live: HTTP 500"
    ]
    many = [task(f"s{i}", TaskStatus.FAILED, f"reason {i}") for i in range(23)]
    (line,) = failure_lines(many)
    assert line.endswith("and 3 more") and "reason" not in line


def test_a_failed_run_makes_one_failure_message() -> None:
    message = policy.after_run(SETTINGS, run(RunStatus.FAILED), FAILED, None)
    assert message is not None and message.kind == "failure" and message.run_id == 7
    assert message.text.startswith("kinsta-scheduler: job caches run 7 failed\n• clear_cache")
    assert message.extra["status"] == "failed"
    assert [f["site"] for f in message.extra["failures"]] == ["a", "b"]


def test_a_cancelled_run_says_who_stopped_it_and_what_failed_before() -> None:
    why = "cancelled by ops@bastion at 2026-03-01T12:00:00Z: bad release (4 task(s) not started)"
    asked = CancelRequest(T0, "ops@bastion", "bad release")
    cancelled = replace(run(RunStatus.CANCELLED, why), cancel=asked)
    message = policy.after_run(SETTINGS, cancelled, FAILED, None)
    assert message is not None and message.kind == "cancelled"
    assert message.text.startswith(f"kinsta-scheduler: job caches run 7 {why}\n• clear_cache")
    assert message.extra["status"] == "cancelled" and message.extra["error"] == why
    assert message.extra["cancel"] == {
        "requested_at": T0.isoformat(),
        "requested_by": "ops@bastion",
        "reason": "bad release",
    }
    assert [f["site"] for f in message.extra["failures"]] == ["a", "b"]
    assert policy.heartbeat(SETTINGS, None, cancelled) is None  # not a successful night
    assert not policy.wants_previous(SETTINGS, cancelled)
    quiet = replace(SETTINGS, on=frozenset({"failure", "recovery", "missed"}))
    assert policy.after_run(quiet, cancelled, FAILED, None) is None


def test_a_halted_run_says_what_tripped_and_which_environments_it_touched() -> None:
    why = "halted: 2 of 2 target(s) done were rolled back (halt_after.rolled_back: 2)"
    canary = [
        replace(task(site, TaskStatus.ROLLED_BACK), action="update_plugins", started_at=T0)
        for site in ("canary-b", "canary-a")
    ]
    later = [task(f"later-{n}", TaskStatus.SKIPPED, "not started: " + why) for n in range(3)]
    tasks = canary + later
    message = policy.after_run(SETTINGS, run(RunStatus.HALTED, why), tasks, None)
    assert message is not None and message.kind == "halted"
    assert message.text.splitlines() == [
        f"kinsta-scheduler: job caches run 7 {why}",
        "• update_plugins failed on 2 environment(s): canary-b/live, canary-a/live: HTTP 500",
        "• touched 2 environment(s): canary-a/live, canary-b/live",
    ]
    assert message.extra["touched"] == ["canary-a/live", "canary-b/live"]
    assert message.extra["status"] == "halted" and message.extra["error"] == why
    assert "cancel" not in message.extra
    halted = run(RunStatus.HALTED, why)
    assert policy.heartbeat(SETTINGS, None, halted) is None  # not a successful night
    quiet = replace(SETTINGS, on=frozenset({"failure", "cancelled"}))
    assert policy.after_run(quiet, halted, tasks, None) is None


def test_recovery_only_after_a_failure_and_only_when_asked() -> None:
    succeeded = run(RunStatus.SUCCEEDED)
    assert policy.wants_previous(SETTINGS, succeeded)
    recovered = policy.after_run(SETTINGS, succeeded, (), RunStatus.FAILED)
    assert recovered is not None and recovered.kind == "recovery"
    assert recovered.extra == {"run_id": 7, "status": "succeeded", "previous_status": "failed"}
    assert policy.after_run(SETTINGS, succeeded, (), RunStatus.SUCCEEDED) is None
    only_failures = replace(SETTINGS, on=frozenset({"failure"}))
    assert not policy.wants_previous(only_failures, succeeded)
    assert policy.after_run(only_failures, succeeded, (), RunStatus.FAILED) is None
    assert policy.after_run(only_failures, run(RunStatus.SKIPPED), (), None) is None


def test_heartbeat_after_success_prefers_the_jobs_own_url() -> None:
    own = Secret("https://hc.test/ping/own")
    job = Job("caches", None, TargetSelector(), (), heartbeat_url=own)
    assert policy.heartbeat(SETTINGS, None, run(RunStatus.SUCCEEDED)) == (
        PING,
        Message("heartbeat", "caches", 7, ""),
    )
    found = policy.heartbeat(SETTINGS, job, run(RunStatus.SUCCEEDED))
    assert found is not None and found[0] == own
    assert policy.heartbeat(SETTINGS, None, run(RunStatus.FAILED)) is None


def test_missed_slots_name_the_latest_and_list_the_last_twenty() -> None:
    slots = [T0 + timedelta(hours=i) for i in range(25)]
    message = policy.after_missed(SETTINGS, "caches", slots, "the daemon was down")
    assert message is not None and message.run_id is None
    assert "missed 25 slot(s), the latest 2026-03-02T12:00:00+00:00" in message.text
    assert len(message.extra["missed"]) == 20
    assert policy.after_missed(SETTINGS, "caches", [], "x") is None
    assert policy.after_missed(replace(SETTINGS, on=frozenset()), "caches", slots, "x") is None


def test_channels_format_their_own_requests() -> None:
    message = Message("failure", "caches", 7, "text", {"run_id": 7})
    assert SlackChannel(SLACK).request(message).json == {"text": "text"}
    assert JsonWebhook(JSON).request(message).json == {
        "event": "failure",
        "job_id": "caches",
        "text": "text",
        "run_id": 7,
    }
    ping = Heartbeat(PING).request(message)
    assert (ping.method, ping.json) == ("GET", None)
    assert destination(JSON.reveal()) == "https://example.test"


def dispatcher(
    handler: Callable[[httpx.Request], httpx.Response], clock: FakeClock, heard: list[Event]
) -> Dispatcher:
    return Dispatcher(clock, heard.append, transport=httpx.MockTransport(handler))


def test_delivery_retries_on_the_clock_then_records_the_failure() -> None:
    clock, heard, calls = FakeClock(), list[Event](), list[httpx.Request]()

    def unavailable(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503)

    record = dispatcher(unavailable, clock, heard).deliver(
        SlackChannel(SLACK), Message("failure", "caches", 7, "text")
    )
    assert len(calls) == ATTEMPTS and clock.slept == list(BACKOFF_S)
    assert (record.ok, record.detail, record.channel) == (False, "HTTP 503", "slack")
    assert record.destination == "https://hooks.slack.test"  # never the token
    assert heard == [NotificationDelivered(record)]


def test_a_refusal_is_final_and_a_success_is_recorded() -> None:
    clock, heard = FakeClock(), list[Event]()
    refused = dispatcher(lambda r: httpx.Response(404), clock, heard)
    record = refused.deliver(JsonWebhook(JSON), Message("missed", "caches", None, "text"))
    assert (record.ok, record.detail, clock.slept) == (False, "HTTP 404", [])
    ok = dispatcher(lambda r: httpx.Response(204), clock, heard)
    assert ok.deliver(Heartbeat(PING), Message("heartbeat", "caches", 7, "")).ok


def test_a_transport_error_is_retried() -> None:
    clock, heard, calls = FakeClock(), list[Event](), list[httpx.Request]()

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200)

    record = dispatcher(flaky, clock, heard).deliver(
        SlackChannel(SLACK), Message("failure", "caches", 7, "text")
    )
    assert record.ok and clock.slept == [BACKOFF_S[0]]


class Outcomes:
    def __init__(self, previous: RunStatus | None) -> None:
        self.previous = previous
        self.asked = 0

    def previous_outcome(self, job_id: str, before_run_id: int) -> RunStatus | None:
        self.asked += 1
        return self.previous


def test_the_notifier_hears_the_bus_and_delivers_on_every_channel() -> None:
    clock, bus, sent = FakeClock(), Bus(), []
    delivered: list[NotificationDelivered] = []
    bus.subscribe(NotificationDelivered, delivered.append)

    def receiver(request: httpx.Request) -> httpx.Response:
        sent.append((request.method, request.url.host))
        return httpx.Response(200)

    notifier = Notifier(
        SETTINGS,
        Outcomes(RunStatus.FAILED),
        Dispatcher(clock, bus.publish, transport=httpx.MockTransport(receiver)),
    )
    notifier.subscribe(bus)
    bus.publish(RunFinished(None, run(RunStatus.FAILED), FAILED))
    bus.publish(RunFinished(None, run(RunStatus.SUCCEEDED), ()))
    bus.publish(SlotsMissed("caches", (T0,), "the daemon was down"))
    notifier.close()
    kinds = [(d.record.kind, d.record.channel) for d in delivered]
    assert kinds == [
        ("failure", "slack"),
        ("failure", "json"),
        ("heartbeat", "heartbeat"),
        ("recovery", "slack"),
        ("recovery", "json"),
        ("missed", "slack"),
        ("missed", "json"),
    ]
    assert sent[2] == ("GET", "hc.test")


def test_each_job_pings_its_own_heartbeat_and_the_others_the_default_one() -> None:
    own = Secret("https://hc.test/ping/own")
    mine = Job("mine", None, TargetSelector(), (), heartbeat_url=own)
    other = Job("other", None, TargetSelector(), ())
    assert policy.heartbeat_url(SETTINGS, mine) == own  # never the default one
    assert policy.heartbeat_url(SETTINGS, other) == PING
    assert policy.heartbeat_url(SETTINGS, None) == PING  # a job jobs.yaml no longer has
    assert policy.heartbeat_url(replace(SETTINGS, heartbeat_url=None), other) is None
    assert policy.heartbeat_url(replace(SETTINGS, heartbeat_url=None), mine) == own


def test_a_run_start_pings_the_start_url_of_the_jobs_heartbeat() -> None:
    own = Job("caches", None, TargetSelector(), (), heartbeat_url=Secret("https://hc.test/own"))
    started = run(RunStatus.RUNNING)
    found = policy.started(SETTINGS, own, started)
    assert found == (own.heartbeat_url, Message("start", "caches", 7, ""))
    assert policy.started(replace(SETTINGS, heartbeat_start=None), own, started) is None
    bare = Job("caches", None, TargetSelector(), ())
    assert policy.started(replace(SETTINGS, heartbeat_url=None), bare, started) is None


def test_the_start_url_follows_healthchecks_or_the_suffix_given() -> None:
    assert start_url("https://hc-ping.com/abc", "/start") == "https://hc-ping.com/abc/start"
    assert start_url("https://hc-ping.com/abc/", "/start") == "https://hc-ping.com/abc/start"
    assert start_url("https://hc.test/p?rid=1", "/start") == "https://hc.test/p/start?rid=1"
    assert start_url("https://cronitor.link/p/k/j", "?state=run") == (
        "https://cronitor.link/p/k/j?state=run"
    )
    assert start_url("https://x.test/p?a=1", "?state=run") == "https://x.test/p?a=1&state=run"
    start = Heartbeat(PING, "/start").request(Message("start", "caches", 7, ""))
    assert (start.method, start.url.reveal()) == ("GET", "https://hc.test/ping/secret/start")
    done = Heartbeat(PING, "/start").request(Message("heartbeat", "caches", 7, ""))
    assert done.url == PING


def test_a_start_ping_is_tried_once_so_a_run_never_waits_for_retries() -> None:
    clock, bus, calls = FakeClock(), Bus(), list[httpx.Request]()
    delivered: list[NotificationDelivered] = []
    bus.subscribe(NotificationDelivered, delivered.append)

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503)

    notifier = Notifier(
        SETTINGS,
        Outcomes(None),
        Dispatcher(clock, bus.publish, transport=httpx.MockTransport(down)),
    )
    notifier.subscribe(bus)
    job = Job("caches", None, TargetSelector(), ())
    bus.publish(RunStarted(job, run(RunStatus.RUNNING)))
    notifier.close()
    assert [str(c.url) for c in calls] == ["https://hc.test/ping/secret/start"]
    assert START_ATTEMPTS == 1 and clock.slept == []
    (record,) = [d.record for d in delivered]
    assert (record.kind, record.channel, record.ok, record.detail) == (
        "start",
        "heartbeat",
        False,
        "HTTP 503",
    )
