"""RunLedger in SQL: run claims (the unique index on (job, slot) decides), the run's lifecycle,
orphans and their adoption (compare and swap on the owner token)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from scheduler.domain import Run, RunStatus, RunTrigger, TaskStatus
from scheduler.history.rows import cancel_from, run_from, utc
from scheduler.history.sql import Database, get_run, lost, retried
from scheduler.history.tables import run_waves, runs, tasks
from scheduler.ports import Beat, PlannedTask, new_owner_token
from scheduler.rollout import WaveRecord

FAILURE_STATUSES = tuple(s.value for s in TaskStatus if s.is_failure)
# A slot's rows: on-demand runs (manual, slack) stand for no slot of their job.
SLOTS_ONLY = runs.c.trigger.not_in([t.value for t in RunTrigger if t.on_demand])


class SqlRunLedger:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _insert(self, values: dict[str, Any]) -> Run | None:
        try:
            with self.db.tx() as tx:
                run_id = tx.execute(insert(runs).values(values).returning(runs.c.id)).scalar_one()
                return get_run(tx, run_id)
        except IntegrityError:
            return None

    @retried
    def claim_run(
        self,
        job_id: str,
        trigger: RunTrigger,
        scheduled_for: datetime,
        now: datetime,
        *,
        started_by: str,
        config_revision: str | None = None,
        owner_token: str | None = None,
        requested_by: str | None = None,
    ) -> Run | None:
        values = {
            "trigger": trigger.value,
            "started_at": now,
            "heartbeat_at": now,
            "status": RunStatus.RUNNING.value,
            "started_by": started_by,
            "config_revision": config_revision,
            "owner_token": owner_token or new_owner_token(),
            "requested_by": requested_by,
        }
        if trigger is RunTrigger.BACKFILL:  # a slot recorded missed: its row becomes the run's
            taken = self._take_missed(job_id, scheduled_for, values)
            if taken is not None:
                return taken
        return self._insert({**values, "job_id": job_id, "scheduled_for": scheduled_for})

    def _take_missed(
        self, job_id: str, scheduled_for: datetime, values: dict[str, Any]
    ) -> Run | None:
        statement = (
            update(runs)
            .where(
                runs.c.job_id == job_id,
                runs.c.scheduled_for == scheduled_for,
                runs.c.status == RunStatus.MISSED.value,
                SLOTS_ONLY,
            )
            .values(**values, finished_at=None, error=None)
            .returning(runs.c.id)
        )
        with self.db.tx() as tx:
            run_id = tx.execute(statement).scalar()
            return None if run_id is None else get_run(tx, run_id)

    @retried
    def record_run(
        self,
        job_id: str,
        trigger: RunTrigger,
        scheduled_for: datetime,
        now: datetime,
        *,
        status: RunStatus,
        error: str,
    ) -> Run | None:
        return self._insert(
            {
                "job_id": job_id,
                "trigger": trigger.value,
                "scheduled_for": scheduled_for,
                "started_at": now,
                "finished_at": now,
                "status": status.value,
                "error": error,
            }
        )

    @retried
    def plan_tasks(self, run_id: int, planned: Sequence[PlannedTask]) -> list[int]:
        targets = sorted({p.target.key for p in planned})
        rows = [
            {
                "run_id": run_id,
                "position": position,
                "site": p.target.site_name,
                "site_id": p.target.site_id,
                "environment": p.target.environment_name,
                "environment_id": p.target.environment_id,
                "action": p.action,
                "status": TaskStatus.PENDING.value,
            }
            for position, p in enumerate(planned)
        ]
        with self.db.tx() as tx:
            tx.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(targets=targets, tasks_total=len(rows))
            )
            if not rows:
                return []
            ids = tx.execute(
                insert(tasks).returning(tasks.c.id, sort_by_parameter_order=True), rows
            )
            return [int(i) for i in ids.scalars()]

    @retried
    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        now: datetime,
        error: str | None = None,
        *,
        owner: str | None = None,
    ) -> Run:
        with self.db.tx() as tx:
            failed = tx.execute(
                select(func.count())
                .select_from(tasks)
                .where(tasks.c.run_id == run_id, tasks.c.status.in_(FAILURE_STATUSES))
            ).scalar_one()
            statement = update(runs).where(runs.c.id == run_id)
            if owner is not None:
                statement = statement.where(runs.c.owner_token == owner)
            result = tx.execute(
                statement.values(
                    status=status.value, finished_at=now, error=error, tasks_failed=failed
                )
            )
            if int(result.rowcount) != 1 and owner is not None:
                raise lost(tx, run_id)
            run = get_run(tx, run_id)
        assert run is not None
        return run

    @retried
    def record_wave(self, run_id: int, wave: WaveRecord, *, owner: str | None = None) -> None:
        with self.db.tx() as tx:
            if owner is not None:
                token = tx.execute(select(runs.c.owner_token).where(runs.c.id == run_id)).scalar()
                if token != owner:
                    raise lost(tx, run_id)
            tx.execute(
                insert(run_waves).values(
                    run_id=run_id,
                    wave=wave.index,
                    name=wave.name,
                    targets=wave.targets,
                    status=wave.status,
                    done=wave.done,
                    failed=wave.failed,
                    rolled_back=wave.rolled_back,
                    started_at=wave.started_at,
                    ended_at=wave.ended_at,
                )
            )

    def heartbeat(self, run_id: int, now: datetime, *, owner: str | None = None) -> Beat:
        statement = update(runs).where(runs.c.id == run_id)
        if owner is not None:
            statement = statement.where(runs.c.owner_token == owner)
        statement = statement.values(heartbeat_at=now).returning(
            runs.c.cancel_requested_at, runs.c.cancel_requested_by, runs.c.cancel_reason
        )
        with self.db.tx() as tx:
            row = tx.execute(statement).one_or_none()
        return Beat(False) if row is None else Beat(True, cancel_from(row))

    @retried
    def request_cancel(
        self, run_id: int, now: datetime, *, by: str, reason: str | None = None
    ) -> Run | None:
        with self.db.tx() as tx:
            tx.execute(
                update(runs)
                .where(
                    runs.c.id == run_id,
                    runs.c.status == RunStatus.RUNNING.value,
                    runs.c.cancel_requested_at.is_(None),  # the first request stands
                )
                .values(cancel_requested_at=now, cancel_requested_by=by, cancel_reason=reason)
            )
            return get_run(tx, run_id)

    @retried
    def running_run(self, job_id: str, alive_after: datetime) -> Run | None:
        with self.db.tx() as tx:
            row = tx.execute(
                select(runs)
                .where(
                    runs.c.job_id == job_id,
                    runs.c.status == RunStatus.RUNNING.value,
                    runs.c.heartbeat_at >= alive_after,
                )
                .order_by(runs.c.id.desc())
                .limit(1)
            ).one_or_none()
        return run_from(row) if row else None

    def _slot(self, aggregate: Any, *conditions: ColumnElement[bool]) -> datetime | None:
        with self.db.tx() as tx:
            found = tx.execute(select(aggregate).where(SLOTS_ONLY, *conditions)).scalar()
        return utc(found) if found is not None else None

    def last_slot(self, job_id: str) -> datetime | None:
        return self._slot(func.max(runs.c.scheduled_for), runs.c.job_id == job_id)

    def recorded_slots(self, job_id: str, since: datetime) -> set[datetime]:
        with self.db.tx() as tx:
            found = tx.execute(
                select(runs.c.scheduled_for).where(
                    runs.c.job_id == job_id, SLOTS_ONLY, runs.c.scheduled_for >= since
                )
            ).scalars()
            return {utc(slot) for slot in found}

    def first_slot_of_revision(self, job_id: str, revision: str) -> datetime | None:
        return self._slot(
            func.min(runs.c.scheduled_for),
            runs.c.job_id == job_id,
            runs.c.config_revision == revision,
        )

    def orphaned_runs(self, stale_before: datetime) -> list[Run]:
        in_flight = exists().where(
            tasks.c.run_id == runs.c.id, tasks.c.status == TaskStatus.RUNNING.value
        )
        stale = and_(runs.c.status == RunStatus.RUNNING.value, _stale(stale_before))
        left = and_(runs.c.status == RunStatus.INTERRUPTED.value, in_flight)
        with self.db.tx() as tx:
            rows = tx.execute(select(runs).where(or_(stale, left)).order_by(runs.c.id)).all()
        return [run_from(r) for r in rows]

    def running_runs_started_by(self, prefix: str) -> list[Run]:
        with self.db.tx() as tx:
            rows = tx.execute(
                select(runs)
                .where(
                    runs.c.status == RunStatus.RUNNING.value,
                    runs.c.started_by.startswith(prefix, autoescape=True),
                )
                .order_by(runs.c.id)
            ).all()
        return [run_from(r) for r in rows]

    @retried
    def adopt_run(
        self,
        run: Run,
        owner: str,
        now: datetime,
        stale_before: datetime | None,
        token: str | None = None,
    ) -> str | None:
        wanted = RunStatus.INTERRUPTED if run.status is RunStatus.INTERRUPTED else RunStatus.RUNNING
        same_owner = (
            runs.c.owner_token.is_(None)
            if run.owner_token is None
            else runs.c.owner_token == run.owner_token
        )
        statement = update(runs).where(
            runs.c.id == run.run_id, runs.c.status == wanted.value, same_owner
        )
        if run.status is RunStatus.RUNNING and stale_before is not None:
            statement = statement.where(_stale(stale_before))
        token = token or new_owner_token()
        values = {"status": RunStatus.RUNNING.value, "started_by": owner, "heartbeat_at": now}
        with self.db.tx() as tx:
            result = tx.execute(statement.values(**values, owner_token=token))
            return token if int(result.rowcount) == 1 else None

    @retried
    def finish_pending(
        self,
        run_id: int,
        status: TaskStatus,
        now: datetime,
        message: str,
        *,
        owner: str | None = None,
    ) -> int:
        with self.db.tx() as tx:
            self.db.check_owner(tx, run_id, owner)
            result = tx.execute(
                update(tasks)
                .where(tasks.c.run_id == run_id, tasks.c.status == TaskStatus.PENDING.value)
                .values(status=status.value, finished_at=now, message=message)
            )
            return int(result.rowcount)

    def previous_outcome(self, job_id: str, before_run_id: int) -> RunStatus | None:
        with self.db.tx() as tx:
            status = tx.execute(
                select(runs.c.status)
                .where(
                    runs.c.job_id == job_id,
                    runs.c.id < before_run_id,
                    runs.c.status.in_((RunStatus.SUCCEEDED.value, RunStatus.FAILED.value)),
                )
                .order_by(runs.c.id.desc())
                .limit(1)
            ).scalar_one_or_none()
        return RunStatus(status) if status else None


def _stale(before: datetime) -> ColumnElement[bool]:
    return or_(runs.c.heartbeat_at < before, runs.c.heartbeat_at.is_(None))
