"""Fault injection (500, 502, 503 and 504, HTML or JSON, before or after the sandbox acted, on
polls or mutating requests, at random or on the next matching request) and the two ways of
making operation ids (issue 12, items 7 and 8). Real HTTP, raw where the client would hide what
came back."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from scheduler.sandbox import DEFAULT_API_KEY, Faults, SandboxOptions, SandboxServer
from scheduler.sandbox.state import SandboxEnvironment
from tests.conftest import FakeClock, checked_sandbox

serving = contextmanager(checked_sandbox)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    yield from checked_sandbox(time_scale=0.5)  # operations last seconds: polls see them run


@pytest.fixture
def http(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with _client(sandbox) as client:
        yield client


def _client(server: SandboxServer) -> httpx.Client:
    headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=5)


def admin(server: SandboxServer, endpoint: str, body: Any) -> httpx.Response:
    base = server.url.removesuffix("/v2")
    return httpx.post(f"{base}/_sandbox/{endpoint}", content=json.dumps(body), timeout=5)


def live(server: SandboxServer, index: int = 0) -> SandboxEnvironment:
    return server.sandbox.fleet.sites[index].environments[0]


def clear(http: httpx.Client, env: SandboxEnvironment) -> httpx.Response:
    return http.post("/sites/tools/clear-cache", json={"environment_id": env.id})


def assert_html_error(answer: httpx.Response, status: int, reason: str) -> None:
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("text/html")
    assert f"<title>{status} {reason}</title></head>\r\n" in answer.text
    assert answer.text.count("\r\n") >= 5
    assert "RateLimit-Remaining" not in answer.headers  # the proxy's answer, not Kinsta's


# --- item 7: the next matching request fails ------------------------------------------------------


def test_a_502_after_acting_hides_an_operation_that_really_started(
    sandbox: SandboxServer, http: httpx.Client
) -> None:
    env = live(sandbox)
    rule = {"status": 502, "method": "POST", "path": "/sites/tools/clear-cache"}
    assert admin(sandbox, "faults", {"next": [{**rule, "after_acting": True}]}).json() == {
        "ok": True
    }
    assert http.get(f"/sites/{env.site_id}/environments").status_code == 200  # not matching
    assert_html_error(clear(http, env), 502, "Bad Gateway")
    assert env.counters["cache:clear:accepted"] == 1  # Kinsta acted; the client cannot know
    assert clear(http, env).status_code == 202  # the rule struck once
    log = sandbox.sandbox.snapshot()["fault_log"]
    assert [(f["method"], f["path"], f["status"], f["after_acting"]) for f in log] == [
        ("POST", "/sites/tools/clear-cache", 502, True)
    ]


def test_a_504_before_acting_leaves_nothing_started(
    sandbox: SandboxServer, http: httpx.Client
) -> None:
    env = live(sandbox)
    admin(sandbox, "faults", {"next": [{"status": 504, "method": "mutating", "count": 2}]})
    assert http.get("/validate").status_code == 200  # a read: not a mutating request
    assert_html_error(clear(http, env), 504, "Gateway Time-out")
    body = {"environment_id": env.id}
    assert_html_error(http.post("/sites/tools/restart-php", json=body), 504, "Gateway Time-out")
    assert "cache:clear:accepted" not in env.counters
    assert "php:restart:accepted" not in env.counters
    assert clear(http, env).status_code == 202


def test_a_500_on_a_poll_while_the_operation_runs_and_after_it_finished() -> None:
    clock = FakeClock()
    with serving(clock, time_scale=1.0) as server, _client(server) as http:
        env = live(server)
        operation = clear(http, env).json()["operation_id"]
        clock.advance(2)  # past the 404 window, well before its end (5 to 30 s)
        rule = {"status": 500, "method": "polls", "body": "json", "after_acting": True}
        admin(server, "faults", {"next": [rule]})
        failed = http.get(f"/operations/{operation}")
        assert failed.status_code == 500
        assert failed.json() == {
            "message": "Error occurred while processing your request",
            "status": 500,
        }  # what a failed operation looks like, while this one runs on
        assert http.get(f"/operations/{operation}").status_code == 202
        clock.advance(60)  # past the longest a cache clear takes
        admin(server, "faults", {"next": [{"status": 500, "path": "/operations/*"}]})
        assert_html_error(http.get(f"/operations/{operation}"), 500, "Internal Server Error")
        assert http.get(f"/operations/{operation}").status_code == 200  # it had finished
        assert env.counters["cache:clear:done"] == 1


# --- item 7: random faults, chosen per status and per kind of request ------------------------------


def test_random_errors_on_polls_only_draw_every_chosen_status(sandbox: SandboxServer) -> None:
    sandbox.sandbox.faults.update({"error": 1.0, "statuses": [500, 502, 504], "only": "polls"})
    seen: Counter[int] = Counter()
    with _client(sandbox) as http:
        env = live(sandbox)
        operation = clear(http, env).json()["operation_id"]  # not a poll: no fault
        for _ in range(30):
            answer = http.get(f"/operations/{operation}")
            assert answer.headers["content-type"].startswith("text/html")
            seen[answer.status_code] += 1
        assert http.get("/validate").status_code == 200
    assert set(seen) == {500, 502, 504}
    assert sandbox.sandbox.snapshot()["faults"] == {"error": 30}


def test_random_errors_after_acting_on_mutating_requests(sandbox: SandboxServer) -> None:
    sandbox.sandbox.faults.update(
        {"error": 1.0, "statuses": "502", "after_acting": 1.0, "only": "mutating"}
    )
    env = live(sandbox)
    with _client(sandbox) as http:
        for _ in range(3):
            assert_html_error(clear(http, env), 502, "Bad Gateway")
        assert http.get(f"/sites/environments/{env.id}/backups").status_code == 200
    assert env.counters["cache:clear:accepted"] == 3


def test_a_503_keeps_its_json_body_and_any_status_can_have_either_body(
    sandbox: SandboxServer, http: httpx.Client
) -> None:
    admin(sandbox, "faults", {"next": [{"status": 503}, {"status": 502, "body": "json"}]})
    first, second = http.get("/validate"), http.get("/validate")
    assert first.json() == {"message": "Service Unavailable", "status": 503}
    assert second.json() == {"message": "Bad Gateway", "status": 502}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"error": 2}, "error must be a share between 0 and 1"),
        ({"error": 0.6, "drop": 0.6}, "add up to more than 1"),
        ({"statuses": [418]}, "status 418: use one of 500, 502, 503, 504"),
        ({"body": "xml"}, "body 'xml': use one of html, json"),
        ({"only": "sometimes"}, "method 'sometimes': use polls, mutating or one of GET"),
        ({"next": [{"method": "POST"}]}, "a rule of next is an object with keys status"),
        ({"next": [{"status": 502, "after_acting": "yes"}]}, "after_acting: 'yes' is not true"),
        ({"next": {"status": 502}}, "next is a list of rules"),
        ({"bogus": 1}, "unknown fault setting 'bogus'"),
        (["error", 1], "send a JSON object of fault settings"),
    ],
)
def test_bad_fault_settings_are_refused_with_the_reason(
    sandbox: SandboxServer, body: Any, problem: str
) -> None:
    answer = admin(sandbox, "faults", body)
    assert answer.status_code == 400 and problem in answer.json()["message"]
    assert sandbox.sandbox.faults == Faults()  # all or nothing: unchanged


# --- item 8: operation ids -------------------------------------------------------------------------


UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_operation_ids_are_fresh_per_call_by_default() -> None:
    with serving(time_scale=0.002, operation_ids="fresh") as server:
        assert SandboxOptions().operation_ids == "fresh"
        env = live(server)
        with _client(server) as http:
            ids = [clear(http, env).json()["operation_id"] for _ in range(2)]
            assert ids[0] != ids[1]
            for operation in ids:
                kind, suffix = operation[: len("cache:clear")], operation[len("cache:clear-") :]
                assert kind == "cache:clear" and UUID4.fullmatch(suffix)
                assert uuid.UUID(suffix).version == 4


def test_operation_ids_repeat_per_target_when_asked() -> None:
    with serving(time_scale=0.002, operation_ids="per-target") as server:
        env = live(server)
        with _client(server) as http:
            ids = {clear(http, env).json()["operation_id"] for _ in range(2)}
        assert ids == {f"cache:clear-{env.id}"}
