"""The history in memory: every storage port, behaving as the SQL store does (the contract suite
in tests/contract runs over both). For fast tests of the runner and the daemon, and anywhere a
history need not outlive the process. Thread-safe: one lock over every table."""

from __future__ import annotations

from scheduler.history.memory.fleet import MemorySiteReads
from scheduler.history.memory.pauses import MemoryPauseBook
from scheduler.history.memory.quarantine import MemoryQuarantine
from scheduler.history.memory.records import (
    MemoryCatalogue,
    MemoryEventLog,
    MemoryHistoryQueries,
    MemoryMaintenance,
)
from scheduler.history.memory.reports import MemoryReportReads
from scheduler.history.memory.runs import MemoryRunLedger
from scheduler.history.memory.state import MemoryState
from scheduler.history.memory.tasks import MemoryEnvironmentLocks, MemoryTaskLog
from scheduler.history.memory.usage import MemoryRequestLog
from scheduler.history.store import HistoryStore

__all__ = ["MemoryState", "memory_store"]


def memory_store(state: MemoryState | None = None) -> HistoryStore:
    """A store over `state` (a new, empty one by default)."""
    state = state or MemoryState()
    return HistoryStore(
        runs=MemoryRunLedger(state),
        tasks=MemoryTaskLog(state),
        locks=MemoryEnvironmentLocks(state),
        events=MemoryEventLog(state),
        catalogue=MemoryCatalogue(state),
        queries=MemoryHistoryQueries(state),
        maintenance=MemoryMaintenance(state),
        quarantine=MemoryQuarantine(state),
        pauses=MemoryPauseBook(state),
        reports=MemoryReportReads(state),
        requests=MemoryRequestLog(state),
        sites=MemorySiteReads(state),
    )
