"""The rate governor: every request waits here for a permit from each bucket it counts against.

Buckets (limits from jobs.yaml `kinsta.rate_limits`):
- company  - every request made with the company's key (120/min);
- ip       - every request from this process (1000/min; matters with several companies);
- creation - requests that create resources (5/min), see CREATION_ENDPOINTS;
- logs     - the logs endpoint (35/min).
A request takes its permits from all its buckets at once, so it never holds company budget while
it waits for a creation slot. This governor is in-process; processes sharing a key coordinate
through the history database in a later version (see the README's limits section).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol

from scheduler.clock import Clock
from scheduler.domain import RateLimits
from scheduler.ratelimit import SlidingWindow

SAFETY_MARGIN_S = 0.5
DEFAULT_BLOCK_S = 60.0

# (method, path pattern) of requests that create resources: the 5/min creation bucket.
CREATION_ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("POST", r"/sites"),
    ("POST", r"/sites/clone"),
    ("POST", r"/sites/plain"),
    ("POST", r"/sites/[^/]+/environments"),
    ("POST", r"/sites/[^/]+/environments/plain"),
    ("POST", r"/sites/[^/]+/environments/clone"),
)
LOGS_ENDPOINT = ("GET", r"/sites/environments/[^/]+/logs")


def buckets_for(method: str, path: str) -> tuple[str, ...]:
    names = ["company", "ip"]
    if any(method == m and re.fullmatch(p, path) for m, p in CREATION_ENDPOINTS):
        names.append("creation")
    if method == LOGS_ENDPOINT[0] and re.fullmatch(LOGS_ENDPOINT[1], path):
        names.append("logs")
    return tuple(names)


@dataclass(frozen=True)
class Permit:
    buckets: tuple[str, ...]
    waited_s: float


class Governor(Protocol):
    def permit(self, method: str, path: str) -> AbstractContextManager[Permit]:
        """Block until the request may be sent; the context ends when its response arrived."""

    def blocked(self, seconds: float) -> None:
        """Kinsta said slow down: no request starts for `seconds`."""


class InProcessGovernor:
    def __init__(self, limits: RateLimits, clock: Clock, margin_s: float = SAFETY_MARGIN_S) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        window = limits.window_s
        margin_s = min(margin_s, window / 100)  # scaled-down windows get a scaled-down margin
        self._windows = {
            "company": SlidingWindow(limits.per_minute, window, margin_s),
            "ip": SlidingWindow(limits.per_ip_per_minute, window, margin_s),
            "creation": SlidingWindow(limits.creation_per_minute, window, margin_s),
            "logs": SlidingWindow(limits.logs_per_minute, window, margin_s),
        }
        self._blocked_until = 0.0
        self.total_wait_s = 0.0
        self.requests = 0

    def _wait_s(self, buckets: tuple[str, ...], now: float) -> float:
        waits = [self._windows[b].wait_s(now) for b in buckets]
        return max([self._blocked_until - now, *waits])

    @contextmanager
    def permit(self, method: str, path: str) -> Iterator[Permit]:
        buckets = buckets_for(method, path)
        started = self._clock.monotonic()
        with self._cond:
            while (wait := self._wait_s(buckets, self._clock.monotonic())) > 0:
                self._cond.wait(timeout=wait)
            for name in buckets:
                self._windows[name].start()
            self.requests += 1
        waited = self._clock.monotonic() - started
        self.total_wait_s += waited
        try:
            yield Permit(buckets, waited)
        finally:
            with self._cond:
                now = self._clock.monotonic()
                for name in buckets:
                    self._windows[name].finish(now)
                self._cond.notify_all()

    def blocked(self, seconds: float) -> None:
        with self._cond:
            self._blocked_until = max(self._blocked_until, self._clock.monotonic() + seconds)
            self._cond.notify_all()
