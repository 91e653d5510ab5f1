"""HistoryStore: the storage ports composed into one object the core is handed. Built by
scheduler.history.sql_store (SQLite or PostgreSQL) or scheduler.history.memory_store."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from scheduler.fleetquery import SiteReads
from scheduler.pauses import PauseBook
from scheduler.ports import (
    Catalogue,
    EnvironmentLocks,
    EventLog,
    HistoryQueries,
    Maintenance,
    Quarantine,
    RunLedger,
    TaskLog,
)
from scheduler.reporting import ReportReads
from scheduler.usage import RequestLog


@dataclass
class RetryPolicy:
    """How long writes the daemon cannot afford to lose are retried while the database cannot
    be reached (`retry_s`; 0: not at all), and the event that ends retrying (shutdown)."""

    retry_s: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)


def _nothing() -> None:
    return None


@dataclass(eq=False)
class HistoryStore:
    runs: RunLedger
    tasks: TaskLog
    locks: EnvironmentLocks
    events: EventLog
    catalogue: Catalogue
    queries: HistoryQueries
    maintenance: Maintenance
    quarantine: Quarantine
    pauses: PauseBook
    reports: ReportReads
    requests: RequestLog
    sites: SiteReads
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    _close: Callable[[], None] = field(default=_nothing, repr=False)

    @property
    def stop(self) -> threading.Event:
        """Set at shutdown: no more retries (the write is left for the next start)."""
        return self.retry.stop

    @stop.setter
    def stop(self, event: threading.Event) -> None:
        self.retry.stop = event

    @property
    def retry_s(self) -> float:
        return self.retry.retry_s

    @retry_s.setter
    def retry_s(self, seconds: float) -> None:
        self.retry.retry_s = seconds

    def close(self) -> None:
        """Release what the store holds (a SQL engine's connections)."""
        self._close()
