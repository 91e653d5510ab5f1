"""Maintenance in SQL: pruning old history in batches, planner statistics, a liveness ping."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import Connection, delete, func, select

from scheduler.domain import RunStatus
from scheduler.history.catalogue import SqlCatalogue
from scheduler.history.events import EVENT_TABLES
from scheduler.history.sql import Database
from scheduler.history.tables import operations, run_waves, runs, tasks
from scheduler.history.usage import SqlRequestLog
from scheduler.ports import PruneResult

PRUNE_BATCH = 500


class SqlMaintenance:
    def __init__(self, db: Database) -> None:
        self.db = db

    def prune(self, older_than: datetime, keep_last: int, *, dry_run: bool = False) -> PruneResult:
        """Deletes in batches, so the daemon and other readers are never blocked for long."""
        newest = func.row_number().over(
            partition_by=runs.c.job_id, order_by=runs.c.scheduled_for.desc()
        )
        ranked = select(
            runs.c.id, runs.c.scheduled_for, runs.c.status, newest.label("rank")
        ).subquery()
        doomed = select(ranked.c.id).where(
            ranked.c.rank > keep_last,
            ranked.c.scheduled_for < older_than,
            ranked.c.status != RunStatus.RUNNING.value,
        )
        with self.db.tx() as tx:
            ids = [int(i) for i in tx.execute(doomed).scalars()]
            counts = replace(_counts(tx, ids), events=_count_events(tx, older_than))
        if not dry_run:
            SqlCatalogue(self.db).prune_inventory(older_than)
            SqlRequestLog(self.db).prune_request_minutes(older_than)
            self._prune_events(older_than)
            self._prune_runs(ids)
        return counts

    def _prune_runs(self, ids: list[int]) -> None:
        for start in range(0, len(ids), PRUNE_BATCH):
            batch = ids[start : start + PRUNE_BATCH]
            with self.db.tx() as tx:
                task_ids = select(tasks.c.id).where(tasks.c.run_id.in_(batch))
                tx.execute(delete(operations).where(operations.c.task_id.in_(task_ids)))
                tx.execute(delete(tasks).where(tasks.c.run_id.in_(batch)))
                tx.execute(delete(run_waves).where(run_waves.c.run_id.in_(batch)))
                tx.execute(delete(runs).where(runs.c.id.in_(batch)))

    def _prune_events(self, older_than: datetime) -> None:
        """Delete the event logs' rows from before `older_than`, a batch per transaction."""
        for table in EVENT_TABLES:
            while True:
                with self.db.tx() as tx:
                    found = select(table.c.id).where(table.c.at < older_than).limit(PRUNE_BATCH)
                    ids = [int(i) for i in tx.execute(found).scalars()]
                    if not ids:
                        break
                    tx.execute(delete(table).where(table.c.id.in_(ids)))

    def optimize(self) -> None:
        """SQLite: PRAGMA optimize (what its docs advise for long-lived connections);
        PostgreSQL's autovacuum already analyses."""
        if self.db.postgres:
            return
        with self.db.tx() as tx:
            tx.exec_driver_sql("PRAGMA optimize")

    def ping(self) -> None:
        with self.db.tx() as tx:
            tx.execute(select(1))


def _counts(tx: Connection, run_ids: list[int]) -> PruneResult:
    task_count = operation_count = 0
    for start in range(0, len(run_ids), PRUNE_BATCH):
        batch = run_ids[start : start + PRUNE_BATCH]
        task_count += tx.execute(select(func.count()).where(tasks.c.run_id.in_(batch))).scalar_one()
        operation_count += tx.execute(
            select(func.count())
            .select_from(operations.join(tasks, tasks.c.id == operations.c.task_id))
            .where(tasks.c.run_id.in_(batch))
        ).scalar_one()
    return PruneResult(len(run_ids), task_count, operation_count)


def _count_events(tx: Connection, older_than: datetime) -> int:
    """Rows of the event logs (governor, daemon, notifications) from before `older_than`."""
    return sum(
        tx.execute(
            select(func.count()).select_from(table).where(table.c.at < older_than)
        ).scalar_one()
        for table in EVENT_TABLES
    )
