"""Job pauses in SQL: one row per paused job (`job_pauses`), which every replica reads at each
firing (scheduler.pauses says what a pause holds)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, or_, select

from scheduler.history.rows import utc
from scheduler.history.sql import Database, retried
from scheduler.history.tables import job_pauses
from scheduler.pauses import JobPause


def pause_from(row: Row[Any]) -> JobPause:
    return JobPause(
        job_id=row.job_id,
        paused_at=utc(row.paused_at),
        by=row.paused_by,
        until=utc(row.until) if row.until is not None else None,
        reason=row.reason,
    )


class SqlPauseBook:
    def __init__(self, db: Database) -> None:
        self.db = db

    @retried
    def pause(self, pause: JobPause) -> JobPause | None:
        values = {
            "paused_at": pause.paused_at,
            "paused_by": pause.by,
            "until": pause.until,
            "reason": pause.reason,
        }
        with self.db.tx() as tx:
            before = self._get(tx, pause.job_id, lock=True)
            statement = self.db.upsert(job_pauses).values(job_id=pause.job_id, **values)
            tx.execute(statement.on_conflict_do_update(index_elements=["job_id"], set_=values))
        return before if before is not None and before.active(pause.paused_at) else None

    @retried
    def resume(self, job_id: str, now: datetime) -> JobPause | None:
        with self.db.tx() as tx:
            before = self._get(tx, job_id, lock=True)
            tx.execute(delete(job_pauses).where(job_pauses.c.job_id == job_id))
        return before if before is not None and before.active(now) else None

    def paused(self, job_id: str, now: datetime) -> JobPause | None:
        with self.db.tx() as tx:
            found = self._get(tx, job_id)
        return found if found is not None and found.active(now) else None

    def pauses(self, now: datetime) -> list[JobPause]:
        c = job_pauses.c
        query = select(job_pauses).where(or_(c.until.is_(None), c.until > now)).order_by(c.job_id)
        with self.db.tx() as tx:
            return [pause_from(row) for row in tx.execute(query).all()]

    def _get(self, tx: Connection, job_id: str, *, lock: bool = False) -> JobPause | None:
        query = select(job_pauses).where(job_pauses.c.job_id == job_id)
        if lock and self.db.postgres:
            query = query.with_for_update()
        row = tx.execute(query).one_or_none()
        return pause_from(row) if row is not None else None
