"""Early polls: which operation is polled before its time when budget would go unused, and
when (pure choices, and the board with a fake governor and clock)."""

from __future__ import annotations

import threading

from scheduler.kinsta.governor import Backlog
from scheduler.run.early import EarlyPolls, Waiting, likeliest, rate_bound
from tests.conftest import FakeClock

EXPECTED = {"backup": 20.0, "clear_cache": 2.0}


class FakeGovernor:
    def __init__(self) -> None:
        self.waiting = 0
        self.saturated_at: float | None = None

    def backlog(self) -> Backlog:
        return Backlog(self.waiting, 0, 120, 6.0, self.saturated_at)


def board(clock: FakeClock, governor: FakeGovernor) -> EarlyPolls:
    return EarlyPolls(governor.backlog, lambda kind: EXPECTED.get(kind, 0.0), clock)


def entry(early: EarlyPolls, kind: str, since: float) -> Waiting:
    return Waiting(kind, since, early, threading.Event())


def test_the_likeliest_is_the_one_that_ran_the_largest_share_of_its_kind() -> None:
    early = board(FakeClock(), FakeGovernor())
    backup, cache = entry(early, "backup", 0.0), entry(early, "clear_cache", 9.0)
    # at 10 s: the backup ran half its expected 20 s; the cache clear 1 s of 2 s: half too
    assert likeliest([backup, cache], 10.0, EXPECTED.__getitem__) in (backup, cache)
    assert likeliest([backup, cache], 10.5, EXPECTED.__getitem__) is cache  # 75% vs 52%
    assert likeliest([backup, cache], 16.0, EXPECTED.__getitem__) is cache  # past its time


def test_nothing_is_polled_early_before_half_its_expected_duration() -> None:
    early = board(FakeClock(), FakeGovernor())
    backup = entry(early, "backup", 0.0)
    assert likeliest([backup], 9.9, EXPECTED.__getitem__) is None
    assert likeliest([backup], 10.0, EXPECTED.__getitem__) is backup
    assert likeliest([entry(early, "unknown", 0.0)], 100.0, lambda _k: 0.0) is None
    backup.not_before = 30.0  # an early poll found it running
    assert likeliest([backup], 29.0, EXPECTED.__getitem__) is None


def test_early_polls_only_while_the_night_was_rate_bound_recently() -> None:
    assert not rate_bound(Backlog(0, 0, 120, 6.0, None), 100.0)
    assert rate_bound(Backlog(0, 0, 120, 6.0, 90.0), 100.0)  # within two windows
    assert not rate_bound(Backlog(0, 0, 120, 6.0, 87.0), 100.0)


def test_a_tick_wakes_the_likeliest_when_budget_goes_unused() -> None:
    clock, governor = FakeClock(), FakeGovernor()
    early = board(clock, governor)
    start = clock.monotonic()
    with (
        early.waiting("backup", start, threading.Event()) as backup,
        early.waiting("clear_cache", start, threading.Event()) as cache,
    ):
        clock.advance(15.0)
        assert early.tick() is None  # never rate-bound: a small fleet polls as before
        governor.saturated_at = clock.monotonic() - 1.0
        governor.waiting = 3
        assert early.tick() is None  # requests wait for budget: nothing early
        governor.waiting = 0
        assert early.tick() is cache and cache.wake.is_set()
        assert early.tick() is backup  # a few at once, each woken once
        assert early.tick() is None
        backup.wake.clear()
        backup.polled_early(False)
        cache.wake.clear()
        cache.polled_early(None)  # no budget after all: a few ticks without early polls
        assert early.tick() is None
        clock.advance(1.0)
        assert early.tick() is cache
        cache.wake.clear()
        cache.polled_early(False)  # still running: its schedule takes it from here
        clock.advance(100.0)
        assert early.tick() is None  # at most one early poll per operation
    assert (early.sent, early.final) == (2, 0)
