"""Pure rate-limit arithmetic: (state, now) -> wait / new state. No I/O, no locks, no sleeping.

A sliding-window log admits a request when fewer than `limit` requests were counted in the last
`window_s` seconds. Unlike a token bucket configured as "N per W" (which lets almost 2N through in
the first window), it never exceeds N in any window, which is what a server enforcing N/W checks.
A request is stamped when its response arrives (not when it was sent): the server counted it at
some instant in between, so holding its slot until `response + W` is safe whatever the server's
window algorithm, at the cost of one latency per window.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class SlidingWindow:
    limit: int
    window_s: float
    margin_s: float = 0.0
    _stamps: deque[float] = field(default_factory=deque)
    _in_flight: int = 0

    def _expire(self, now: float) -> None:
        horizon = now - self.window_s - self.margin_s
        while self._stamps and self._stamps[0] <= horizon:
            self._stamps.popleft()

    def wait_s(self, now: float) -> float:
        """Seconds until one more request may start (0 when it may start now)."""
        self._expire(now)
        used = len(self._stamps) + self._in_flight
        if used < self.limit:
            return 0.0
        if not self._stamps:
            return self.window_s  # every slot is held by requests still in flight
        index = used - self.limit  # the stamp whose expiry frees a slot
        if index >= len(self._stamps):
            return self.window_s
        return max(0.0, self._stamps[index] + self.window_s + self.margin_s - now)

    def start(self) -> None:
        """A request was admitted; it holds a slot until finish()."""
        self._in_flight += 1

    def finish(self, now: float) -> None:
        """The admitted request's response arrived at `now`."""
        self._in_flight = max(0, self._in_flight - 1)
        self._stamps.append(now)

    def used(self, now: float) -> int:
        self._expire(now)
        return len(self._stamps) + self._in_flight


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After (delta-seconds; HTTP-dates are answered with None -> caller's default)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(0.0, seconds)
