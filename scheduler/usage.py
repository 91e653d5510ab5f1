"""Requests per minute, kept for the dashboard's budget page: the governors count each request
sent (`RequestCounter.count`, a dict increment under a lock: no I/O on the request path), and a
writer (scheduler.history.usage) adds the counts to history every few seconds. The shared rate
ledger cannot answer "how many requests per minute over the last hours": it keeps only the
current window's permits."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class RequestMinute:
    scope: str  # the key's fingerprint (as governor events name it), never the key
    minute: datetime  # the minute's start, UTC
    requests: int


class RequestLog(Protocol):
    """Requests per key and minute in history."""

    def add_request_minutes(self, counts: Sequence[RequestMinute]) -> None:
        """Add these counts to what is recorded (processes sharing a key add to one row)."""

    def request_minutes(self, since: datetime) -> list[RequestMinute]:
        """The minutes from `since` on, oldest first (then by scope)."""


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


class RequestCounter:
    """Requests per (scope, minute) since the last `drain`."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, datetime], int] = {}

    def count(self, scope: str) -> None:
        key = (scope, minute_of(self._now()))
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def drain(self) -> list[RequestMinute]:
        with self._lock:
            counts, self._counts = self._counts, {}
        return [RequestMinute(scope, minute, n) for (scope, minute), n in sorted(counts.items())]

    def give_back(self, counts: Sequence[RequestMinute]) -> None:
        """Counts a write could not store, kept for the next one."""
        with self._lock:
            for row in counts:
                key = (row.scope, row.minute)
                self._counts[key] = self._counts.get(key, 0) + row.requests
