"""What the sandbox counts about the requests it served (GET /_sandbox/stats)."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any


def max_in_window(stamps: list[float], window_s: float) -> int:
    """The most requests in any window of `window_s` seconds (stamps in order)."""
    best, start = 0, 0
    for end, stamp in enumerate(stamps):
        while stamp - stamps[start] >= window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


FAULT_LOG_SIZE = 1000


@dataclass
class Stats:
    requests: int = 0
    rate_limited: int = 0
    rate_limited_by: Counter[str] = field(default_factory=Counter)  # the bucket that refused
    violations: list[str] = field(default_factory=list)
    response_violations: list[str] = field(default_factory=list)
    canned: Counter[str] = field(default_factory=Counter)  # answered from the spec's examples
    by_operation: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    fault_log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=FAULT_LOG_SIZE))
    arrivals: list[float] = field(default_factory=list)

    def max_in_window(self, window_s: float) -> int:
        return max_in_window(self.arrivals, window_s)
