"""The history database. SQLAlchemy is imported in this package only."""

from scheduler.history.db import make_engine
from scheduler.history.store import HistoryStore, PlannedTask, RunFilter, TaskFilter

__all__ = ["HistoryStore", "PlannedTask", "RunFilter", "TaskFilter", "make_engine"]
