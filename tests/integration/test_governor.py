"""The governor under concurrency: many targets at once, two processes sharing one key through
the history database, and a sandbox that answers 429 once. Windows are scaled to seconds."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from scheduler.clock import SystemClock
from scheduler.domain import (
    ActionSpec,
    Job,
    Polling,
    RateLimits,
    RunStatus,
    RunTrigger,
    Secret,
    TargetSelector,
)
from scheduler.errors import BudgetBusy, Interrupted, StoreError
from scheduler.history import SqlHistoryStore, make_engine
from scheduler.history.ledger import SqlLedger
from scheduler.history.migrate import upgrade
from scheduler.kinsta import KinstaClient, RateGovernor
from scheduler.kinsta.governor import if_idle, key_fingerprint, work_ahead
from scheduler.ratelimit import BucketLimit, Grant, MemoryLedger
from scheduler.runner import Runner
from scheduler.sandbox import DEFAULT_API_KEY, Sandbox, SandboxOptions, SandboxServer
from tests.conftest import OPERATION_IDS, FakeClock

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tight_sandbox() -> Iterator[SandboxServer]:
    """20 requests per 1.5 s per key: Kinsta's 120/min, scaled."""
    server = SandboxServer(
        Sandbox(
            SandboxOptions(
                sites=24,
                seed=5,
                time_scale=0.01,
                per_minute=20,
                window_s=1.5,
                operation_ids=OPERATION_IDS,
            )
        )
    ).start()
    yield server
    server.stop()
    assert server.sandbox.snapshot()["violations"] == []


def test_many_targets_at_once_stay_under_the_limit(
    tight_sandbox: SandboxServer, store: SqlHistoryStore
) -> None:
    clock = SystemClock()
    governor = RateGovernor(
        RateLimits(per_minute=20, window_s=1.5), clock, ledger=SqlLedger(store.engine), scope="k"
    )
    job = Job("all", None, TargetSelector(), (ActionSpec("clear_cache"),), concurrency=16)
    polling = Polling(first_poll_s=0.05, max_interval_s=0.2, deadline_s=60)
    with KinstaClient(tight_sandbox.url, Secret(DEFAULT_API_KEY), governor, clock) as client:
        runner = Runner(
            client, store, clock, polling, tight_sandbox.sandbox.fleet.company_id, started_by="t"
        )
        run = runner.run(job, RunTrigger.MANUAL, datetime.now(UTC))
    assert run is not None and run.status is RunStatus.SUCCEEDED and run.tasks_total == 24
    stats = tight_sandbox.sandbox.snapshot()
    assert stats["rate_limited"] == 0
    assert stats["max_in_window"] <= 20
    assert stats["requests"] >= 49  # 1 list + 24 clears + at least 24 polls


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def test_two_processes_sharing_a_key_stay_under_the_limit(
    tight_sandbox: SandboxServer, kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from tests.conftest import empty_database

    url = empty_database(kind, request, tmp_path)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    args = [tight_sandbox.url, url, "30", "20", "1.5"]
    started = time.monotonic()
    processes = [
        subprocess.Popen([sys.executable, "-m", "tests.integration.burst", *args], cwd=ROOT)
        for _ in range(2)
    ]
    assert [p.wait(timeout=60) for p in processes] == [0, 0]
    elapsed = time.monotonic() - started
    stats = tight_sandbox.sandbox.snapshot()
    assert stats["requests"] == 60 and stats["rate_limited"] == 0
    assert stats["max_in_window"] <= 20
    assert elapsed >= 2 * 1.5  # 60 requests at 20 per 1.5 s need at least two full windows


def test_a_429_pauses_every_user_of_the_key_then_succeeds(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'h.db'}")
    upgrade(engine)
    ledger = SqlLedger(engine)
    clock = SystemClock()
    scope = key_fingerprint(DEFAULT_API_KEY)
    first = RateGovernor(RateLimits(), clock, ledger=ledger, scope=scope)
    second = RateGovernor(RateLimits(), clock, ledger=ledger, scope=scope)
    sandbox.sandbox.faults.rate_limit_next = 1
    sandbox.sandbox.faults.retry_after_s = 1
    with KinstaClient(sandbox.url, Secret(DEFAULT_API_KEY), first, clock) as client:
        started = time.monotonic()
        assert client.validate().status == "active"
        assert time.monotonic() - started >= 1.0
    assert first.rate_limited == 1
    sandbox.sandbox.faults.rate_limit_next = 1
    with KinstaClient(sandbox.url, Secret(DEFAULT_API_KEY), first, clock) as client:
        blocked = threading.Thread(target=client.validate)  # this 429 blocks the shared bucket...
        blocked.start()
        time.sleep(0.3)
        with KinstaClient(sandbox.url, Secret(DEFAULT_API_KEY), second, clock) as other:
            started = time.monotonic()
            other.validate()  # ...so the other user of the key waits too, without a 429 of its own
            assert time.monotonic() - started >= 0.4
        blocked.join()
    assert second.rate_limited == 0
    assert sandbox.sandbox.snapshot()["rate_limited"] == 2
    engine.dispose()


def test_server_saying_none_remain_pauses_until_reset() -> None:
    from scheduler.kinsta.governor import _remaining_and_reset

    assert _remaining_and_reset({"RateLimit-Remaining": "0", "RateLimit-Reset": "12"}) == (0, 12.0)
    assert _remaining_and_reset({"x-ratelimit-remaining": "5", "x-ratelimit-reset": "3"}) == (
        5,
        3.0,
    )
    assert _remaining_and_reset({"RateLimit": '"default";r=0;t=7'}) == (0, 7.0)
    assert _remaining_and_reset({}) == (None, None)


def test_a_server_count_below_ours_means_someone_else_uses_the_key(fake_clock: FakeClock) -> None:
    from scheduler.ratelimit import MemoryLedger

    ledger = MemoryLedger(fake_clock.monotonic)
    governor = RateGovernor(RateLimits(per_minute=10), fake_clock, ledger=ledger, scope="k")
    with governor.permit("GET", "/validate"):
        pass
    # We used 1 of 10; Kinsta says 0 remain: another user of the key. Pause until its reset.
    governor.observe({"RateLimit-Remaining": "0", "RateLimit-Reset": "30"})
    wait = ledger.acquire([BucketLimit("company:k", 10)], 60.5, 60)
    assert isinstance(wait, float) and 29 < wait <= 30


def test_a_server_count_that_matches_ours_causes_no_pause(fake_clock: FakeClock) -> None:
    from scheduler.ratelimit import MemoryLedger

    ledger = MemoryLedger(fake_clock.monotonic)
    governor = RateGovernor(RateLimits(per_minute=2), fake_clock, ledger=ledger, scope="k")
    for _ in range(2):
        with governor.permit("GET", "/validate"):
            pass
    governor.observe({"RateLimit-Remaining": "0", "RateLimit-Reset": "60"})
    fake_clock.advance(60.6)
    assert not isinstance(ledger.acquire([BucketLimit("company:k", 2)], 60.5, 60), float)


def test_creation_requests_also_count_against_the_creation_bucket(fake_clock: FakeClock) -> None:
    from scheduler.ratelimit import MemoryLedger

    ledger = MemoryLedger(fake_clock.monotonic)
    limits = RateLimits(
        creation_endpoints=("POST /sites", "POST /sites/{site_id}/environments/clone")
    )
    governor = RateGovernor(limits, fake_clock, ledger=ledger, scope="k")
    for method, path in [("POST", "/sites"), ("POST", "/sites/s1/environments/clone"), ("POST", "/sites/clone"),
                         ("POST", "/sites/tools/clear-cache"), ("GET", "/sites/environments/e1/logs")]:  # fmt: skip
        with governor.permit(method, path):
            pass
    count = {b: ledger.count(f"{b}:k", 60.5, 60) for b in ("company", "creation", "logs")}
    assert count == {"company": 5, "creation": 2, "logs": 1}


def test_a_creation_waiting_for_its_slot_does_not_hold_up_other_requests() -> None:
    clock = SystemClock()
    governor = RateGovernor(RateLimits(creation_per_minute=1, window_s=3.0), clock, scope="k")
    with governor.permit("POST", "/sites"):
        pass

    def create() -> None:
        with governor.permit("POST", "/sites"):
            pass

    second_creation = threading.Thread(target=create)
    second_creation.start()  # waits about 3 s for the creation bucket
    time.sleep(0.2)
    started = time.monotonic()
    with governor.permit("GET", "/sites"):
        pass
    assert time.monotonic() - started < 0.5
    second_creation.join(timeout=10)


def test_a_429_is_recorded_in_history(sandbox: SandboxServer, store: SqlHistoryStore) -> None:
    clock = SystemClock()

    def record(scope: str, kind: str, seconds: float | None, detail: str) -> None:
        store.events.record_governor_event(scope, kind, seconds, detail, clock.now())

    governor = RateGovernor(
        RateLimits(), clock, ledger=SqlLedger(store.engine), scope="fingerprint", on_event=record
    )
    sandbox.sandbox.faults.rate_limit_next, sandbox.sandbox.faults.retry_after_s = 1, 1
    with KinstaClient(sandbox.url, Secret(DEFAULT_API_KEY), governor, clock) as client:
        client.validate()
    (event,) = store.events.governor_events()
    assert (event.scope, event.kind, event.seconds) == ("fingerprint", "rate_limited", 1.0)


def test_a_failing_event_sink_never_stops_a_request(fake_clock: FakeClock) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("database gone")

    governor = RateGovernor(RateLimits(window_s=0.001), fake_clock, scope="k", on_event=broken)
    governor.blocked(0.0)  # emits, fails to record, carries on
    with governor.permit("GET", "/validate"):
        pass
    assert governor.rate_limited == 1


# --- shutdown: every wait inside the client ends at cancel (issue 11 item 3) -------------------


def _wait_in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, raised


def _stops_promptly(
    cancel: threading.Event, thread: threading.Thread, raised: list[BaseException]
) -> None:
    time.sleep(0.5)
    assert thread.is_alive()  # it is waiting
    cancel.set()
    started = time.monotonic()
    thread.join(timeout=5)
    assert not thread.is_alive() and time.monotonic() - started < 1.0
    assert len(raised) == 1 and isinstance(raised[0], Interrupted), raised


def test_a_request_paused_by_a_429_stops_within_a_second_of_cancel(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'h.db'}")
    upgrade(engine)
    clock, cancel = SystemClock(), threading.Event()
    governor = RateGovernor(RateLimits(), clock, ledger=SqlLedger(engine), scope="k", cancel=cancel)
    sandbox.sandbox.faults.rate_limit_next, sandbox.sandbox.faults.retry_after_s = 1, 90
    with KinstaClient(
        sandbox.url, Secret(DEFAULT_API_KEY), governor, clock, cancel=cancel
    ) as client:
        _stops_promptly(cancel, *_wait_in_thread(client.validate))
    assert sandbox.sandbox.snapshot()["requests"] == 1  # the 429; nothing sent after it
    engine.dispose()


class _LedgerDown(MemoryLedger):
    def acquire(self, *args: Any, **kwargs: Any) -> Grant | float:
        raise StoreError("database is locked", transient=True)


@pytest.mark.parametrize("cause", ["block", "key_shared", "ledger_down", "queued"])
def test_every_wait_for_budget_ends_at_cancel(cause: str) -> None:
    clock, cancel = SystemClock(), threading.Event()
    ledger = (
        _LedgerDown(clock.monotonic) if cause == "ledger_down" else MemoryLedger(clock.monotonic)
    )
    limits = RateLimits(per_minute=1 if cause == "queued" else 10)
    governor = RateGovernor(limits, clock, ledger=ledger, scope="k", cancel=cancel)
    if cause == "block":
        governor.blocked(90)  # a 429 with Retry-After: 90
    elif cause == "key_shared":
        governor.observe({"RateLimit-Remaining": "0", "RateLimit-Reset": "90"})
    elif cause == "queued":  # behind another request that waits for the full bucket
        with governor.permit("GET", "/validate"):
            pass
        first, first_raised = _wait_in_thread(lambda: governor.permit("GET", "/sites").__enter__())

    def request() -> None:
        with governor.permit("GET", "/validate"):
            raise AssertionError("granted")

    _stops_promptly(cancel, *_wait_in_thread(request))
    if cause == "queued":
        first.join(timeout=1)
        assert isinstance(first_raised[0], Interrupted)


class _LongBackoff(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return 10 * b  # 5 s before the second attempt


def test_retry_backoff_ends_at_cancel_and_nothing_is_sent_after() -> None:
    clock, cancel = SystemClock(), threading.Event()
    calls: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        raise httpx.ConnectError("refused", request=request)

    client = KinstaClient(
        "https://api.example.test/v2",
        Secret("k"),
        RateGovernor(RateLimits(), clock, cancel=cancel),
        clock,
        transport=httpx.MockTransport(refuse),
        rng=_LongBackoff(),
        cancel=cancel,
    )
    with client:
        _stops_promptly(cancel, *_wait_in_thread(client.validate))  # cancelled in the pause
        assert calls == ["GET"]
        with pytest.raises(Interrupted):
            client.validate()
        assert calls == ["GET"]


# --- waiting for budget holds no in-flight slot (issue 11 item 18) ------------------------------


def test_slow_bucket_waiters_do_not_delay_a_request_with_budget() -> None:
    clock, cancel = SystemClock(), threading.Event()
    governor = RateGovernor(
        RateLimits(logs_per_minute=1, window_s=30.0), clock, scope="k", cancel=cancel
    )
    with governor.permit("GET", "/sites/environments/e0/logs"):
        pass

    def fetch_logs(environment: int) -> Callable[[], object]:
        return lambda: governor.permit(
            "GET", f"/sites/environments/e{environment}/logs"
        ).__enter__()

    # more than the eight in-flight slots, each waiting ~30 s for the logs bucket
    waiters = [_wait_in_thread(fetch_logs(i)) for i in range(1, 12)]
    time.sleep(0.3)
    started = time.monotonic()
    with governor.permit("GET", "/operations/cache:clear-x"):
        assert time.monotonic() - started < 0.5  # a poll with company budget goes at once
    cancel.set()
    for thread, raised in waiters:
        thread.join(timeout=2)
        assert isinstance(raised[0], Interrupted)


def test_a_request_with_more_work_ahead_is_served_first_and_none_starves() -> None:
    """Longest work ahead first: the start of a long chain overtakes a short chain's last poll
    that came before it, but not one that has waited longer than the head start."""
    governor = RateGovernor(RateLimits(per_minute=1, window_s=0.3), SystemClock())
    order: list[str] = []

    def request(name: str, ahead: float) -> threading.Thread:
        def send() -> None:
            with work_ahead(ahead), governor.permit("GET", "/operations/x"):
                order.append(name)

        thread = threading.Thread(target=send)
        thread.start()
        return thread

    threads = [request("first", 0.0)]
    time.sleep(0.05)  # it holds the window's one permit
    threads.append(request("last poll", 0.0))
    time.sleep(0.05)
    threads.append(request("backup", 60.0))  # came later, a minute of work ahead of it
    threads.append(request("tiny head start", 0.01))  # came later still, too little ahead
    for thread in threads:
        thread.join(5)
    assert order == ["first", "backup", "last poll", "tiny head start"]


def test_a_request_sent_if_idle_takes_only_budget_nobody_waits_for(fake_clock: FakeClock) -> None:
    """An early poll is a bet: it goes when the ledger has a permit now and no request of the
    process waits; otherwise BudgetBusy, nothing sent, nothing counted."""
    ledger = MemoryLedger(fake_clock.monotonic)
    governor = RateGovernor(RateLimits(per_minute=2), fake_clock, ledger=ledger, scope="k")
    with if_idle(), governor.permit("GET", "/operations/a"):
        pass
    assert governor.backlog().arrivals == 0  # admission paces by requests that must go
    assert governor.backlog().saturated_at is None
    with governor.permit("GET", "/operations/b"):
        pass
    with pytest.raises(BudgetBusy), if_idle(), governor.permit("GET", "/operations/c"):
        pass  # the window's two permits are taken
    assert ledger.count("company:k", 60.5, 60) == 2 and governor.requests == 2


def test_a_request_sent_if_idle_never_overtakes_one_waiting_for_budget() -> None:
    clock, cancel = SystemClock(), threading.Event()
    governor = RateGovernor(
        RateLimits(per_minute=1, window_s=30.0), clock, scope="k", cancel=cancel
    )
    with governor.permit("GET", "/operations/first"):
        pass
    waiter = _wait_in_thread(lambda: governor.permit("GET", "/operations/waits").__enter__())
    deadline = time.monotonic() + 2
    while governor.backlog().saturated_at is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert governor.backlog().waiting == 1 and governor.backlog().saturated_at is not None
    with pytest.raises(BudgetBusy), if_idle(), governor.permit("GET", "/operations/early"):
        pass
    cancel.set()
    waiter[0].join(timeout=2)


def test_a_rate_bound_run_polls_early_into_idle_budget_and_stays_under_the_limit(
    tight_sandbox: SandboxServer, store: SqlHistoryStore
) -> None:
    """Every target's backup runs at once and nothing else asks for budget: the runner polls
    the likeliest-done backups early, with budget nobody waits for; never a 429, never over.
    (A run that never waits for budget polls as before: test_early_polls, and every test that
    counts polls.)"""
    clock = SystemClock()
    governor = RateGovernor(
        RateLimits(per_minute=20, window_s=1.5), clock, ledger=SqlLedger(store.engine), scope="k"
    )
    job = Job("night", None, TargetSelector(), (ActionSpec("backup"), ActionSpec("clear_cache")))
    polling = Polling(first_poll_s=0.05, max_interval_s=0.5, deadline_s=60)
    with KinstaClient(tight_sandbox.url, Secret(DEFAULT_API_KEY), governor, clock) as client:
        runner = Runner(
            client, store, clock, polling, tight_sandbox.sandbox.fleet.company_id, started_by="t"
        )
        # As a night before taught it: a backup takes up to 3 s (here 0.6 to 3.6, 1.2 typical),
        # so the backups are due for their polls long after most are done.
        runner.learner.learn({"backup": 3.0})
        run = runner.run(job, RunTrigger.MANUAL, datetime.now(UTC))
        assert run is not None and run.status is RunStatus.SUCCEEDED
        assert runner.early.sent > 0 and runner.early.final >= runner.early.sent / 2
    stats = tight_sandbox.sandbox.snapshot()
    assert stats["rate_limited"] == 0 and stats["max_in_window"] <= 20
