"""What every SQL repository shares: the engine, transactions with error translation, retries on
the injected clock, the owner-token fence, upserts and the row mappers. Works on SQLite and
PostgreSQL."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import structlog
from sqlalchemy import ColumnElement, Connection, Engine, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, SQLAlchemyError

from scheduler.clock import Clock
from scheduler.domain import (
    Run,
)
from scheduler.errors import OwnershipLost, StoreError
from scheduler.history.rows import run_from
from scheduler.history.store import RetryPolicy
from scheduler.history.tables import runs, tasks

log = structlog.get_logger("scheduler.history")

RETRY_PAUSE_S = (0.5, 5.0)  # first and longest pause between tries


@dataclass
class Database:
    """The engine and what the repositories over it share."""

    engine: Engine
    clock: Clock
    retry: RetryPolicy

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        """One transaction; a database failure becomes StoreError (`transient` when it could
        not be reached). IntegrityError passes through: the unique indexes decide claims."""
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

    def upsert(self, table: Table) -> Any:
        """INSERT ... ON CONFLICT for this backend (both dialects spell it alike)."""
        return (postgresql if self.postgres else sqlite).insert(table)

    def check_owner(self, tx: Connection, run_id: int, owner: str | None) -> None:
        """Inside a write's transaction: the run is still `owner`'s, else OwnershipLost. On
        PostgreSQL the run's row is locked until the write commits, so an adoption cannot slip
        in between; on SQLite every transaction already holds the database's write lock."""
        if owner is None:
            return
        query = select(runs.c.owner_token).where(runs.c.id == run_id)
        if self.postgres:
            query = query.with_for_update()
        if tx.execute(query).scalar() != owner:
            raise lost(tx, run_id)

    def check_task_owner(self, tx: Connection, task_id: int, owner: str | None) -> None:
        if owner is not None:
            run_id = tx.execute(select(tasks.c.run_id).where(tasks.c.id == task_id)).scalar_one()
            self.check_owner(tx, int(run_id), owner)


def lost(tx: Connection, run_id: int) -> OwnershipLost:
    holder = tx.execute(select(runs.c.started_by).where(runs.c.id == run_id)).scalar()
    return OwnershipLost(f"run {run_id} was adopted by {holder or 'another process'}")


class Repository(Protocol):
    @property
    def db(self) -> Database: ...


P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound=Repository)


def retried(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Writes the daemon cannot afford to lose: while the database is unreachable, try again
    with backoff (on the store's clock) for up to the policy's `retry_s`, then give up with the
    error. Once the policy's `stop` is set (the process is shutting down) a failed write is not
    retried: what it would have written is left for the next start (a run stays `running` for
    recovery)."""

    @functools.wraps(method)
    def attempt(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        policy, clock = self.db.retry, self.db.clock
        deadline: float | None = None
        pause = RETRY_PAUSE_S[0]
        while True:
            try:
                return method(self, *args, **kwargs)
            except StoreError as exc:
                if not exc.transient or policy.retry_s <= 0 or policy.stop.is_set():
                    raise
                now = clock.monotonic()
                deadline = deadline if deadline is not None else now + policy.retry_s
                if now + pause > deadline:
                    raise
                log.warning(
                    "history.retrying", operation=method.__name__, retry_in_s=pause, error=str(exc)
                )
                if clock.sleep(pause, policy.stop):
                    raise
                pause = min(pause * 2, RETRY_PAUSE_S[1])

    return attempt


def period(since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    """Runs scheduled in [since, until)."""
    found: list[ColumnElement[bool]] = []
    if since:
        found.append(runs.c.scheduled_for >= since)
    if until:
        found.append(runs.c.scheduled_for < until)
    return found


def get_run(tx: Connection, run_id: int) -> Run | None:
    row = tx.execute(select(runs).where(runs.c.id == run_id)).one_or_none()
    return run_from(row) if row else None
