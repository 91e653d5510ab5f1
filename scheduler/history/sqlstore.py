"""The SQL store: every port over one engine (SQLite or PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from scheduler.clock import Clock, SystemClock
from scheduler.history.catalogue import SqlCatalogue
from scheduler.history.events import SqlEventLog
from scheduler.history.fleet import SqlSiteReads
from scheduler.history.locks import SqlEnvironmentLocks
from scheduler.history.maintenance import SqlMaintenance
from scheduler.history.pauses import SqlPauseBook
from scheduler.history.quarantine import SqlQuarantine
from scheduler.history.queries import SqlHistoryQueries
from scheduler.history.reports import SqlReportReads
from scheduler.history.runs import SqlRunLedger
from scheduler.history.sql import Database
from scheduler.history.store import HistoryStore, RetryPolicy
from scheduler.history.tasks import SqlTaskLog
from scheduler.history.usage import SqlRequestLog


@dataclass(eq=False)
class SqlHistoryStore(HistoryStore):
    engine: Engine = field(kw_only=True)


def sql_store(
    engine: Engine, *, retry_s: float = 0.0, clock: Clock | None = None
) -> SqlHistoryStore:
    """The history in this database. `retry_s`: how long writes retry while it cannot be
    reached (the daemon's `db_retry`), waiting on `clock`."""
    retry = RetryPolicy(retry_s)
    db = Database(engine, clock or SystemClock(), retry)
    return SqlHistoryStore(
        runs=SqlRunLedger(db),
        tasks=SqlTaskLog(db),
        locks=SqlEnvironmentLocks(db),
        events=SqlEventLog(db),
        catalogue=SqlCatalogue(db),
        queries=SqlHistoryQueries(db),
        maintenance=SqlMaintenance(db),
        quarantine=SqlQuarantine(db),
        pauses=SqlPauseBook(db),
        reports=SqlReportReads(db),
        requests=SqlRequestLog(db),
        sites=SqlSiteReads(db),
        retry=retry,
        _close=engine.dispose,
        engine=engine,
    )
