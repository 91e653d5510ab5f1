"""The history: the storage ports (scheduler.ports) over SQL or in memory. SQLAlchemy is
imported in this package only."""

from scheduler.history.db import make_engine
from scheduler.history.memory import memory_store
from scheduler.history.sqlstore import SqlHistoryStore, sql_store
from scheduler.history.store import HistoryStore, RetryPolicy
from scheduler.ports import (
    PlannedTask,
    PruneResult,
    RunFilter,
    TaskFilter,
    UnresolvedOperation,
    new_owner_token,
)

__all__ = [
    "HistoryStore",
    "PlannedTask",
    "PruneResult",
    "RetryPolicy",
    "RunFilter",
    "SqlHistoryStore",
    "TaskFilter",
    "UnresolvedOperation",
    "make_engine",
    "memory_store",
    "new_owner_token",
    "sql_store",
]
