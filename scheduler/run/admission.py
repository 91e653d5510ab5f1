"""When a run may start another target: concurrency that follows the rate budget.

A night is rate-bound: what limits it is the key's requests per window, not how many targets
are in flight. So a run starts targets while its requests go out at once, and stops starting
them when they would only queue for budget: a feedback loop on the governor's backlog (this
process's requests waiting for budget), not a fixed number.

Why a feedback loop rather than Little's law over learned durations: in-flight work needed to
keep the budget busy is rate x pipeline length / requests per pipeline, and every term of that
moves during a night (operations vary, polls come late or early, another process shares the key,
a 429 pauses everything). The backlog measures the result directly: while requests wait, more
targets would add only waiting; while none wait, budget is going unused. Little's law is what
the loop converges to (and what `plan` uses to predict the night), with no estimate to trust.

The end game: when no more targets remain than are in flight, the rest start at once. Their long
operations (backups) then overlap the tail of the others instead of starting after it, so the
night ends about one pipeline after its last request rather than one pipeline after its budget
ran dry. A cap (`concurrency: N`, or MAX_CONCURRENCY for `auto`) bounds threads and leases."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from scheduler.kinsta.governor import Backlog

BACKLOG_SHARE = 20  # requests may queue up to 1/20 of the window's limit before starts stop
BACKLOG_S = 1.0  # ... or a second's worth of budget, if more
MIN_BACKLOG = 2
PACE_S = 0.1  # at most this long between two starts while nothing else asks for budget
PACE_SHARE = 0.5  # ... or half the interval between two requests at the key's rate, if less


def backlog_limit(per_window: int, window_s: float) -> int:
    """How many waiting requests mean the budget is busy: enough to keep it busy for longer
    than a new target takes to send its first request (a thread, a lease, a little work), so
    starts never lag behind free budget; few enough that each request waits only briefly."""
    per_second = per_window / window_s if window_s > 0 else per_window
    return max(MIN_BACKLOG, per_window // BACKLOG_SHARE, math.ceil(per_second * BACKLOG_S))


def may_start(*, in_flight: int, remaining: int, waiting: int, limit: int, cap: int) -> bool:
    """Whether another of `remaining` targets may start now (pure)."""
    if in_flight >= cap:
        return False
    if in_flight == 0 or waiting < limit:
        return True
    return remaining <= in_flight  # the end game: the rest overlap the tail


class Admission:
    """Starts a run's targets as budget allows. `backlog` and `next_arrival` are the governor's
    (through the client); `cap` the most in flight. One per run; thread-safe."""

    def __init__(
        self,
        backlog: Callable[[], Backlog],
        next_arrival: Callable[[int, float], int],
        cap: int,
        pace_s: float = PACE_S,
    ) -> None:
        self._backlog = backlog
        self._next_arrival = next_arrival
        self._cap = cap
        self._pace_s = pace_s
        self._cond = threading.Condition()
        self._in_flight = 0
        self.peak = 0  # the most targets in flight at once

    def wait_turn(self, remaining: int, stop: Callable[[], bool]) -> bool:
        """Block until one more target may start (True), or `stop()` (False). Starts are paced:
        after one, the next waits until the governor has seen a request since (the started
        target's first, usually), so the backlog reflects it first, or for PACE_S at most (half
        a request's interval at the key's rate, if less)."""
        while not stop():
            seen = self._backlog()
            with self._cond:
                if may_start(
                    in_flight=self._in_flight,
                    remaining=remaining,
                    waiting=seen.waiting,
                    limit=backlog_limit(seen.per_window, seen.window_s),
                    cap=self._cap,
                ):
                    self._in_flight += 1
                    self.peak = max(self.peak, self._in_flight)
                    break
                self._cond.wait(self._pace_s)  # a target ended, or look again
        else:
            return False
        # Starts may not lag behind the rate: when every target in flight waits for its
        # operations, new ones are all that keeps the budget busy.
        interval = seen.window_s / max(1, seen.per_window)
        self._next_arrival(seen.arrivals, min(self._pace_s, PACE_SHARE * interval))
        return True

    def done(self) -> None:
        """A target's pipeline ended."""
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()
