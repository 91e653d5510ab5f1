"""The history database. SQLAlchemy is imported in this package only."""

from scheduler.history.db import make_engine
from scheduler.history.store import (
    HistoryStore,
    PlannedTask,
    PruneResult,
    RunFilter,
    TaskFilter,
    UnresolvedOperation,
)

__all__ = [
    "HistoryStore",
    "PlannedTask",
    "PruneResult",
    "RunFilter",
    "TaskFilter",
    "UnresolvedOperation",
    "make_engine",
]
