"""The sandbox enforces Kinsta's four rate limits (per key, per IP, creation, logs) over real
HTTP, each refusal a 429 carrying the refusing bucket's headers, and RateLimit-Reset counts down
to the moment the window frees a slot (issue 12, items 1 and 5)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from scheduler.bootstrap import start_sandbox
from scheduler.config import parse
from scheduler.sandbox import DEFAULT_API_KEY, Sandbox, SandboxOptions, SandboxServer
from tests.conftest import FakeClock, checked_sandbox

serving = contextmanager(checked_sandbox)


def http(
    server: SandboxServer, key: str = DEFAULT_API_KEY, source: str | None = None
) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source) if source else None
    return httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {key}"},
        transport=transport,
        timeout=5,
    )


def create_plain_site(client: httpx.Client, company: str, n: int) -> httpx.Response:
    body = {"company": company, "display_name": f"Site {n}", "region": "us-central1"}
    return client.post("/sites/plain", json=body)


def assert_refused(answer: httpx.Response, limit: int, window_s: float) -> None:
    assert answer.status_code == 429
    assert answer.json() == {"status": 429, "message": "Too many requests, please try again later."}
    assert answer.headers["RateLimit-Limit"] == str(limit)
    assert answer.headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(answer.headers["Retry-After"]) <= window_s
    assert answer.headers["RateLimit-Reset"] == answer.headers["Retry-After"]


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """Kinsta's default limits, in their one-minute window."""
    yield from checked_sandbox(time_scale=0.002)


def test_a_sixth_creation_within_the_minute_is_refused(sandbox: SandboxServer) -> None:
    company = sandbox.sandbox.fleet.company_id
    with http(sandbox) as client:
        for n in range(5):
            assert create_plain_site(client, company, n).status_code == 202
        refused = create_plain_site(client, company, 5)
        assert_refused(refused, 5, 60)
        assert client.get("/sites", params={"company": company}).status_code == 200
    assert sandbox.sandbox.snapshot()["rate_limited_by"] == {"creation": 1}


def test_the_thirty_sixth_log_read_within_the_minute_is_refused(sandbox: SandboxServer) -> None:
    env = sandbox.sandbox.fleet.sites[0].environments[0]
    params = {"file_name": "error", "lines": "10"}
    with http(sandbox) as client:
        for _ in range(35):
            assert client.get(f"/sites/environments/{env.id}/logs", params=params).is_success
        refused = client.get(f"/sites/environments/{env.id}/logs", params=params)
        assert_refused(refused, 35, 60)
        assert client.get(f"/sites/environments/{env.id}/backups").status_code == 200
    assert sandbox.sandbox.snapshot()["rate_limited_by"] == {"logs": 1}


def test_the_per_ip_limit_counts_every_key_from_one_address() -> None:
    """Two companies' keys from 127.0.0.1 share its per-IP budget; 127.0.0.2 has its own."""
    with serving(companies=2, per_minute=8, per_ip_per_minute=10) as server:
        first, second = server.sandbox.options.keys()
        with http(server, first) as one, http(server, second) as two:
            for _ in range(6):
                assert one.get("/validate").status_code == 200
            for _ in range(4):
                assert two.get("/validate").status_code == 200
            assert_refused(two.get("/validate"), 10, 60)
        with http(server, second, source="127.0.0.2") as elsewhere:
            assert elsewhere.get("/validate").status_code == 200
        assert server.sandbox.snapshot()["rate_limited_by"] == {"ip": 1}


def test_the_key_limit_still_refuses_with_its_own_headers() -> None:
    with serving(per_minute=3) as server:
        with http(server) as client:
            for _ in range(3):
                assert client.get("/validate").status_code == 200
            assert_refused(client.get("/validate"), 3, 60)
        assert server.sandbox.snapshot()["rate_limited_by"] == {"key": 1}


def test_reset_is_the_time_until_the_oldest_request_leaves_the_window() -> None:
    """While quota remains too: 60 s after the first request, then counting down."""
    clock = FakeClock()
    sandbox = Sandbox(SandboxOptions(sites=1, per_minute=3), clock=clock)
    with SandboxServer(sandbox) as server, http(server) as client:
        first = client.get("/validate").headers
        assert (first["RateLimit-Remaining"], first["RateLimit-Reset"]) == ("2", "60")
        clock.advance(20)
        second = client.get("/validate").headers
        assert (second["RateLimit-Remaining"], second["RateLimit-Reset"]) == ("1", "40")
        clock.advance(39.5)
        third = client.get("/validate").headers
        assert (third["RateLimit-Remaining"], third["RateLimit-Reset"]) == ("0", "1")
        clock.advance(0.5)  # the first request leaves the window: one slot is free again
        fourth = client.get("/validate").headers
        assert (fourth["RateLimit-Remaining"], fourth["RateLimit-Reset"]) == ("0", "20")


def _limits(sandbox: Sandbox) -> dict[str, Any]:
    options = sandbox.options
    return {
        "per_minute": options.per_minute,
        "creation_per_minute": options.creation_per_minute,
        "logs_per_minute": options.logs_per_minute,
        "per_ip_per_minute": options.per_ip_per_minute,
        "window_s": options.window_s,
        "creation_endpoints": options.creation_endpoints,
    }


def test_the_sandbox_of_sandbox_flag_enforces_the_limits_of_jobs_yaml() -> None:
    text = """version: 1
kinsta:
  rate_limits:
    per_minute: 50
    creation_per_minute: 2
    logs_per_minute: 7
    per_ip_per_minute: 90
    window: 6s
    creation_endpoints: ["POST /sites/plain"]
jobs: []
"""
    config = parse(text, "jobs.yaml", {})
    server = start_sandbox(config)
    try:
        assert _limits(server.sandbox) == {
            "per_minute": 50,
            "creation_per_minute": 2,
            "logs_per_minute": 7,
            "per_ip_per_minute": 90,
            "window_s": 6.0,
            "creation_endpoints": ("POST /sites/plain",),
        }
        company = server.sandbox.fleet.company_id
        with http(server) as client:
            for n in range(2):
                assert create_plain_site(client, company, n).status_code == 202
            assert_refused(create_plain_site(client, company, 2), 2, 6)
    finally:
        server.stop()
