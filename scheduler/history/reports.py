"""The reads of client reports in SQL (scheduler.reporting.ReportReads): set-based, a few
queries for every site of a report at once, each on an index (runs by slot, tasks by run,
operations by task, inventory by site, environment and time)."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Over, Select, Text, func, select, type_coerce, union

from scheduler.domain import InventorySnapshot, TaskStatus
from scheduler.history.rows import snapshot_from, utc
from scheduler.history.sql import Database
from scheduler.history.tables import (
    governor_events,
    inventory,
    operations,
    request_minutes,
    runs,
    site_actions,
    tasks,
)
from scheduler.reporting import ENDED, RATE_LIMITED, InventoryEdge, PeriodTask

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
        # One time per task (its end, else its start, else its run's slot), converted once.
        at = func.coalesce(tasks.c.finished_at, tasks.c.started_at, runs.c.scheduled_for)
        columns = (
            *(tasks.c[n] for n in ("id", "run_id", "site", "environment", "action", "status")),
            tasks.c.message,
            # As stored: decoded here only when present (most tasks have none).
            *(
                type_coerce(tasks.c[n], Text)
                for n in ("versions_before", "versions_after", "result")
            ),
            runs.c.job_id,
            type_coerce(at, Text).label("at"),  # parsed in _time
            ops.label("ops"),
        )
        query = (
            select(*columns)
            .join(runs, runs.c.id == tasks.c.run_id)
            .where(
                runs.c.scheduled_for >= since,
                runs.c.scheduled_for < until,
                tasks.c.status.in_([s.value for s in ENDED]),
            )
            .order_by(at, tasks.c.id)
        )
        if wanted is not None and len(wanted) <= IN_LIST_MAX:
            query = query.where(tasks.c.site.in_(sorted(wanted)))
        with self.db.tx() as tx:
            rows = tx.execute(query).all()
        found = [_period_task(r) for r in rows if wanted is None or r[2] in wanted]
        return found

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

    def requests_by_hour(
        self, since: datetime, until: datetime, scopes: Collection[str] | None = None
    ) -> dict[datetime, int]:
        # Summed per hour in the database (a month is some 43,000 minutes per key).
        minute = request_minutes.c.minute
        hour = self._truncated(minute, "hour")
        query = (
            select(hour.label("hour"), func.sum(request_minutes.c.requests))
            .where(minute >= since, minute < until)
            .group_by(hour)
        )
        if scopes is not None:
            query = query.where(request_minutes.c.scope.in_(sorted(set(scopes))))
        with self.db.tx() as tx:
            return {_truncated_time(at): int(requests) for at, requests in tx.execute(query)}

    def rate_limited_by_minute(
        self, since: datetime, until: datetime, scopes: Collection[str] | None = None
    ) -> dict[datetime, int]:
        # Counted in the database over exactly the window (on the events' time index): no
        # limit, so a busy month after the period cannot crowd the period's 429s out.
        at = governor_events.c.at
        minute = self._truncated(at, "minute")
        query = (
            select(minute.label("minute"), func.count())
            .where(at >= since, at < until, governor_events.c.kind == RATE_LIMITED)
            .group_by(minute)
        )
        if scopes is not None:
            query = query.where(governor_events.c.scope.in_(sorted(set(scopes))))
        with self.db.tx() as tx:
            return {_truncated_time(at): int(n) for at, n in tx.execute(query)}

    def _truncated(self, column: Any, unit: str) -> Any:
        """`column`'s hour or minute: PostgreSQL's UTC wall time truncated, or the start of
        SQLite's text ("YYYY-MM-DD HH" or "YYYY-MM-DD HH:MM")."""
        if self.db.postgres:
            return func.date_trunc(unit, func.timezone("UTC", column))
        return func.substr(type_coerce(column, Text), 1, 13 if unit == "hour" else 16)

    def known_sites(self) -> set[str]:
        query = union(select(site_actions.c.site).distinct(), select(inventory.c.site).distinct())
        with self.db.tx() as tx:
            return {str(site) for site in tx.execute(query).scalars()}


STATUSES = {status.value: status for status in TaskStatus}


def _period_task(row: Any) -> PeriodTask:
    # By position, in the dataclass's order: tens of thousands of rows, the query's own columns.
    task_id, run_id, site, environment, action, status, message, before, after, result = row[:10]
    return PeriodTask(
        task_id, run_id, row[10], site, environment, action, STATUSES[status], _time(row[11]),
        message, _json(before), _json(after), _json(result), int(row[12] or 0),
    )  # fmt: skip


def _time(value: Any) -> datetime:
    """A time read as text (SQLite keeps UTC without a zone), or as PostgreSQL gave it."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return utc(value)


def _truncated_time(value: Any) -> datetime:
    """An hour's or a minute's start: "YYYY-MM-DD HH[:MM]" (SQLite) or a UTC wall time
    (PostgreSQL)."""
    if isinstance(value, str):
        text = value + ":00" if len(value) == 13 else value
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    return utc(value.replace(tzinfo=UTC) if value.tzinfo is None else value)


def _json(value: Any) -> Any:
    """A JSON column read as text (SQLite), or as PostgreSQL's driver decoded it."""
    return json.loads(value) if isinstance(value, str) else value


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
        found[r.site, r.environment] = snapshot_from(r)
    return found
