"""Requests per key and minute, in memory (the SQL twin is scheduler.history.usage)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from scheduler.history.memory.state import MemoryState, aware
from scheduler.usage import RequestMinute


class MemoryRequestLog:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    def add_request_minutes(self, counts: Sequence[RequestMinute]) -> None:
        with self._s.lock:
            for row in counts:
                key = (row.scope, aware(row.minute))
                self._s.request_minutes[key] = self._s.request_minutes.get(key, 0) + row.requests

    def request_minutes(self, since: datetime) -> list[RequestMinute]:
        since = aware(since)
        with self._s.lock:
            found = [
                RequestMinute(scope, minute, n)
                for (scope, minute), n in self._s.request_minutes.items()
                if minute >= since
            ]
        return sorted(found, key=lambda r: (r.minute, r.scope))

    def prune_request_minutes(self, older_than: datetime) -> None:
        with self._s.lock:
            for key in [k for k in self._s.request_minutes if k[1] < older_than]:
                del self._s.request_minutes[key]
