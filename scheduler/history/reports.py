"""The reads of client reports in SQL (scheduler.reporting.ReportReads): set-based, a few
queries for every site of a report at once, each on an index (runs by slot, tasks by run,
operations by task, inventory by site, environment and time)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Over, Select, func, select, union

from scheduler.domain import InventorySnapshot, TaskStatus
from scheduler.history.rows import utc
from scheduler.history.sql import Database
from scheduler.history.tables import inventory, operations, runs, site_actions, tasks
from scheduler.reporting import ENDED, InventoryEdge, PeriodTask

# Past this many sites a filter by name costs more than it saves: the period's tasks are read
# by the runs' slot index and filtered here (a long IN list steers the planner to the site index,
# one probe per site over the whole history).
IN_LIST_MAX = 50


class SqlReportReads:
    def __init__(self, db: Database) -> None:
        self.db = db

    def period_tasks(
        self, since: datetime, until: datetime, sites: Collection[str] | None = None
    ) -> list[PeriodTask]:
        wanted = None if sites is None else set(sites)
        ops = (
            select(func.count())
            .select_from(operations)
            .where(operations.c.task_id == tasks.c.id)
            .scalar_subquery()
        )
        query = (
            select(
                tasks.c.id,
                tasks.c.run_id,
                runs.c.job_id,
                tasks.c.site,
                tasks.c.environment,
                tasks.c.action,
                tasks.c.status,
                tasks.c.message,
                tasks.c.versions_before,
                tasks.c.versions_after,
                tasks.c.result,
                tasks.c.finished_at,
                tasks.c.started_at,
                runs.c.scheduled_for,
                ops.label("ops"),
            )
            .join(runs, runs.c.id == tasks.c.run_id)
            .where(
                runs.c.scheduled_for >= since,
                runs.c.scheduled_for < until,
                tasks.c.status.in_([s.value for s in ENDED]),
            )
        )
        if wanted is not None and len(wanted) <= IN_LIST_MAX:
            query = query.where(tasks.c.site.in_(sorted(wanted)))
        with self.db.tx() as tx:
            rows = tx.execute(query).all()
        found = [_period_task(r) for r in rows if wanted is None or r.site in wanted]
        return sorted(found, key=lambda t: (t.at, t.task_id))

    def inventory_edges(
        self, since: datetime, until: datetime, sites: Collection[str] | None = None
    ) -> list[InventoryEdge]:
        wanted = None if sites is None else set(sites)
        with self.db.tx() as tx:
            last = _snapshots(tx, _ranked(inventory.c.taken_at < until, newest=True), wanted)
            first = _snapshots(tx, _ranked(inventory.c.taken_at <= since, newest=True), wanted)
            if set(last) - set(first):
                inside = (inventory.c.taken_at > since) & (inventory.c.taken_at < until)
                first = {**_snapshots(tx, _ranked(inside, newest=False), wanted), **first}
        return [
            InventoryEdge(site, environment, first[site, environment], snapshot)
            for (site, environment), snapshot in sorted(last.items())
        ]

    def known_sites(self) -> set[str]:
        query = union(select(site_actions.c.site).distinct(), select(inventory.c.site).distinct())
        with self.db.tx() as tx:
            return {str(site) for site in tx.execute(query).scalars()}


def _period_task(row: Any) -> PeriodTask:
    at = row.finished_at or row.started_at or row.scheduled_for
    return PeriodTask(
        task_id=row.id,
        run_id=row.run_id,
        job_id=row.job_id,
        site=row.site,
        environment=row.environment,
        action=row.action,
        status=TaskStatus(row.status),
        at=utc(at),
        message=row.message,
        versions_before=row.versions_before,
        versions_after=row.versions_after,
        result=row.result,
        operations=int(row.ops or 0),
    )


def _ranked(condition: ColumnElement[bool], *, newest: bool) -> Select[Any]:
    """Each environment's snapshots meeting `condition`, ranked (1: the newest, or the oldest),
    on the narrow columns only: the winners' JSON is read afterwards."""
    order = (inventory.c.taken_at.desc(), inventory.c.id.desc())
    if not newest:
        order = (inventory.c.taken_at.asc(), inventory.c.id.asc())
    rank: Over[int] = func.row_number().over(
        partition_by=(inventory.c.site, inventory.c.environment), order_by=order
    )
    return select(inventory.c.id, inventory.c.site, rank.label("rank")).where(condition)


def _snapshots(
    tx: Any, ranked: Select[Any], wanted: set[str] | None
) -> dict[tuple[str, str], InventorySnapshot]:
    if wanted is not None and len(wanted) <= IN_LIST_MAX:
        ranked = ranked.where(inventory.c.site.in_(sorted(wanted)))
    sub = ranked.subquery()
    query = select(inventory).where(inventory.c.id.in_(select(sub.c.id).where(sub.c.rank == 1)))
    found = {}
    for r in tx.execute(query).all():
        if wanted is not None and r.site not in wanted:
            continue
        found[r.site, r.environment] = InventorySnapshot(
            site=r.site,
            environment=r.environment,
            taken_at=utc(r.taken_at),
            php_version=r.php_version,
            wordpress_version=r.wordpress_version,
            plugins=tuple(r.plugins or ()),
            themes=tuple(r.themes or ()),
            backups=tuple(r.backups or ()),
            run_id=r.run_id,
        )
    return found
