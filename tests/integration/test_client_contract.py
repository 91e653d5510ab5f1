"""Every client method against the sandbox over real HTTP: the request validates against the
spec (the sandbox counts violations), the response validates too, and it parses."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from scheduler.clock import Clock, SystemClock
from scheduler.domain import OperationState, Polling, RateLimits, Secret
from scheduler.errors import (
    AuthenticationError,
    KinstaAPIError,
    NotFoundAPIError,
    ResponseFormatError,
    TransportError,
)
from scheduler.kinsta import KinstaClient, RateGovernor
from scheduler.kinsta.operations import wait_for_operation
from scheduler.sandbox import DEFAULT_API_KEY, SandboxServer
from tests.conftest import OPERATION_IDS, FakeClock, checked_sandbox

UUID4 = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
FAST = Polling(first_poll_s=0.05, max_interval_s=0.2, not_found_grace_s=5, deadline_s=10)


MakeClient = Callable[..., KinstaClient]


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    made: list[KinstaClient] = []

    def make(
        url: str,
        key: str = DEFAULT_API_KEY,
        transport: httpx.BaseTransport | None = None,
        clock: Clock | None = None,
    ) -> KinstaClient:
        clock = clock or SystemClock()
        client = KinstaClient(
            url, Secret(key), RateGovernor(RateLimits(), clock), clock, transport=transport
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(sandbox: SandboxServer, make_client: MakeClient) -> KinstaClient:
    """Requests and responses are checked against the spec by the `sandbox` fixture."""
    return make_client(sandbox.url)


def test_validate_discovers_the_company(client: KinstaClient, sandbox: SandboxServer) -> None:
    info = client.validate()
    assert info.company == sandbox.sandbox.fleet.company_id and info.status == "active"


def test_list_sites_with_and_without_environments(
    client: KinstaClient, sandbox: SandboxServer
) -> None:
    company = sandbox.sandbox.fleet.company_id
    bare = client.sites.list(company)
    full = client.sites.list(company, include_environments=True)
    assert len(bare) == len(full) == 6
    assert bare[0].environments == [] and full[0].environments[0].name == "live"
    assert full[0].environments[0].primary_domain is not None


def test_site_environments(client: KinstaClient, sandbox: SandboxServer) -> None:
    site = sandbox.sandbox.fleet.sites[0]
    envs = client.environments.list(site.id)
    assert [e.id for e in envs] == [e.id for e in site.environments]


@pytest.mark.parametrize(
    ("method", "kind"), [("clear_cache", "cache:clear"), ("restart_php", "php:restart")]
)
def test_tool_operations_run_to_success(
    client: KinstaClient, sandbox: SandboxServer, method: str, kind: str
) -> None:
    env = sandbox.sandbox.fleet.sites[1].environments[0]
    accepted = getattr(client.tools, method)(env.id)
    if OPERATION_IDS == "per-target":
        assert accepted.operation_id == f"{kind}-{env.id}"
    else:  # fresh: <kind>-<uuid4>, as the spec's examples show
        assert re.fullmatch(f"{re.escape(kind)}-{UUID4}", accepted.operation_id)
    result = wait_for_operation(client, accepted.operation_id, FAST, SystemClock())
    assert result.state is OperationState.SUCCEEDED
    assert (
        sandbox.sandbox.fleet.counters()[f"{sandbox.sandbox.fleet.sites[1].name}/live"][
            f"{kind}:done"
        ]
        == 1
    )


def test_a_failed_operation_is_reported_failed(
    client: KinstaClient, sandbox: SandboxServer
) -> None:
    sandbox.sandbox.fleet.fail_next["cache:clear"] = 1
    env = sandbox.sandbox.fleet.sites[0].environments[0]
    result = wait_for_operation(
        client, client.tools.clear_cache(env.id).operation_id, FAST, SystemClock()
    )
    assert result.state is OperationState.FAILED and result.http_status == 500


@pytest.mark.parametrize("mode", ["fresh", "per-target"])
def test_operation_ids_repeat_per_target_only_when_the_sandbox_says_so(
    make_client: MakeClient, mode: str
) -> None:
    with contextmanager(checked_sandbox)(operation_ids=mode) as sandbox:
        client = make_client(sandbox.url)
        env = sandbox.sandbox.fleet.sites[0].environments[0]
        first, second = (client.tools.clear_cache(env.id).operation_id for _ in range(2))
        assert (first == second) is (mode == "per-target")


def test_unknown_site_is_a_typed_not_found(client: KinstaClient) -> None:
    with pytest.raises(NotFoundAPIError) as caught:
        client.environments.list("00000000-0000-4000-8000-000000000000")
    assert caught.value.status == 404 and caught.value.path.startswith("/sites/")


def test_wrong_key_is_an_authentication_error_without_the_key(
    sandbox: SandboxServer, make_client: MakeClient
) -> None:
    client = make_client(sandbox.url, key="wrong-key-abcdef")
    with pytest.raises(AuthenticationError) as caught:
        client.validate()
    assert "wrong-key-abcdef" not in str(caught.value)
    assert (
        str(caught.value)
        == "GET /validate: HTTP 401: No or invalid API key provided to the request"
    )


def test_a_body_that_is_not_json_is_a_format_error(make_client: MakeClient) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text="<html>oops</html>"))
    client = make_client("https://api.example.test/v2", transport=transport)
    with pytest.raises(ResponseFormatError, match="GET /v2/validate: HTTP 200 body is not JSON"):
        client.validate()


def test_missing_fields_are_a_format_error(make_client: MakeClient) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"company": {}}))
    client = make_client("https://api.example.test/v2", transport=transport)
    with pytest.raises(ResponseFormatError, match=r"company\.sites: Field required"):
        client.sites.list("c")


def test_connection_refused_is_not_sent_and_retried(make_client: MakeClient) -> None:
    calls = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        raise httpx.ConnectError("refused", request=request)

    # Four backoffs of up to 0.5, 1, 2 and 4 s: on a clock that moves when slept on.
    client = make_client(
        "https://api.example.test/v2", transport=httpx.MockTransport(refuse), clock=FakeClock()
    )
    with pytest.raises(TransportError) as caught:
        client.tools.clear_cache("env")
    assert caught.value.sent is False and len(calls) == 5  # never reached Kinsta: safe to retry


def test_a_mutating_call_that_may_have_arrived_is_not_repeated(make_client: MakeClient) -> None:
    calls = []

    def time_out(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        raise httpx.ReadTimeout("slow", request=request)

    client = make_client("https://api.example.test/v2", transport=httpx.MockTransport(time_out))
    with pytest.raises(TransportError) as caught:
        client.tools.clear_cache("env")
    assert caught.value.sent is True and calls == ["POST"]


def test_reads_are_retried_on_server_errors(make_client: MakeClient) -> None:
    answers = [httpx.Response(502, json={"message": "bad gateway", "status": 502})] * 2 + [
        httpx.Response(
            200, json={"name": "k", "company": "c", "status": "active", "expires_at": None}
        )
    ]
    client = make_client(
        "https://api.example.test/v2", transport=httpx.MockTransport(lambda r: answers.pop(0))
    )
    assert client.validate().company == "c"


def test_a_429_pauses_and_retries_after_retry_after(make_client: MakeClient) -> None:
    answers = [
        httpx.Response(
            429,
            json={"status": 429, "message": "Too many requests, please try again later."},
            headers={"Retry-After": "0.2"},
        ),
        httpx.Response(202, json={"operation_id": "cache:clear-e", "message": "ok", "status": 202}),
    ]
    client = make_client(
        "https://api.example.test/v2", transport=httpx.MockTransport(lambda r: answers.pop(0))
    )
    assert client.tools.clear_cache("e").operation_id == "cache:clear-e"


def test_only_a_429_status_pauses_the_key(make_client: MakeClient) -> None:
    """Issue 11 item 21: the words "too many requests" in a body are not a 429. A 200 is an
    answer, a 400 is a rejection (not retried); neither pauses anyone."""
    validated = {"name": "k", "company": "c", "status": "active", "expires_at": None}
    answers = [
        httpx.Response(200, json={**validated, "message": "Too many requests? Not here."}),
        httpx.Response(400, json={"status": 400, "message": "Too many requests"}),
    ]
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return answers.pop(0)

    client = make_client("https://api.example.test/v2", transport=httpx.MockTransport(answer))
    governor = client._governor
    assert client.validate().company == "c"
    with pytest.raises(KinstaAPIError) as caught:
        client.validate()
    assert caught.value.status == 400 and calls == ["GET", "GET"]
    assert isinstance(governor, RateGovernor) and governor.rate_limited == 0


NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (502, NGINX_502, "HTTP 502: Bad Gateway"),
        (
            503,
            "<!DOCTYPE html><html><head><style>p {color: red}</style><script>var x = 1;</script>"
            "</head><body>\r\n\r\n<p>Down&nbsp;for   maintenance,\x07 back soon</p></body></html>",
            "HTTP 503: Service Unavailable: Down for maintenance, back soon",
        ),
        (504, "", "HTTP 504: Gateway Timeout"),
        (
            500,
            '{"status": 500, "message": "line one\\r\\nline\\ttwo"}',
            "HTTP 500: line one line two",
        ),
        (502, "x" * 1000, "HTTP 502: Bad Gateway: " + "x" * 146 + "…"),  # 160 characters
    ],
)
def test_an_error_page_becomes_a_short_clean_message(
    make_client: MakeClient, status: int, body: str, message: str
) -> None:
    """Issue 11 item 22: a proxy's HTML page is not a message: status, reason, first line."""
    kind = "application/json" if body.startswith("{") else "text/html"
    transport = httpx.MockTransport(
        lambda r: httpx.Response(status, text=body, headers={"content-type": kind})
    )
    client = make_client("https://api.example.test/v2", transport=transport)
    with pytest.raises(KinstaAPIError) as caught:
        client.tools.clear_cache("env")
    assert str(caught.value) == f"POST /sites/tools/clear-cache: {message}"


def test_the_governor_keeps_a_tight_sandbox_free_of_429s() -> None:
    """A sandbox allowing 10 per 2 s and a client told the same: many requests, no 429."""
    from scheduler.sandbox import Sandbox, SandboxOptions

    server = SandboxServer(Sandbox(SandboxOptions(per_minute=10, window_s=2.0))).start()
    try:
        clock = SystemClock()
        governor = RateGovernor(RateLimits(per_minute=10, window_s=2.0), clock)
        with KinstaClient(server.url, Secret(DEFAULT_API_KEY), governor, clock) as client:
            for _ in range(25):
                client.validate()
        stats = server.sandbox.snapshot()
        assert (
            stats["rate_limited"] == 0 and stats["requests"] == 25 and stats["max_in_window"] <= 10
        )
    finally:
        server.stop()


def test_the_words_too_many_requests_in_a_log_are_not_a_rate_limit(make_client: MakeClient) -> None:
    logs = "203.0.113.9 GET /wp-login.php 429 Too many requests, please try again later."
    body = {"environment": {"container_info": {"logs": logs}}}
    client = make_client(
        "https://api.example.test/v2",
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json=body)),
    )
    assert client.logs.get("env", "access") == logs


@pytest.mark.parametrize(
    ("status", "body", "uncertain"),
    [
        (502, "<html><h1>502 Bad Gateway</h1></html>", True),  # a proxy: it may have gone on
        (503, '{"message": "Service Unavailable", "status": 503}', True),
        (504, "<html><h1>504 Gateway Time-out</h1></html>", True),
        (500, '{"message": "Error occurred while processing your request", "status": 500}', True),
        (400, '{"message": "Invalid environment_id", "status": 400}', False),  # refused
        (404, '{"message": "Not found", "status": 404}', False),
        (409, "<html>Conflict</html>", False),
    ],
)
def test_a_change_answered_without_proof_of_refusal_is_uncertain(
    make_client: MakeClient, status: int, body: str, uncertain: bool
) -> None:
    """Issue 11 item 16: only a 4xx proves a change request refused; after a 5xx it may have
    acted. Either way it is sent once."""
    calls = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return httpx.Response(status, text=body)

    client = make_client("https://api.example.test/v2", transport=httpx.MockTransport(answer))
    with pytest.raises(KinstaAPIError) as caught:
        client.tools.restart_php("env")
    assert caught.value.uncertain is uncertain and caught.value.status == status
    assert calls == ["POST"]


def test_an_accepted_change_whose_answer_cannot_be_read_is_uncertain(
    make_client: MakeClient,
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>OK</html>")

    client = make_client("https://api.example.test/v2", transport=httpx.MockTransport(answer))
    with pytest.raises(ResponseFormatError) as caught:
        client.tools.clear_cache("env")
    assert caught.value.uncertain is True
    with pytest.raises(ResponseFormatError) as read:
        client.sites.list("c")
    assert read.value.uncertain is False  # a read changes nothing


def test_failed_reads_and_lost_connections_are_not_uncertain(make_client: MakeClient) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(500, json={"message": "boom", "status": 500})
        raise httpx.ConnectError("refused", request=request)

    client = make_client(  # the read's backoffs on a clock that moves when slept on
        "https://api.example.test/v2", transport=httpx.MockTransport(fail), clock=FakeClock()
    )
    with pytest.raises(KinstaAPIError) as read:
        client.validate()
    with pytest.raises(TransportError) as never_sent:
        client.tools.clear_cache("env")
    assert read.value.uncertain is False and never_sent.value.uncertain is False
