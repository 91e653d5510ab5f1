"""Early polls: when a rate-bound night would leave budget unused, poll the operations most
likely done before their time.

An operation's first poll comes when operations of its kind are expected to be done: a high
percentile of their durations (durations.typical), so that one poll settles nearly all of them.
That is what makes a night cheap, and what leaves its budget idle at moments: when every target
in flight waits for an operation (the first minutes, when every backup has started; the tail),
nothing asks for budget, yet many operations are already done. Then polling the likeliest ones
at once costs no time (the budget would be lost) and moves their pipelines on.

So a runner keeps the operations waiting for a poll; a thread looks at the governor every tick,
and when this process has nothing waiting for budget but was rate-bound recently (a request
waited for the ledger within RECENT_WINDOWS windows: a small fleet, never rate-bound, polls as
before), it wakes the operation that has run the largest share of its kind's expected duration
(at least MIN_SHARE), up to AT_ONCE at a time. Its poll goes `if_idle`: it takes a permit only
if the ledger has one now and no request of this process waits, else it is not sent
(BudgetBusy) and early polls pause for a few ticks. An early poll that finds the operation
still running leaves its schedule alone, and that operation is not polled early again. The cost
is the early polls that find an operation still running: at most one per operation, and
MIN_SHARE keeps them the exception (most operations of a kind take about half their high
percentile)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from scheduler.clock import Clock
from scheduler.kinsta.governor import Backlog

MIN_SHARE = 0.5  # an operation is polled early once it ran this share of its expected duration
RECENT_WINDOWS = 2.0  # early polls only while a request waited for budget this recently
TICK_S = 0.1  # look at the budget this often at most ...
TICK_SHARE = 0.5  # ... or at half the interval between two requests at the key's rate
BUSY_TICKS = 4  # after a poll found no budget free: this many ticks without early polls
AT_ONCE = 4  # early polls out at once at most (each tells whether budget was free)


@dataclass(eq=False)
class Waiting:
    """An operation waiting for its next poll (a Nudge for wait_for_operation)."""

    kind: str
    since: float  # monotonic: when the operation was accepted
    board: EarlyPolls
    wake: threading.Event
    not_before: float = 0.0  # no early poll before this (monotonic; inf: never again)
    woken: bool = field(default=False)

    def polled_early(self, final: bool | None) -> None:
        self.board.polled(self, final)


class EarlyPolls:
    """One per runner (every run of its company). `backlog` is the governor's (through the
    client), `expected_s` the learner's estimate per kind (0.0: unknown, then `fallback_s`)."""

    def __init__(
        self,
        backlog: Callable[[], Backlog],
        expected_s: Callable[[str], float],
        clock: Clock,
        *,
        fallback_s: Callable[[str], float] = lambda _kind: 0.0,
        stop: threading.Event | None = None,
    ) -> None:
        self._backlog = backlog
        self._expected_s = expected_s
        self._fallback_s = fallback_s
        self._clock = clock
        self._stop = stop or threading.Event()
        self._lock = threading.Lock()
        self._waiting: set[Waiting] = set()
        self._thread: threading.Thread | None = None
        self._quiet_until = 0.0
        self.sent = 0  # early polls sent, and how many found their operation final
        self.final = 0

    @contextmanager
    def waiting(self, kind: str, since: float, wake: threading.Event) -> Iterator[Waiting]:
        """An operation of `kind`, accepted at `since`, waits for polls meanwhile; `wake` is set
        to poll it now (wait_for_operation's Nudge)."""
        entry = Waiting(kind, since, self, wake)
        with self._lock:
            self._waiting.add(entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="early-polls", daemon=True)
                self._thread.start()
        try:
            yield entry
        finally:
            with self._lock:
                self._waiting.discard(entry)

    def polled(self, entry: Waiting, final: bool | None) -> None:
        now = self._clock.monotonic()
        with self._lock:
            entry.woken = False
            if final is None:  # no budget after all: look again a few ticks later
                self._quiet_until = now + BUSY_TICKS * self._tick_s(self._backlog())
                return
            self.sent += 1
            self.final += final
            entry.not_before = math.inf  # still running: its schedule takes it from here

    def _watch(self) -> None:
        """Wake one operation per tick while budget goes unused; end when none waits."""
        while True:
            seen = self._backlog()
            with self._lock:
                if not self._waiting:
                    self._thread = None
                    return
            if self._stop.wait(self._tick_s(seen)):
                with self._lock:
                    self._thread = None
                return
            self.tick()

    def tick(self) -> Waiting | None:
        """Wake the likeliest operation to be done, if budget goes unused now (the one woken)."""
        seen, now = self._backlog(), self._clock.monotonic()
        if seen.waiting or not rate_bound(seen, now) or now < self._quiet_until:
            return None
        with self._lock:
            woken = sum(entry.woken for entry in self._waiting)
            if woken >= AT_ONCE:
                return None  # their polls tell whether budget is free
            best = likeliest((e for e in self._waiting if not e.woken), now, self._share_of)
            if best is not None:
                best.woken = True
                best.wake.set()
            return best

    def _share_of(self, kind: str) -> float:
        return self._expected_s(kind) or self._fallback_s(kind)

    @staticmethod
    def _tick_s(seen: Backlog) -> float:
        interval = seen.window_s / max(1, seen.per_window)
        return min(TICK_S, TICK_SHARE * interval)


def rate_bound(seen: Backlog, now: float) -> bool:
    """Whether a request of this process waited for budget recently (pure)."""
    return seen.saturated_at is not None and now - seen.saturated_at <= (
        RECENT_WINDOWS * seen.window_s
    )


def likeliest(
    waiting: Iterable[Waiting], now: float, expected_s: Callable[[str], float]
) -> Waiting | None:
    """The operation that has run the largest share of its kind's expected duration, if it ran
    at least MIN_SHARE of it and may be polled early now (pure, given `expected_s`)."""
    best, best_share = None, MIN_SHARE
    expected: dict[str, float] = {}
    for entry in waiting:
        if now < entry.not_before:
            continue
        if entry.kind not in expected:
            expected[entry.kind] = expected_s(entry.kind)
        if expected[entry.kind] <= 0:
            continue
        share = (now - entry.since) / expected[entry.kind]
        if share >= best_share:
            best, best_share = entry, share
    return best
