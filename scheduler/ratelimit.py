"""Pure rate-limit arithmetic: (state, now) -> wait / new state. No I/O, no locks, no sleeping.

A sliding-window log admits a request when fewer than `limit` requests were counted in the last
`window_s` seconds. Unlike a token bucket configured as "N per W" (which lets almost 2N through in
the first window), it never exceeds N in any window, which is what a server enforcing N/W checks.
The governor stamps a request when its response arrives (not when it was sent): the server
counted it at some instant in between, so holding its slot until `response + W` is safe whatever
the server's window algorithm, at the cost of one latency per window.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

MIN_WAIT_S = 1e-6


@dataclass
class SlidingWindow:
    """Arrivals counted in a sliding window, as a server enforcing N per W counts them (the
    sandbox uses it; the governor's own permits live in a Ledger, below)."""

    limit: int
    window_s: float
    _stamps: deque[float] = field(default_factory=deque)

    def _expire(self, now: float) -> None:
        while self._stamps and self._stamps[0] <= now - self.window_s:
            self._stamps.popleft()

    def wait_s(self, now: float) -> float:
        """Seconds until one more request may be counted (0 when it may be now)."""
        self._expire(now)
        return wait_for(self._stamps, self.limit, self.window_s, now)

    def record(self, now: float) -> None:
        self._stamps.append(now)

    def used(self, now: float) -> int:
        self._expire(now)
        return len(self._stamps)

    def reset_s(self, now: float) -> float:
        """Seconds until the oldest counted request leaves the window and frees its slot (0
        when none is counted): what a server's RateLimit-Reset says."""
        self._expire(now)
        return self._stamps[0] + self.window_s - now if self._stamps else 0.0


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After (delta-seconds; HTTP-dates are answered with None -> caller's default)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(0.0, seconds)


# --- the permit ledger: where permits live, so that several processes can share them ------------


@dataclass(frozen=True)
class BucketLimit:
    name: str
    limit: int


@dataclass(frozen=True)
class Grant:
    """Permits taken from every bucket of one request; released when its response arrives."""

    ids: tuple[int, ...]


class Ledger(Protocol):
    """Atomic permit bookkeeping over sliding windows. Implementations: MemoryLedger (one
    process) and history.ledger.SqlLedger (every process sharing the history database)."""

    def acquire(
        self, buckets: Sequence[BucketLimit], window_s: float, hold_s: float
    ) -> Grant | float:
        """Take one permit in every bucket at once, or take none and return the seconds to wait.

        A permit counts from when it is taken until its release time + window_s; an unreleased
        permit counts until taken + hold_s + window_s (its holder may have died)."""

    def release(self, grant: Grant) -> None: ...

    def block(self, bucket: str, seconds: float) -> None:
        """No permit of `bucket` is granted for `seconds` (after a 429), in every process."""

    def count(self, bucket: str, window_s: float, hold_s: float) -> int:
        """How many permits of `bucket` count against it now."""


def wait_for(stamps: Sequence[float], limit: int, window_s: float, now: float) -> float:
    """Seconds until fewer than `limit` of the sorted `stamps` (when each permit stopped being
    in use) fall within the last `window_s`; 0 when one more may be taken now."""
    horizon = now - window_s  # the same comparison as the SQL ledger's, so both agree exactly
    alive = [s for s in stamps if s > horizon]
    if len(alive) < limit:
        return 0.0
    # At least a microsecond: a wait too small to move a float clock would make callers spin.
    return max(alive[len(alive) - limit] - horizon, MIN_WAIT_S)


class MemoryLedger:
    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._now = monotonic
        self._lock = threading.Lock()
        self._permits: dict[int, tuple[str, float, float | None]] = {}  # id -> bucket, taken, done
        self._blocked: dict[str, float] = {}
        self._next_id = 1

    def _stamps(self, bucket: str, hold_s: float) -> list[float]:
        return sorted(
            done if done is not None else taken + hold_s
            for name, taken, done in self._permits.values()
            if name == bucket
        )

    def acquire(
        self, buckets: Sequence[BucketLimit], window_s: float, hold_s: float
    ) -> Grant | float:
        with self._lock:
            now = self._now()
            waits = [self._blocked.get(b.name, 0.0) - now for b in buckets]
            waits += [
                wait_for(self._stamps(b.name, hold_s), b.limit, window_s, now) for b in buckets
            ]
            if max(waits, default=0.0) > 0:
                return max(waits)
            ids = []
            for bucket in buckets:
                self._permits[self._next_id] = (bucket.name, now, None)
                ids.append(self._next_id)
                self._next_id += 1
            self._prune(now, window_s, hold_s)
            return Grant(tuple(ids))

    def _prune(self, now: float, window_s: float, hold_s: float) -> None:
        horizon = now - window_s - hold_s
        stale = [
            i for i, (_, taken, done) in self._permits.items() if (done or taken + hold_s) < horizon
        ]
        for permit_id in stale:
            del self._permits[permit_id]

    def release(self, grant: Grant) -> None:
        with self._lock:
            now = self._now()
            for permit_id in grant.ids:
                if permit_id in self._permits:
                    bucket, taken, _ = self._permits[permit_id]
                    self._permits[permit_id] = (bucket, taken, now)

    def block(self, bucket: str, seconds: float) -> None:
        with self._lock:
            until = self._now() + seconds
            self._blocked[bucket] = max(self._blocked.get(bucket, 0.0), until)

    def count(self, bucket: str, window_s: float, hold_s: float) -> int:
        with self._lock:
            now = self._now()
            return sum(1 for s in self._stamps(bucket, hold_s) if s + window_s > now)
