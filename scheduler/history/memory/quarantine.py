"""Quarantine in memory, as the SQL store keeps it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from scheduler.history.memory.state import MemoryState, aware, maybe
from scheduler.ports import QUARANTINED_BY_ROLLBACK, QuarantineEntry


class MemoryQuarantine:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    def add(self, entry: QuarantineEntry) -> QuarantineEntry:
        entry = replace(entry, added_at=aware(entry.added_at), released_at=None)
        key = (entry.kind, entry.name, entry.version)
        with self._s.lock:
            known = self._s.quarantine.get(key)
            if known is None or not known.active:
                self._s.quarantine[key] = entry
            elif entry.added_by == QUARANTINED_BY_ROLLBACK:
                self._s.quarantine[key] = replace(known, rollbacks=known.rollbacks + 1)
            return self._s.quarantine[key]

    def held(
        self, kind: str, offered: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], QuarantineEntry]:
        with self._s.lock:
            found = ((n, v, self._s.quarantine.get((kind, n, v))) for n, v in set(offered))
            return {(n, v): e for n, v, e in found if e is not None and e.active}

    def release(self, name: str, version: str | None, now: datetime) -> list[QuarantineEntry]:
        released_at = maybe(now)
        with self._s.lock:
            keys = sorted(
                key
                for key, entry in self._s.quarantine.items()
                if entry.name == name and entry.active and version in (None, entry.version)
            )
            for key in keys:
                self._s.quarantine[key] = replace(self._s.quarantine[key], released_at=released_at)
            return [self._s.quarantine[key] for key in keys]

    def entries(self, *, released: bool = False) -> list[QuarantineEntry]:
        with self._s.lock:
            return [
                self._s.quarantine[key]
                for key in sorted(self._s.quarantine)
                if released or self._s.quarantine[key].active
            ]
