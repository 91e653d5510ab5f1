"""The history database. SQLAlchemy is imported in this package only."""

from scheduler.history.db import make_engine
from scheduler.history.store import HistoryStore, PlannedTask, PruneResult, RunFilter, TaskFilter

__all__ = ["HistoryStore", "PlannedTask", "PruneResult", "RunFilter", "TaskFilter", "make_engine"]
