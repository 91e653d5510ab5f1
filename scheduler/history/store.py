"""The history store: speaks domain objects, hides SQLAlchemy. Works on SQLite and PostgreSQL."""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar

import structlog
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    Table,
    and_,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, SQLAlchemyError

from scheduler.domain import (
    FINAL_OPERATION_STATES,
    DaemonEvent,
    GovernorEvent,
    InventorySnapshot,
    NotificationRecord,
    OperationEvent,
    OperationRecord,
    OperationState,
    Run,
    RunStatus,
    RunTrigger,
    SiteAction,
    Target,
    Task,
    TaskStatus,
)
from scheduler.errors import OwnershipLost, StoreError
from scheduler.history.tables import (
    daemon_events,
    environment_locks,
    governor_events,
    inventory,
    item_versions,
    notifications,
    operations,
    runs,
    site_actions,
    tasks,
)

log = structlog.get_logger("scheduler.history")

MIN_DURATION_SAMPLES = 5
FAILURE_STATUSES = tuple(s.value for s in TaskStatus if s.is_failure)


@dataclass(frozen=True)
class RunFilter:
    job_id: str | None = None
    site: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50


@dataclass(frozen=True)
class TaskFilter:
    run_id: int | None = None
    job_id: str | None = None
    site: str | None = None
    action: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 200


@dataclass(frozen=True)
class PlannedTask:
    target: Target
    action: str


@dataclass(frozen=True)
class UnresolvedOperation:
    """An operation a run started that has no final state in history (see recovery.py)."""

    task_id: int
    row_id: int
    operation_id: str
    action: str
    started_at: datetime
    environment_id: str | None
    newer_with_same_id: bool  # a later operation (any run) has the same id


P = ParamSpec("P")
R = TypeVar("R")
RETRY_PAUSE_S = (0.5, 5.0)  # first and longest pause between tries


def _retried(
    method: Callable[Concatenate[HistoryStore, P], R],
) -> Callable[Concatenate[HistoryStore, P], R]:
    """Writes the daemon cannot afford to lose: while the database is unreachable, try again
    with backoff for up to the store's `retry_s`, then give up with the error. Once the
    store's `stop` is set (the process is shutting down) a failed write is not retried: what
    it would have written is left for the next start (a run stays `running` for recovery)."""

    @functools.wraps(method)
    def attempt(self: HistoryStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        deadline: float | None = None
        pause = RETRY_PAUSE_S[0]
        while True:
            try:
                return method(self, *args, **kwargs)
            except StoreError as exc:
                if not exc.transient or self.retry_s <= 0 or self.stop.is_set():
                    raise
                now = time.monotonic()
                deadline = deadline if deadline is not None else now + self.retry_s
                if now + pause > deadline:
                    raise
                log.warning(
                    "history.retrying", operation=method.__name__, retry_in_s=pause, error=str(exc)
                )
                if self.stop.wait(pause):
                    raise
                pause = min(pause * 2, RETRY_PAUSE_S[1])

    return attempt


class HistoryStore:
    def __init__(self, engine: Engine, *, retry_s: float = 0.0) -> None:
        self.engine = engine
        self.retry_s = retry_s  # how long writes retry while the database is unreachable
        self.stop = threading.Event()  # set at shutdown: no more retries (see _retried)

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as connection:
                yield connection
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            transient = isinstance(exc, OperationalError | InterfaceError) or bool(
                getattr(exc, "connection_invalidated", False)
            )
            message = f"history database error: {exc.__class__.__name__}: {exc}"
            raise StoreError(message, transient=transient) from exc

    # --- runs ---------------------------------------------------------------------------------

    @_retried
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
    ) -> Run | None:
        """Record a run as started. None when this (job, slot) was already claimed (by another
        process, or before a restart): the unique index decides, so exactly one claim wins.
        `owner_token`: the caller's (held before the row exists), else a new one."""
        values = {
            "job_id": job_id,
            "trigger": trigger.value,
            "scheduled_for": scheduled_for,
            "started_at": now,
            "heartbeat_at": now,
            "status": RunStatus.RUNNING.value,
            "started_by": started_by,
            "config_revision": config_revision,
            "owner_token": owner_token or new_owner_token(),
        }
        try:
            with self._tx() as tx:
                run_id = tx.execute(insert(runs).values(values).returning(runs.c.id)).scalar_one()
        except IntegrityError:
            return None
        return self.get_run(run_id)

    @_retried
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
        """A run that did not execute (skipped, missed), recorded with its reason."""
        try:
            with self._tx() as tx:
                run_id = tx.execute(
                    insert(runs)
                    .values(
                        job_id=job_id,
                        trigger=trigger.value,
                        scheduled_for=scheduled_for,
                        started_at=now,
                        finished_at=now,
                        status=status.value,
                        error=error,
                    )
                    .returning(runs.c.id)
                ).scalar_one()
        except IntegrityError:
            return None
        return self.get_run(run_id)

    @_retried
    def plan_tasks(self, run_id: int, planned: Sequence[PlannedTask]) -> list[int]:
        """Store the resolved targets with the run and create its tasks, all pending."""
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
        with self._tx() as tx:
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

    @_retried
    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        now: datetime,
        error: str | None = None,
        *,
        owner: str | None = None,
    ) -> Run:
        """Settle a run. With `owner` (its owner token), only while the run is still this
        owner's: OwnershipLost when another process adopted it meanwhile."""
        with self._tx() as tx:
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
                raise self._lost(tx, run_id)
        run = self.get_run(run_id)
        assert run is not None
        return run

    @staticmethod
    def _lost(tx: Connection, run_id: int) -> OwnershipLost:
        holder = tx.execute(select(runs.c.started_by).where(runs.c.id == run_id)).scalar()
        return OwnershipLost(f"run {run_id} was adopted by {holder or 'another process'}")

    def last_slot(self, job_id: str) -> datetime | None:
        """The newest slot of the job with a row (run, skipped or missed), manual runs aside."""
        with self._tx() as tx:
            found = tx.execute(
                select(func.max(runs.c.scheduled_for)).where(
                    runs.c.job_id == job_id, runs.c.trigger != RunTrigger.MANUAL.value
                )
            ).scalar_one_or_none()
        return _utc(found) if found is not None else None

    def recorded_slots(self, job_id: str, since: datetime) -> set[datetime]:
        """The job's slots since `since` that have a row (run, skipped or missed), manual runs
        aside: what the daemon's gap check compares with the schedule."""
        with self._tx() as tx:
            found = tx.execute(
                select(runs.c.scheduled_for).where(
                    runs.c.job_id == job_id,
                    runs.c.trigger != RunTrigger.MANUAL.value,
                    runs.c.scheduled_for >= since,
                )
            ).scalars()
            return {_utc(slot) for slot in found}

    def first_slot_of_revision(self, job_id: str, revision: str) -> datetime | None:
        """The oldest slot of the job claimed under this configuration revision (by any
        process): since then the job's current schedule has been in force."""
        with self._tx() as tx:
            found = tx.execute(
                select(func.min(runs.c.scheduled_for)).where(
                    runs.c.job_id == job_id,
                    runs.c.config_revision == revision,
                    runs.c.trigger != RunTrigger.MANUAL.value,
                )
            ).scalar_one_or_none()
        return _utc(found) if found is not None else None

    @_retried
    def running_run(self, job_id: str, alive_after: datetime) -> Run | None:
        """A run of the job still going (its heartbeat newer than `alive_after`), if any."""
        with self._tx() as tx:
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
        return _run(row) if row else None

    def orphaned_runs(self, stale_before: datetime) -> list[Run]:
        """Runs whose owner is gone: still `running` with a stale heartbeat, or `interrupted`
        with a task still `running` (its operation was left in flight at shutdown)."""
        in_flight = exists().where(
            tasks.c.run_id == runs.c.id, tasks.c.status == TaskStatus.RUNNING.value
        )
        with self._tx() as tx:
            rows = tx.execute(
                select(runs)
                .where(
                    or_(
                        and_(
                            runs.c.status == RunStatus.RUNNING.value,
                            or_(runs.c.heartbeat_at < stale_before, runs.c.heartbeat_at.is_(None)),
                        ),
                        and_(runs.c.status == RunStatus.INTERRUPTED.value, in_flight),
                    )
                )
                .order_by(runs.c.id)
            ).all()
        return [_run(r) for r in rows]

    def running_runs_started_by(self, prefix: str) -> list[Run]:
        """Runs still `running` whose recorded owner starts with `prefix` (a host's runs)."""
        with self._tx() as tx:
            rows = tx.execute(
                select(runs)
                .where(
                    runs.c.status == RunStatus.RUNNING.value,
                    runs.c.started_by.startswith(prefix, autoescape=True),
                )
                .order_by(runs.c.id)
            ).all()
        return [_run(r) for r in rows]

    @_retried
    def adopt_run(
        self,
        run: Run,
        owner: str,
        now: datetime,
        stale_before: datetime | None,
        token: str | None = None,
    ) -> str | None:
        """Take over an orphaned run for recovery; exactly one process wins, and gets the run's
        new owner token (None: another process took it, or its owner came back to life).

        The update is conditional on the owner token read with `run` (compare and swap) and,
        for a running run, on its heartbeat still being stale (`stale_before`; None when its
        owner is known to be gone: a dead process on this host)."""
        condition = (
            runs.c.status == RunStatus.INTERRUPTED.value
            if run.status is RunStatus.INTERRUPTED
            else runs.c.status == RunStatus.RUNNING.value
        )
        same_owner = (
            runs.c.owner_token.is_(None)
            if run.owner_token is None
            else runs.c.owner_token == run.owner_token
        )
        statement = update(runs).where(runs.c.id == run.run_id, condition, same_owner)
        if run.status is RunStatus.RUNNING and stale_before is not None:
            statement = statement.where(
                or_(runs.c.heartbeat_at < stale_before, runs.c.heartbeat_at.is_(None))
            )
        token = token or new_owner_token()
        with self._tx() as tx:
            result = tx.execute(
                statement.values(
                    status=RunStatus.RUNNING.value,
                    started_by=owner,
                    heartbeat_at=now,
                    owner_token=token,
                )
            )
            return token if int(result.rowcount) == 1 else None

    def unresolved_operations(self, run_id: int) -> list[UnresolvedOperation]:
        """The run's operations that never reached a final state, in the order they started,
        each with its environment and whether a newer operation (any run) has the same id: with
        ids that repeat per environment (as Kinsta's may), polling that id now describes the
        newer operation, not this one."""
        later = operations.alias("later")
        newer = (
            exists()
            .where(
                later.c.operation_id == operations.c.operation_id,
                later.c.started_at > operations.c.started_at,
            )
            .label("newer")
        )
        with self._tx() as tx:
            rows = tx.execute(
                select(
                    operations.c.task_id,
                    operations.c.id,
                    operations.c.operation_id,
                    operations.c.action,
                    operations.c.started_at,
                    tasks.c.environment_id,
                    newer,
                )
                .join(tasks, tasks.c.id == operations.c.task_id)
                .where(
                    tasks.c.run_id == run_id,
                    operations.c.state.not_in([s.value for s in FINAL_OPERATION_STATES]),
                )
                .order_by(operations.c.id)
            ).all()
        return [
            UnresolvedOperation(
                task_id=r.task_id,
                row_id=r.id,
                operation_id=r.operation_id,
                action=r.action,
                started_at=_utc(r.started_at),
                environment_id=r.environment_id or None,
                newer_with_same_id=bool(r.newer),
            )
            for r in rows
        ]

    @_retried
    def finish_pending(
        self,
        run_id: int,
        status: TaskStatus,
        now: datetime,
        message: str,
        *,
        owner: str | None = None,
    ) -> int:
        """Settle the run's tasks that never started; return how many there were."""
        with self._tx() as tx:
            self._check_owner(tx, run_id, owner)
            result = tx.execute(
                update(tasks)
                .where(tasks.c.run_id == run_id, tasks.c.status == TaskStatus.PENDING.value)
                .values(status=status.value, finished_at=now, message=message)
            )
            return int(result.rowcount)

    def heartbeat(self, run_id: int, now: datetime, *, owner: str | None = None) -> bool:
        """Beat a running run's heartbeat. False when the run is no longer `owner`'s (another
        process adopted it). Not retried: the next beat is the retry, and the caller must see
        failures at once to know its run may look orphaned elsewhere."""
        statement = update(runs).where(runs.c.id == run_id)
        if owner is not None:
            statement = statement.where(runs.c.owner_token == owner)
        with self._tx() as tx:
            return int(tx.execute(statement.values(heartbeat_at=now)).rowcount) == 1

    def _check_owner(self, tx: Connection, run_id: int, owner: str | None) -> None:
        """Inside a write's transaction: the run is still `owner`'s, else OwnershipLost. On
        PostgreSQL the run's row is locked until the write commits, so an adoption cannot slip
        in between; on SQLite every transaction already holds the database's write lock."""
        if owner is None:
            return
        query = select(runs.c.owner_token).where(runs.c.id == run_id)
        if self.engine.dialect.name == "postgresql":
            query = query.with_for_update()
        if tx.execute(query).scalar() != owner:
            raise self._lost(tx, run_id)

    def _task_run(self, tx: Connection, task_id: int) -> int:
        return int(tx.execute(select(tasks.c.run_id).where(tasks.c.id == task_id)).scalar_one())

    # --- tasks and operations -------------------------------------------------------------------

    @_retried
    def start_task(self, task_id: int, now: datetime, *, owner: str | None = None) -> None:
        with self._tx() as tx:
            if owner is not None:
                self._check_owner(tx, self._task_run(tx, task_id), owner)
            tx.execute(
                update(tasks)
                .where(tasks.c.id == task_id)
                .values(
                    status=TaskStatus.RUNNING.value, started_at=now, attempts=tasks.c.attempts + 1
                )
            )

    @_retried
    def count_attempt(self, task_id: int) -> None:
        with self._tx() as tx:
            tx.execute(
                update(tasks).where(tasks.c.id == task_id).values(attempts=tasks.c.attempts + 1)
            )

    @_retried
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
        with self._tx() as tx:
            if owner is not None:
                self._check_owner(tx, self._task_run(tx, task_id), owner)
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
        latest: dict[str, Any] = {
            "last_run_id": task.run_id,
            "last_status": status.value,
            "last_finished_at": now,
            "last_message": message,
        }
        if status is TaskStatus.SUCCEEDED:
            latest["last_success_at"] = now
        if status.is_failure:
            latest.update(last_failure_at=now, last_failure_message=message)
        statement = self._upsert(site_actions).values(
            site=task.site, environment=task.environment, action=task.action, **latest
        )
        tx.execute(
            statement.on_conflict_do_update(
                index_elements=["site", "environment", "action"],
                set_={key: statement.excluded[key] for key in latest},
                where=site_actions.c.last_finished_at <= statement.excluded.last_finished_at,
            )
        )

    def site_actions(self, site: str | None = None) -> list[SiteAction]:
        """The latest outcome of every action on every environment (of `site`), by site."""
        query = select(site_actions).order_by(
            site_actions.c.site, site_actions.c.environment, site_actions.c.action
        )
        if site is not None:
            query = query.where(site_actions.c.site == site)
        with self._tx() as tx:
            rows = tx.execute(query).all()
        return [
            SiteAction(
                site=r.site,
                environment=r.environment,
                action=r.action,
                last_run_id=r.last_run_id,
                last_status=TaskStatus(r.last_status),
                last_finished_at=r.last_finished_at,
                last_message=r.last_message,
                last_success_at=r.last_success_at,
                last_failure_at=r.last_failure_at,
                last_failure_message=r.last_failure_message,
            )
            for r in rows
        ]

    def record_governor_event(
        self, scope: str, kind: str, seconds: float | None, detail: str, now: datetime
    ) -> None:
        self.record_governor_events([GovernorEvent(now, scope, kind, seconds, detail)])

    def record_governor_events(self, events: Sequence[GovernorEvent]) -> None:
        """Several at once, in one transaction (history.events.EventWriter's batches)."""
        if not events:
            return
        with self._tx() as tx:
            tx.execute(
                insert(governor_events),
                [
                    {"at": e.at, "scope": e.scope, "kind": e.kind}
                    | {"seconds": e.seconds, "detail": e.detail}
                    for e in events
                ],
            )

    def record_daemon_event(self, owner: str, kind: str, detail: str | None, now: datetime) -> None:
        with self._tx() as tx:
            tx.execute(insert(daemon_events).values(at=now, owner=owner, kind=kind, detail=detail))

    def daemon_events(self, since: datetime | None = None, limit: int = 200) -> list[DaemonEvent]:
        query = select(daemon_events).order_by(daemon_events.c.at.desc(), daemon_events.c.id.desc())
        if since is not None:
            query = query.where(daemon_events.c.at >= since)
        with self._tx() as tx:
            rows = tx.execute(query.limit(limit)).all()
        return [DaemonEvent(r.at, r.owner, r.kind, r.detail) for r in rows]

    def governor_events(
        self, since: datetime | None = None, limit: int = 200
    ) -> list[GovernorEvent]:
        query = select(governor_events).order_by(
            governor_events.c.at.desc(), governor_events.c.id.desc()
        )
        if since is not None:
            query = query.where(governor_events.c.at >= since)
        with self._tx() as tx:
            rows = tx.execute(query.limit(limit)).all()
        return [GovernorEvent(r.at, r.scope, r.kind, r.seconds, r.detail) for r in rows]

    @_retried
    def start_operation(
        self,
        task_id: int,
        operation_id: str,
        action: str,
        now: datetime,
        *,
        owner: str | None = None,
    ) -> int:
        event = _event_json(OperationEvent(now, OperationState.PENDING, 202, "accepted"))
        with self._tx() as tx:
            if owner is not None:
                self._check_owner(tx, self._task_run(tx, task_id), owner)
            tx.execute(
                update(tasks)
                .where(tasks.c.id == task_id)
                .values(operation_id=operation_id, operation_status=OperationState.PENDING.value)
            )
            return int(
                tx.execute(
                    insert(operations)
                    .values(
                        task_id=task_id,
                        operation_id=operation_id,
                        action=action,
                        state=OperationState.PENDING.value,
                        started_at=now,
                        events=[event],
                    )
                    .returning(operations.c.id)
                ).scalar_one()
            )

    @_retried
    def operation_event(
        self, row_id: int, event: OperationEvent, polls: int, *, owner: str | None = None
    ) -> None:
        final = event.state in FINAL_OPERATION_STATES
        with self._tx() as tx:
            row = tx.execute(
                select(operations.c.events, operations.c.task_id).where(operations.c.id == row_id)
            ).one()
            if owner is not None:
                self._check_owner(tx, self._task_run(tx, row.task_id), owner)
            values: dict[str, Any] = {
                "state": event.state.value,
                "polls": polls,
                "events": [*(row.events or []), _event_json(event)],
                "message": event.message,
            }
            if final:
                values["finished_at"] = event.at
            tx.execute(update(operations).where(operations.c.id == row_id).values(values))
            tx.execute(
                update(tasks)
                .where(tasks.c.id == row.task_id)
                .values(operation_status=event.state.value)
            )

    def typical_durations(self, actions: Sequence[str], *, samples: int = 50) -> dict[str, float]:
        """Per action, how long its recent successful operations took: the 90th percentile of
        the last `samples` estimates (at least 5 needed), see operation_duration_s."""
        found: dict[str, float] = {}
        with self._tx() as tx:
            for action in set(actions):
                rows = tx.execute(
                    select(operations.c.started_at, operations.c.finished_at, operations.c.events)
                    .where(
                        operations.c.action == action,
                        operations.c.state == OperationState.SUCCEEDED.value,
                        operations.c.finished_at.is_not(None),
                    )
                    .order_by(operations.c.id.desc())
                    .limit(samples)
                ).all()
                estimates = (
                    operation_duration_s(r.started_at, r.finished_at, r.events) for r in rows
                )
                durations = sorted(d for d in estimates if d is not None)
                if len(durations) >= MIN_DURATION_SAMPLES:
                    found[action] = durations[int(0.9 * (len(durations) - 1))]
        return found

    def prune(self, older_than: datetime, keep_last: int, *, dry_run: bool = False) -> PruneResult:
        """Delete finished runs scheduled before `older_than`, except each job's newest
        `keep_last`; a run still running is never removed. Tasks and operations go with their
        run. The event logs (governor and daemon events, notifications) before `older_than` go
        too. Deletes in batches, so the daemon and other readers are never blocked for long."""
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
        with self._tx() as tx:
            ids = [int(i) for i in tx.execute(doomed).scalars()]
            counts = replace(_counts(tx, ids), events=self._count_events(tx, older_than))
        if not dry_run:
            self._prune_inventory(older_than)
            self._prune_events(older_than)
        if dry_run or not ids:
            return counts
        for start in range(0, len(ids), PRUNE_BATCH):
            batch = ids[start : start + PRUNE_BATCH]
            with self._tx() as tx:
                task_ids = select(tasks.c.id).where(tasks.c.run_id.in_(batch))
                tx.execute(delete(operations).where(operations.c.task_id.in_(task_ids)))
                tx.execute(delete(tasks).where(tasks.c.run_id.in_(batch)))
                tx.execute(delete(runs).where(runs.c.id.in_(batch)))
        return counts

    @staticmethod
    def _count_events(tx: Connection, older_than: datetime) -> int:
        """Rows of the event logs (governor, daemon, notifications) from before `older_than`."""
        return sum(
            tx.execute(
                select(func.count()).select_from(table).where(table.c.at < older_than)
            ).scalar_one()
            for table in EVENT_TABLES
        )

    def _prune_events(self, older_than: datetime) -> None:
        """Delete the event logs' rows from before `older_than`, a batch per transaction."""
        for table in EVENT_TABLES:
            while True:
                with self._tx() as tx:
                    found = select(table.c.id).where(table.c.at < older_than).limit(PRUNE_BATCH)
                    ids = [int(i) for i in tx.execute(found).scalars()]
                    if not ids:
                        break
                    tx.execute(delete(table).where(table.c.id.in_(ids)))

    def _upsert(self, table: Table) -> Any:
        """INSERT ... ON CONFLICT for this backend (both dialects spell it alike)."""
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    # --- notifications ----------------------------------------------------------------------------

    @_retried
    def record_notification(self, delivery: NotificationRecord) -> None:
        with self._tx() as tx:
            tx.execute(insert(notifications).values({**asdict(delivery), "ok": int(delivery.ok)}))

    def notifications(
        self, since: datetime | None = None, limit: int = 200
    ) -> list[NotificationRecord]:
        query = select(notifications).order_by(notifications.c.at.desc(), notifications.c.id.desc())
        if since is not None:
            query = query.where(notifications.c.at >= since)
        with self._tx() as tx:
            rows = tx.execute(query.limit(limit)).all()
        return [
            NotificationRecord(
                at=r.at,
                job_id=r.job_id,
                run_id=r.run_id,
                kind=r.kind,
                channel=r.channel,
                destination=r.destination,
                ok=bool(r.ok),
                detail=r.detail,
            )
            for r in rows
        ]

    def previous_outcome(self, job_id: str, before_run_id: int) -> RunStatus | None:
        """The status of the job's last run before this one that ran (succeeded or failed)."""
        with self._tx() as tx:
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

    def ping(self) -> None:
        """Raise StoreError unless the database answers."""
        with self._tx() as tx:
            tx.execute(select(1))

    # --- plugin and theme versions, inventory ----------------------------------------------------

    @_retried
    def note_available(
        self, kind: str, offered: Iterable[tuple[str, str]], now: datetime
    ) -> dict[tuple[str, str], datetime]:
        """Record that these (name, version) updates of `kind` (plugins|themes) are offered, if
        not seen before; return when each was first seen (the clock of `min_age`)."""
        pairs = sorted(set(offered))
        if not pairs:
            return {}
        with self._tx() as tx:
            statement = self._upsert(item_versions)
            tx.execute(
                statement.on_conflict_do_nothing(),
                [{"kind": kind, "name": n, "version": v, "first_seen_at": now} for n, v in pairs],
            )
            rows = tx.execute(
                select(item_versions.c.name, item_versions.c.version, item_versions.c.first_seen_at)
                .where(item_versions.c.kind == kind)
                .where(item_versions.c.name.in_({n for n, _ in pairs}))
            ).all()
        wanted = set(pairs)
        return {(r.name, r.version): r.first_seen_at for r in rows if (r.name, r.version) in wanted}

    @_retried
    def record_inventory(
        self, task_id: int | None, run_id: int | None, target: Target, snapshot: InventorySnapshot
    ) -> None:
        with self._tx() as tx:
            tx.execute(
                insert(inventory).values(
                    run_id=run_id,
                    task_id=task_id,
                    taken_at=snapshot.taken_at,
                    site=target.site_name,
                    site_id=target.site_id,
                    environment=target.environment_name,
                    environment_id=target.environment_id,
                    php_version=snapshot.php_version,
                    wordpress_version=snapshot.wordpress_version,
                    plugins=[dict(p) for p in snapshot.plugins],
                    themes=[dict(t) for t in snapshot.themes],
                    backups=[dict(b) for b in snapshot.backups],
                )
            )

    def latest_inventory(self, site: str | None = None) -> list[InventorySnapshot]:
        """The newest snapshot of each environment (of `site`)."""
        # Rank on the narrow columns only (the index has them), then fetch the winners' rows:
        # ranking whole rows would read every snapshot's JSON.
        newest = func.row_number().over(
            partition_by=(inventory.c.site, inventory.c.environment),
            order_by=(inventory.c.taken_at.desc(), inventory.c.id.desc()),
        )
        ranked = select(inventory.c.id, newest.label("rank"))
        if site is not None:
            ranked = ranked.where(inventory.c.site == site)
        sub = ranked.subquery()
        sub_latest = select(sub.c.id).where(sub.c.rank == 1)
        query = (
            select(inventory)
            .where(inventory.c.id.in_(sub_latest))
            .order_by(inventory.c.site, inventory.c.environment)
        )
        with self._tx() as tx:
            rows = tx.execute(query).all()
        return [
            InventorySnapshot(
                site=r.site,
                environment=r.environment,
                taken_at=_utc(r.taken_at),
                php_version=r.php_version,
                wordpress_version=r.wordpress_version,
                plugins=tuple(r.plugins or ()),
                themes=tuple(r.themes or ()),
                backups=tuple(r.backups or ()),
                run_id=r.run_id,
            )
            for r in rows
        ]

    # --- environment locks ------------------------------------------------------------------------

    def try_lock_environment(
        self,
        environment_id: str,
        holder: str,
        label: str,
        now: datetime,
        lease_s: float,
        *,
        take_from: str | None = None,
    ) -> str | None:
        """Take (or re-take) the environment's lock for `holder` until now + lease_s. None when
        taken; else the label of whoever holds it. A lapsed lease is taken over, and so is one
        whose holder starts with `take_from` (recovery taking the lock of the run it adopts)."""
        expires = now + timedelta(seconds=lease_s)
        statement = self._upsert(environment_locks).values(
            environment_id=environment_id,
            holder=holder,
            label=label,
            acquired_at=now,
            expires_at=expires,
        )
        may_take = [environment_locks.c.holder == holder, environment_locks.c.expires_at < now]
        if take_from:
            may_take.append(environment_locks.c.holder.startswith(take_from, autoescape=True))
        statement = statement.on_conflict_do_update(
            index_elements=["environment_id"],
            set_={
                "holder": statement.excluded.holder,
                "label": statement.excluded.label,
                "acquired_at": statement.excluded.acquired_at,
                "expires_at": statement.excluded.expires_at,
            },
            where=or_(*may_take),
        ).returning(environment_locks.c.holder)
        with self._tx() as tx:
            taken = tx.execute(statement).scalar_one_or_none()
            if taken == holder:
                return None
            label_now = tx.execute(
                select(environment_locks.c.label).where(
                    environment_locks.c.environment_id == environment_id
                )
            ).scalar_one_or_none()
        return str(label_now or "another holder")

    def renew_locks(self, holders: Iterable[str], now: datetime, lease_s: float) -> set[str]:
        """Extend the leases these holders still have; return the holders renewed. A holder
        missing from the answer lost its lease: it lapsed (now past expires_at) or another
        holder took the environment."""
        names = list(holders)
        if not names:
            return set()
        with self._tx() as tx:
            renewed = tx.execute(
                update(environment_locks)
                .where(
                    environment_locks.c.holder.in_(names),
                    environment_locks.c.expires_at >= now,
                )
                .values(expires_at=now + timedelta(seconds=lease_s))
                .returning(environment_locks.c.holder)
            ).scalars()
            return {str(h) for h in renewed}

    def unlock_environment(self, environment_id: str, holder: str) -> None:
        with self._tx() as tx:
            tx.execute(
                delete(environment_locks).where(
                    environment_locks.c.environment_id == environment_id,
                    environment_locks.c.holder == holder,
                )
            )

    def _prune_inventory(self, older_than: datetime) -> None:
        """Snapshots older than the cutoff go, except each environment's newest."""
        newest = func.row_number().over(
            partition_by=(inventory.c.site, inventory.c.environment),
            order_by=(inventory.c.taken_at.desc(), inventory.c.id.desc()),
        )
        ranked = select(inventory.c.id, inventory.c.taken_at, newest.label("rank")).subquery()
        doomed = select(ranked.c.id).where(ranked.c.rank > 1, ranked.c.taken_at < older_than)
        with self._tx() as tx:
            tx.execute(delete(inventory).where(inventory.c.id.in_(doomed)))

    def optimize(self) -> None:
        """Keep the query planner's statistics fresh. SQLite: PRAGMA optimize (what its docs
        advise for long-lived connections); PostgreSQL's autovacuum already analyses."""
        if self.engine.dialect.name != "sqlite":
            return
        with self._tx() as tx:
            tx.exec_driver_sql("PRAGMA optimize")

    # --- queries ----------------------------------------------------------------------------------

    def get_run(self, run_id: int) -> Run | None:
        with self._tx() as tx:
            row = tx.execute(select(runs).where(runs.c.id == run_id)).one_or_none()
        return _run(row) if row else None

    def list_runs(self, where: RunFilter) -> list[Run]:
        query = select(runs)
        conditions = []
        if where.job_id:
            conditions.append(runs.c.job_id == where.job_id)
        if where.status:
            conditions.append(runs.c.status == where.status)
        conditions += _period(where.since, where.until)
        if where.site:
            conditions.append(
                exists().where(and_(tasks.c.run_id == runs.c.id, tasks.c.site == where.site))
            )
        query = query.where(*conditions).order_by(runs.c.scheduled_for.desc(), runs.c.id.desc())
        with self._tx() as tx:
            rows = tx.execute(query.limit(where.limit)).all()
        return [_run(r) for r in rows]

    def list_tasks(self, where: TaskFilter) -> list[Task]:
        query = select(tasks).join(runs, runs.c.id == tasks.c.run_id)
        conditions = []
        for column, value in (
            (tasks.c.run_id, where.run_id),
            (runs.c.job_id, where.job_id),
            (tasks.c.site, where.site),
            (tasks.c.action, where.action),
            (tasks.c.status, where.status),
        ):
            if value is not None:
                conditions.append(column == value)
        conditions += _period(where.since, where.until)
        if where.run_id is not None:
            query = query.where(*conditions).order_by(tasks.c.position)
        else:
            query = query.where(*conditions).order_by(runs.c.scheduled_for.desc(), tasks.c.position)
        with self._tx() as tx:
            rows = tx.execute(query.limit(where.limit)).all()
        return [_task(r) for r in rows]

    def run_tasks(self, run_id: int) -> list[Task]:
        """Every task of a run, in order, each with its operations."""
        with self._tx() as tx:
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
            by_task.setdefault(row.task_id, []).append(_operation(row))
        return [_task(r, tuple(by_task.get(r.id, ()))) for r in task_rows]


def operation_duration_s(
    started: datetime, finished: datetime, events: list[dict[str, Any]] | None
) -> float | None:
    """An estimate of how long an operation really took, or None when history cannot tell.

    It ended after the last poll that saw it running (`low`) and by the first that saw it done
    (`high`). That poll may have waited for rate budget before it left; counting the wait would
    make each run poll later than the last, so the estimate is the moment the poll was ready to
    go (`high - waited`), never before `low`."""
    high = (finished - started).total_seconds()
    events = events or []
    done = next((e for e in events if e.get("state") == OperationState.SUCCEEDED.value), {})
    if done.get("late"):
        return None  # seen done by recovery: it ended at some moment nobody watched
    running = [
        (datetime.fromisoformat(e["at"]) - started).total_seconds()
        for e in events
        if e.get("state") == OperationState.IN_PROGRESS.value
    ]
    ready = high - float(done.get("waited_s") or 0.0)
    estimate = max([ready, *running])
    return estimate if estimate > 0 else None


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


def _period(since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    """Runs scheduled in [since, until)."""
    found: list[ColumnElement[bool]] = []
    if since:
        found.append(runs.c.scheduled_for >= since)
    if until:
        found.append(runs.c.scheduled_for < until)
    return found


def new_owner_token() -> str:
    return uuid.uuid4().hex


def _event_json(event: OperationEvent) -> dict[str, Any]:
    body: dict[str, Any] = {
        "at": event.at.isoformat(),
        "state": event.state.value,
        "http_status": event.http_status,
        "message": event.message,
    }
    if event.waited_s is not None:
        body["waited_s"] = round(event.waited_s, 3)
    if event.late:
        body["late"] = True
    return body


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _run(row: Row[Any]) -> Run:
    return Run(
        run_id=row.id,
        job_id=row.job_id,
        trigger=RunTrigger(row.trigger),
        scheduled_for=row.scheduled_for,
        started_at=row.started_at,
        finished_at=row.finished_at,
        status=RunStatus(row.status),
        tasks_total=row.tasks_total,
        tasks_failed=row.tasks_failed,
        error=row.error,
        started_by=row.started_by,
        targets=tuple(row.targets or ()),
        owner_token=row.owner_token,
    )


def _task(row: Row[Any], ops: tuple[OperationRecord, ...] = ()) -> Task:
    return Task(
        task_id=row.id,
        run_id=row.run_id,
        site=row.site,
        environment=row.environment,
        action=row.action,
        status=TaskStatus(row.status),
        operation_id=row.operation_id,
        operation_status=row.operation_status,
        message=row.message,
        started_at=row.started_at,
        finished_at=row.finished_at,
        attempts=row.attempts,
        site_id=row.site_id,
        environment_id=row.environment_id,
        operations=ops,
        versions_before=row.versions_before,
        versions_after=row.versions_after,
        result=row.result,
    )


def _operation(row: Row[Any]) -> OperationRecord:
    events = tuple(
        OperationEvent(
            at=datetime.fromisoformat(e["at"]),
            state=OperationState(e["state"]),
            http_status=e.get("http_status"),
            message=e.get("message"),
            waited_s=e.get("waited_s"),
            late=bool(e.get("late", False)),
        )
        for e in (row.events or [])
    )
    return OperationRecord(
        operation_id=row.operation_id,
        action=row.action,
        state=OperationState(row.state),
        started_at=row.started_at,
        finished_at=row.finished_at,
        polls=row.polls,
        message=row.message,
        events=events,
    )


@dataclass(frozen=True)
class PruneResult:
    runs: int
    tasks: int
    operations: int
    events: int = 0  # governor events, daemon events and notifications


EVENT_TABLES = (governor_events, daemon_events, notifications)  # pruned by age alone


PRUNE_BATCH = 500
