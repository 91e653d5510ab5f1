"""The sliding-window log never admits more than `limit` in any window, and waits exactly."""

from __future__ import annotations

import random

from scheduler.ratelimit import SlidingWindow, parse_retry_after


def test_admits_up_to_the_limit_then_waits_for_the_oldest() -> None:
    window = SlidingWindow(limit=3, window_s=60)
    for t in (0.0, 1.0, 2.0):
        assert window.wait_s(t) == 0
        window.start()
        window.finish(t)
    assert window.wait_s(10.0) == 50.0  # the stamp at 0 expires at 60
    assert window.wait_s(60.0) == 0


def test_in_flight_requests_hold_a_slot() -> None:
    window = SlidingWindow(limit=1, window_s=60)
    window.start()
    assert window.wait_s(0.0) == 60.0
    window.finish(5.0)
    assert window.wait_s(6.0) == 59.0


def test_margin_extends_each_slot() -> None:
    window = SlidingWindow(limit=1, window_s=60, margin_s=0.5)
    window.start()
    window.finish(0.0)
    assert window.wait_s(1.0) == 59.5


def test_never_more_than_limit_in_any_window_under_random_load() -> None:
    rng = random.Random(3)
    window = SlidingWindow(limit=10, window_s=6.0)
    now, sent = 0.0, []
    for _ in range(500):
        now += window.wait_s(now)
        window.start()
        latency = rng.uniform(0.01, 0.5)
        sent.append(now)  # the server may count it as early as the send
        window.finish(now + latency)
        now += rng.uniform(0, 0.2)
    for i, start in enumerate(sent):
        in_window = [t for t in sent[i:] if t - start < 6.0]
        assert len(in_window) <= 10


def test_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT") is None
    assert parse_retry_after(None) is None
