"""The rate-limit ledger in the history database: every process that uses the same key (a
`trigger` beside the daemon, replicas on one PostgreSQL) takes its permits here, so together they
stay under Kinsta's limits. Why here: the database is already shared by exactly those processes,
it survives restarts (a crash-looping daemon cannot burst), and it needs no extra service.

PostgreSQL: the deciding transaction locks each bucket's row (SELECT ... FOR UPDATE), which
serialises deciders per bucket across hosts; times come from clock_timestamp(). SQLite: every
transaction is BEGIN IMMEDIATE (see db.py), which serialises deciders on the one host.
Waiting happens outside any transaction. If the database fails, no permit is granted (fail closed).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from sqlalchemy import Connection, Engine, and_, delete, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from scheduler.errors import StoreError
from scheduler.history.tables import rate_buckets, rate_permits
from scheduler.ratelimit import BucketLimit, Grant, wait_for

PRUNE_PROBABILITY = 0.02


class SqlLedger:
    def __init__(self, engine: Engine, rng: random.Random | None = None) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._rng = rng or random.Random()

    def _now(self, tx: Connection) -> float:
        if self._postgres:
            return float(
                tx.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one()
            )
        return time.time()

    def _lock_buckets(self, tx: Connection, names: Sequence[str]) -> dict[str, float | None]:
        insert = postgresql.insert if self._postgres else sqlite.insert
        tx.execute(
            insert(rate_buckets).on_conflict_do_nothing(index_elements=["bucket"]),
            [{"bucket": name} for name in names],
        )
        query = (
            select(rate_buckets)
            .where(rate_buckets.c.bucket.in_(names))
            .order_by(rate_buckets.c.bucket)
        )
        if self._postgres:
            query = query.with_for_update()
        return {row.bucket: row.blocked_until for row in tx.execute(query)}

    def _stamps(
        self, tx: Connection, bucket: str, now: float, window_s: float, hold_s: float
    ) -> list[float]:
        horizon = now - window_s
        expiry = func.coalesce(rate_permits.c.released_at, rate_permits.c.taken_at + hold_s)
        rows = tx.execute(
            select(expiry)
            .where(
                rate_permits.c.bucket == bucket,
                or_(
                    rate_permits.c.released_at > horizon,
                    and_(
                        rate_permits.c.released_at.is_(None),
                        rate_permits.c.taken_at + hold_s > horizon,
                    ),
                ),
            )
            .order_by(expiry)
        )
        return [float(v) for v in rows.scalars()]

    def acquire(
        self, buckets: Sequence[BucketLimit], window_s: float, hold_s: float
    ) -> Grant | float:
        names = [b.name for b in buckets]
        try:
            with self.engine.begin() as tx:
                blocked = self._lock_buckets(tx, names)
                now = self._now(tx)
                waits = [(blocked.get(b.name) or 0.0) - now for b in buckets]
                waits += [
                    wait_for(
                        self._stamps(tx, b.name, now, window_s, hold_s), b.limit, window_s, now
                    )
                    for b in buckets
                ]
                if max(waits) > 0:
                    return max(waits)
                ids = tx.execute(
                    rate_permits.insert().returning(
                        rate_permits.c.id, sort_by_parameter_order=True
                    ),
                    [{"bucket": name, "taken_at": now} for name in names],
                ).scalars()
                grant = Grant(tuple(int(i) for i in ids))
                if self._rng.random() < PRUNE_PROBABILITY:
                    cutoff = now - 2 * window_s - hold_s
                    tx.execute(delete(rate_permits).where(rate_permits.c.taken_at < cutoff))
                return grant
        except SQLAlchemyError as exc:
            raise StoreError(f"rate ledger unavailable: {exc.__class__.__name__}") from exc

    def release(self, grant: Grant) -> None:
        try:
            with self.engine.begin() as tx:
                now = self._now(tx)
                tx.execute(
                    update(rate_permits)
                    .where(rate_permits.c.id.in_(grant.ids))
                    .values(released_at=now)
                )
        except SQLAlchemyError as exc:
            # The permit then counts until taken + hold: conservative, never over the limit.
            raise StoreError(f"rate ledger unavailable: {exc.__class__.__name__}") from exc

    def count(self, bucket: str, window_s: float, hold_s: float) -> int:
        try:
            with self.engine.begin() as tx:
                now = self._now(tx)
                return len(self._stamps(tx, bucket, now, window_s, hold_s))
        except SQLAlchemyError as exc:
            raise StoreError(f"rate ledger unavailable: {exc.__class__.__name__}") from exc

    def block(self, bucket: str, seconds: float) -> None:
        try:
            with self.engine.begin() as tx:
                current = self._lock_buckets(tx, [bucket]).get(bucket) or 0.0
                until = max(current, self._now(tx) + seconds)
                tx.execute(
                    update(rate_buckets)
                    .where(rate_buckets.c.bucket == bucket)
                    .values(blocked_until=until)
                )
        except SQLAlchemyError as exc:
            raise StoreError(f"rate ledger unavailable: {exc.__class__.__name__}") from exc
