"""Concurrency that follows the budget: when a run may start another target (pure rule), and
the gate that applies it."""

from __future__ import annotations

import threading

from scheduler.kinsta.governor import Backlog
from scheduler.run.admission import Admission, backlog_limit, may_start


def test_targets_start_while_no_request_waits_for_budget() -> None:
    assert may_start(in_flight=30, remaining=100, waiting=0, limit=6, cap=256)
    assert may_start(in_flight=30, remaining=100, waiting=5, limit=6, cap=256)


def test_starts_stop_when_requests_queue_for_budget() -> None:
    assert not may_start(in_flight=30, remaining=100, waiting=6, limit=6, cap=256)


def test_the_first_target_always_starts() -> None:
    assert may_start(in_flight=0, remaining=100, waiting=500, limit=6, cap=256)


def test_the_cap_holds_whatever_the_budget() -> None:
    assert not may_start(in_flight=4, remaining=100, waiting=0, limit=6, cap=4)
    assert not may_start(in_flight=4, remaining=2, waiting=0, limit=6, cap=4)


def test_in_the_end_game_the_rest_start_at_once() -> None:
    # No more targets remain than are in flight: their long operations overlap the tail.
    assert may_start(in_flight=30, remaining=30, waiting=60, limit=6, cap=256)
    assert not may_start(in_flight=30, remaining=31, waiting=60, limit=6, cap=256)


def test_the_backlog_limit_is_a_small_share_of_the_window_or_a_second_of_budget() -> None:
    assert backlog_limit(120, 60.0) == 6  # Kinsta's limit: 1/20 of the window
    assert backlog_limit(10, 60.0) == 2
    assert backlog_limit(120, 6.0) == 20  # a window scaled down: a second's worth, 20


class FakeGovernor:
    def __init__(self) -> None:
        self.waiting = 0
        self.arrivals = 0

    def backlog(self) -> Backlog:
        return Backlog(self.waiting, self.arrivals, 120, 60.0)

    def next_arrival(self, after: int, timeout_s: float) -> int:
        self.arrivals += 1  # the started target's first request
        return self.arrivals


def test_the_gate_counts_targets_in_flight_and_their_peak() -> None:
    governor = FakeGovernor()
    gate = Admission(governor.backlog, governor.next_arrival, cap=3, pace_s=0.01)
    never = lambda: False  # noqa: E731
    assert all(gate.wait_turn(10, never) for _ in range(3))
    governor.waiting = 10
    stopped = threading.Event()
    assert not gate.wait_turn(10, lambda: stopped.wait(0.05) or True)  # full: it waits, then stop
    gate.done()
    governor.waiting = 0
    assert gate.wait_turn(10, never)
    assert gate.peak == 3


def test_a_target_ending_wakes_the_gate() -> None:
    governor = FakeGovernor()
    governor.waiting = 100
    gate = Admission(governor.backlog, governor.next_arrival, cap=1, pace_s=5.0)
    assert gate.wait_turn(5, lambda: False)
    started = threading.Event()

    def second() -> None:
        gate.wait_turn(4, lambda: False)
        started.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert not started.wait(0.1)
    gate.done()
    assert started.wait(2.0)  # well before the 5 s pace: the ending woke it
    thread.join()
