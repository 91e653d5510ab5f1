"""The read side in SQL: the query shapes of the CLI (and the coming dashboard)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, and_, exists, select

from scheduler.domain import OperationState, Run, SiteAction, Task
from scheduler.durations import operation_duration_s, typical_duration_s, typical_polls
from scheduler.history.rows import run_from, site_action_from, task_from
from scheduler.history.sql import Database, get_run, period
from scheduler.history.tables import operations, run_waves, runs, site_actions, tasks
from scheduler.ports import RunFilter, TaskFilter
from scheduler.rollout import WaveRecord


class SqlHistoryQueries:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get_run(self, run_id: int) -> Run | None:
        with self.db.tx() as tx:
            return get_run(tx, run_id)

    def run_waves(self, run_id: int) -> list[WaveRecord]:
        query = select(run_waves).where(run_waves.c.run_id == run_id).order_by(run_waves.c.wave)
        with self.db.tx() as tx:
            return [
                WaveRecord(
                    index=row.wave,
                    name=row.name,
                    targets=row.targets,
                    status=row.status,
                    done=row.done,
                    failed=row.failed,
                    rolled_back=row.rolled_back,
                    started_at=row.started_at,
                    ended_at=row.ended_at,
                )
                for row in tx.execute(query)
            ]

    def list_runs(self, where: RunFilter) -> list[Run]:
        conditions = period(where.since, where.until)
        if where.job_id:
            conditions.append(runs.c.job_id == where.job_id)
        if where.status:
            conditions.append(runs.c.status == where.status)
        if where.site:
            conditions.append(
                exists().where(and_(tasks.c.run_id == runs.c.id, tasks.c.site == where.site))
            )
        query = (
            select(runs)
            .where(*conditions)
            .order_by(runs.c.scheduled_for.desc(), runs.c.id.desc())
            .limit(where.limit)
        )
        with self.db.tx() as tx:
            rows = tx.execute(query).all()
        return [run_from(r) for r in rows]

    def list_tasks(self, where: TaskFilter) -> list[Task]:
        conditions = period(where.since, where.until)
        for column, value in (
            (tasks.c.run_id, where.run_id),
            (runs.c.job_id, where.job_id),
            (tasks.c.site, where.site),
            (tasks.c.action, where.action),
            (tasks.c.status, where.status),
        ):
            if value is not None:
                conditions.append(column == value)
        query = select(tasks).join(runs, runs.c.id == tasks.c.run_id).where(*conditions)
        if where.run_id is not None:
            query = query.order_by(tasks.c.position)
        else:
            query = query.order_by(runs.c.scheduled_for.desc(), tasks.c.position)
        with self.db.tx() as tx:
            rows = tx.execute(query.limit(where.limit)).all()
        return [task_from(r) for r in rows]

    def site_actions(self, site: str | None = None) -> list[SiteAction]:
        query = select(site_actions).order_by(
            site_actions.c.site, site_actions.c.environment, site_actions.c.action
        )
        if site is not None:
            query = query.where(site_actions.c.site == site)
        with self.db.tx() as tx:
            rows = tx.execute(query).all()
        return [site_action_from(r) for r in rows]

    def typical_durations(self, actions: Sequence[str], *, samples: int = 50) -> dict[str, float]:
        """Per action, the typical duration (scheduler.durations) of its last `samples` successful
        operations (at least five needed)."""
        columns = (operations.c.started_at, operations.c.finished_at, operations.c.events)
        found: dict[str, float] = {}
        with self.db.tx() as tx:
            for action in set(actions):
                rows = tx.execute(_recent_successes(columns, action, samples)).all()
                typical = typical_duration_s(
                    operation_duration_s(r.started_at, r.finished_at, r.events) for r in rows
                )
                if typical is not None:
                    found[action] = typical
        return found

    def typical_polls(self, actions: Sequence[str], *, samples: int = 50) -> dict[str, float]:
        """Per action, the mean poll count of its last `samples` successful operations
        (scheduler.durations; at least five needed)."""
        found: dict[str, float] = {}
        with self.db.tx() as tx:
            for action in set(actions):
                polls = tx.execute(
                    _recent_successes((operations.c.polls,), action, samples)
                ).scalars()
                typical = typical_polls(int(n) for n in polls)
                if typical is not None:
                    found[action] = typical
        return found


def _recent_successes(columns: Sequence[Any], action: str, samples: int) -> Select[Any]:
    """`columns` of the action's last `samples` operations that succeeded, newest first."""
    return (
        select(*columns)
        .where(
            operations.c.action == action,
            operations.c.state == OperationState.SUCCEEDED.value,
            operations.c.finished_at.is_not(None),
        )
        .order_by(operations.c.id.desc())
        .limit(samples)
    )
