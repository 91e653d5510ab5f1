"""Sliding windows never admit more than `limit` in any window, and wait exactly."""

from __future__ import annotations

import random

from scheduler.ratelimit import BucketLimit, MemoryLedger, SlidingWindow, parse_retry_after
from tests.conftest import FakeClock


def test_admits_up_to_the_limit_then_waits_for_the_oldest() -> None:
    window = SlidingWindow(limit=3, window_s=60)
    for t in (0.0, 1.0, 2.0):
        assert window.wait_s(t) == 0
        window.record(t)
    assert window.wait_s(10.0) == 50.0  # the stamp at 0 expires at 60
    assert window.wait_s(60.0) == 0


def test_in_flight_permits_hold_a_slot(fake_clock: FakeClock) -> None:
    ledger = MemoryLedger(fake_clock.monotonic)
    bucket = [BucketLimit("b", 1)]
    grant = ledger.acquire(bucket, 60, hold_s=300)
    assert not isinstance(grant, float)
    assert ledger.acquire(bucket, 60, hold_s=300) == 360.0  # unreleased: counts until hold + window
    fake_clock.advance(5)
    ledger.release(grant)
    fake_clock.advance(1)
    assert ledger.acquire(bucket, 60, hold_s=300) == 59.0


def test_margin_extends_each_slot(fake_clock: FakeClock) -> None:
    ledger = MemoryLedger(fake_clock.monotonic)
    bucket = [BucketLimit("b", 1)]
    grant = ledger.acquire(bucket, 60.5, hold_s=300)  # the governor passes window + margin
    assert not isinstance(grant, float)
    ledger.release(grant)
    fake_clock.advance(1)
    assert ledger.acquire(bucket, 60.5, hold_s=300) == 59.5


def test_never_more_than_limit_in_any_window_under_random_load() -> None:
    rng = random.Random(3)
    window = SlidingWindow(limit=10, window_s=6.0)
    now, sent = 0.0, []
    for _ in range(500):
        while (
            wait := window.wait_s(now)
        ) > 0:  # callers re-check after waiting, as the governor does
            now += wait
        window.record(now)
        sent.append(now)
        now += rng.uniform(0, 0.2)
    for i, start in enumerate(sent):
        in_window = [t for t in sent[i:] if t - start < 6.0]
        assert len(in_window) <= 10


def test_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT") is None
    assert parse_retry_after(None) is None
