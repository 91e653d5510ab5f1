"""TaskLog in SQL: tasks, the operations they start and each operation's timeline; the
site_actions summary kept at each (site, environment, action)'s latest outcome."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, exists, insert, select, update

from scheduler.domain import (
    FINAL_OPERATION_STATES,
    OperationEvent,
    OperationRecord,
    OperationState,
    Task,
    TaskStatus,
)
from scheduler.history.rows import (
    FINAL_STATE_VALUES,
    event_json,
    latest_outcome,
    operation_from,
    task_from,
    utc,
)
from scheduler.history.sql import Database, retried
from scheduler.history.tables import operations, site_actions, tasks
from scheduler.ports import UnresolvedOperation


class SqlTaskLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    @retried
    def start_task(self, task_id: int, now: datetime, *, owner: str | None = None) -> None:
        with self.db.tx() as tx:
            self.db.check_task_owner(tx, task_id, owner)
            tx.execute(
                update(tasks)
                .where(tasks.c.id == task_id)
                .values(
                    status=TaskStatus.RUNNING.value, started_at=now, attempts=tasks.c.attempts + 1
                )
            )

    @retried
    def count_attempt(self, task_id: int) -> None:
        with self.db.tx() as tx:
            tx.execute(
                update(tasks).where(tasks.c.id == task_id).values(attempts=tasks.c.attempts + 1)
            )

    @retried
    def finish_task(
        self,
        task_id: int,
        status: TaskStatus,
        now: datetime,
        message: str | None,
        *,
        result: Mapping[str, Any] | None = None,
        versions_before: Mapping[str, Any] | None = None,
        versions_after: Mapping[str, Any] | None = None,
        owner: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status.value, "finished_at": now, "message": message}
        for column, value in (
            ("result", result),
            ("versions_before", versions_before),
            ("versions_after", versions_after),
        ):
            if value is not None:
                values[column] = dict(value)
        with self.db.tx() as tx:
            self.db.check_task_owner(tx, task_id, owner)
            tx.execute(update(tasks).where(tasks.c.id == task_id).values(values))
            self._summarise(tx, task_id, status, now, message)

    def _summarise(
        self, tx: Connection, task_id: int, status: TaskStatus, now: datetime, message: str | None
    ) -> None:
        """Keep site_actions at each (site, environment, action)'s latest outcome."""
        task = tx.execute(
            select(tasks.c.site, tasks.c.environment, tasks.c.action, tasks.c.run_id).where(
                tasks.c.id == task_id
            )
        ).one()
        latest = latest_outcome(task.run_id, status, now, message)
        statement = self.db.upsert(site_actions).values(
            site=task.site, environment=task.environment, action=task.action, **latest
        )
        tx.execute(
            statement.on_conflict_do_update(
                index_elements=["site", "environment", "action"],
                set_={key: statement.excluded[key] for key in latest},
                where=site_actions.c.last_finished_at <= statement.excluded.last_finished_at,
            )
        )

    @retried
    def start_operation(
        self,
        task_id: int,
        operation_id: str,
        action: str,
        now: datetime,
        *,
        owner: str | None = None,
    ) -> int:
        event = event_json(OperationEvent(now, OperationState.PENDING, 202, "accepted"))
        with self.db.tx() as tx:
            self.db.check_task_owner(tx, task_id, owner)
            tx.execute(
                update(tasks)
                .where(tasks.c.id == task_id)
                .values(operation_id=operation_id, operation_status=OperationState.PENDING.value)
            )
            row = {"task_id": task_id, "operation_id": operation_id, "action": action}
            row |= {"state": OperationState.PENDING.value, "started_at": now, "events": [event]}
            return int(
                tx.execute(insert(operations).values(row).returning(operations.c.id)).scalar_one()
            )

    @retried
    def operation_event(
        self, row_id: int, event: OperationEvent, polls: int, *, owner: str | None = None
    ) -> None:
        with self.db.tx() as tx:
            row = tx.execute(
                select(operations.c.events, operations.c.task_id).where(operations.c.id == row_id)
            ).one()
            self.db.check_task_owner(tx, row.task_id, owner)
            values: dict[str, Any] = {
                "state": event.state.value,
                "polls": polls,
                "events": [*(row.events or []), event_json(event)],
                "message": event.message,
            }
            if event.state in FINAL_OPERATION_STATES:
                values["finished_at"] = event.at
            tx.execute(update(operations).where(operations.c.id == row_id).values(values))
            tx.execute(
                update(tasks)
                .where(tasks.c.id == row.task_id)
                .values(operation_status=event.state.value)
            )

    def unresolved_operations(self, run_id: int) -> list[UnresolvedOperation]:
        """With ids that repeat per environment (as Kinsta's may), polling an id a newer
        operation (any run) also has describes the newer one: `newer_with_same_id` says so."""
        later = operations.alias("later")
        newer = (
            exists()
            .where(
                later.c.operation_id == operations.c.operation_id,
                later.c.started_at > operations.c.started_at,
            )
            .label("newer")
        )
        columns = (operations.c.task_id, operations.c.id, operations.c.operation_id)
        query = (
            select(*columns, operations.c.action, operations.c.started_at)
            .add_columns(tasks.c.environment_id, newer)
            .join(tasks, tasks.c.id == operations.c.task_id)
            .where(tasks.c.run_id == run_id, operations.c.state.not_in(FINAL_STATE_VALUES))
            .order_by(operations.c.id)
        )
        with self.db.tx() as tx:
            rows = tx.execute(query).all()
        return [
            UnresolvedOperation(
                task_id=r.task_id,
                row_id=r.id,
                operation_id=r.operation_id,
                action=r.action,
                started_at=utc(r.started_at),
                environment_id=r.environment_id or None,
                newer_with_same_id=bool(r.newer),
            )
            for r in rows
        ]

    def run_tasks(self, run_id: int) -> list[Task]:
        with self.db.tx() as tx:
            task_rows = tx.execute(
                select(tasks).where(tasks.c.run_id == run_id).order_by(tasks.c.position)
            ).all()
            op_rows = tx.execute(
                select(operations)
                .join(tasks, tasks.c.id == operations.c.task_id)
                .where(tasks.c.run_id == run_id)
                .order_by(operations.c.id)
            ).all()
        by_task: dict[int, list[OperationRecord]] = {}
        for row in op_rows:
            by_task.setdefault(row.task_id, []).append(operation_from(row))
        return [task_from(r, tuple(by_task.get(r.id, ()))) for r in task_rows]
