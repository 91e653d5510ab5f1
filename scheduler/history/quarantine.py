"""Quarantine in SQL: plugin and theme versions no update takes, one row per (kind, name,
version), with the evidence that put each there."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, and_, select, update

from scheduler.history.rows import utc
from scheduler.history.sql import Database, retried
from scheduler.history.tables import quarantine
from scheduler.ports import QUARANTINED_BY_ROLLBACK, QuarantineEntry

COLUMNS = (
    "kind", "name", "version", "reason", "added_by", "added_at", "site", "environment", "run_id",
    "task_id", "rollbacks", "released_at",
)  # fmt: skip


def entry_from(row: Row[Any]) -> QuarantineEntry:
    released = row.released_at
    return QuarantineEntry(
        kind=row.kind,
        name=row.name,
        version=row.version,
        reason=row.reason,
        added_at=utc(row.added_at),
        added_by=row.added_by,
        site=row.site,
        environment=row.environment,
        run_id=row.run_id,
        task_id=row.task_id,
        rollbacks=row.rollbacks,
        released_at=utc(released) if released is not None else None,
    )


def _key(kind: str, name: str, version: str) -> ColumnElement[bool]:
    c = quarantine.c
    return and_(c.kind == kind, c.name == name, c.version == version)


class SqlQuarantine:
    def __init__(self, db: Database) -> None:
        self.db = db

    @retried
    def add(self, entry: QuarantineEntry) -> QuarantineEntry:
        values = {name: getattr(entry, name) for name in COLUMNS} | {"released_at": None}
        key = _key(entry.kind, entry.name, entry.version)
        with self.db.tx() as tx:
            # RETURNING says whether the row went in (psycopg's rowcount is -1 here).
            statement = self.db.upsert(quarantine).values(**values).on_conflict_do_nothing()
            inserted = tx.execute(statement.returning(quarantine.c.kind)).first()
            if inserted is None:
                self._again(tx, key, values, rollback=entry.added_by == QUARANTINED_BY_ROLLBACK)
            return entry_from(tx.execute(select(quarantine).where(key)).one())

    @staticmethod
    def _again(
        tx: Connection, key: ColumnElement[bool], values: dict[str, Any], *, rollback: bool
    ) -> None:
        """A version already listed: a released one takes the new evidence; one still
        quarantined keeps its first and counts the rollback."""
        released = quarantine.c.released_at.is_not(None)
        replaced = tx.execute(
            update(quarantine).where(key, released).values(**values).returning(quarantine.c.kind)
        ).first()
        if replaced is None and rollback:
            tx.execute(update(quarantine).where(key).values(rollbacks=quarantine.c.rollbacks + 1))

    def held(
        self, kind: str, offered: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], QuarantineEntry]:
        wanted = set(offered)
        if not wanted:
            return {}
        c = quarantine.c
        query = select(quarantine).where(
            c.kind == kind, c.released_at.is_(None), c.name.in_({n for n, _ in wanted})
        )
        with self.db.tx() as tx:
            rows = tx.execute(query).all()
        found = (entry_from(r) for r in rows)
        return {(e.name, e.version): e for e in found if (e.name, e.version) in wanted}

    @retried
    def release(self, name: str, version: str | None, now: datetime) -> list[QuarantineEntry]:
        c = quarantine.c
        where = [c.name == name, c.released_at.is_(None)]
        if version is not None:
            where.append(c.version == version)
        with self.db.tx() as tx:
            rows = tx.execute(select(quarantine).where(*where).order_by(c.kind, c.version)).all()
            tx.execute(update(quarantine).where(*where).values(released_at=now))
        return [replace(entry_from(r), released_at=utc(now)) for r in rows]

    def entries(self, *, released: bool = False) -> list[QuarantineEntry]:
        c = quarantine.c
        query = select(quarantine).order_by(c.kind, c.name, c.version)
        if not released:
            query = query.where(c.released_at.is_(None))
        with self.db.tx() as tx:
            return [entry_from(r) for r in tx.execute(query).all()]
