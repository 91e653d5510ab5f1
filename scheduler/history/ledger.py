"""The rate-limit ledger in the history database: every process that uses the same key (a
`trigger` beside the daemon, replicas on one PostgreSQL) takes its permits here, so together they
stay under Kinsta's limits. Why here: the database is already shared by exactly those processes,
it survives restarts (a crash-looping daemon cannot burst), and it needs no extra service.

PostgreSQL: the deciding transaction locks each bucket's row (SELECT ... FOR UPDATE), which
serialises deciders per bucket across hosts; times come from clock_timestamp(). SQLite: every
transaction is BEGIN IMMEDIATE (see db.py), which serialises deciders on the one host.
Waiting happens outside any transaction. If the database fails, no permit is granted (fail closed).

The SQLite ledger's clock cannot jump: it is the host's CLOCK_BOOTTIME (monotonic, counting
suspend), which every process on the host reads alike, so processes sharing the file agree. It
restarts at each boot: the ledger records the boot it counts in (a `~boot:<boot id>` row), and
the first process of a new boot (or one that finds stamps of another clock: a database from
before this clock, or copied from another host) moves every stamp forward as if no time had
passed since the last one, which can only make it wait longer, never exceed a limit.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import Connection, Engine, and_, delete, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from scheduler.errors import StoreError
from scheduler.history.tables import rate_buckets, rate_permits
from scheduler.ratelimit import BucketLimit, Grant, wait_for

PRUNE_PROBABILITY = 0.02
BOOT_ROW = "~boot:"  # rate_buckets row naming the boot whose clock the SQLite stamps count in
BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


def host_ticks() -> float:
    """Seconds since this host booted, suspend included; never steps (unlike the wall clock)."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(boottime) if boottime is not None else time.monotonic()


def host_boot_id() -> str:
    """This boot's id, the same for every process (and container) on the host until reboot."""
    try:
        return BOOT_ID_FILE.read_text().strip() or "unknown"
    except OSError:  # not Linux: a reboot is still caught by stamps ahead of the clock
        return "unknown"


class SqlLedger:
    def __init__(
        self,
        engine: Engine,
        rng: random.Random | None = None,
        *,
        ticks: Callable[[], float] = host_ticks,
        boot_id: str | None = None,
    ) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._rng = rng or random.Random()
        self._ticks = ticks
        self._boot = BOOT_ROW + (boot_id if boot_id is not None else host_boot_id())
        self._boot_checked = False  # the stamps are known to count in this boot's clock

    def _now(self, tx: Connection) -> float:
        if self._postgres:
            return float(
                tx.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one()
            )
        now = self._ticks()
        if not self._boot_checked:
            self._boot_checked = self._check_boot(tx, now)
        return now

    def _check_boot(self, tx: Connection, now: float) -> bool:
        """True when the stamps already count in this boot's clock; else move them into it (the
        transaction commits that, and the next one finds them right)."""
        boots = set(
            tx.execute(
                select(rate_buckets.c.bucket).where(rate_buckets.c.bucket.startswith(BOOT_ROW))
            ).scalars()
        )
        stamp = func.coalesce(rate_permits.c.released_at, rate_permits.c.taken_at)
        latest = tx.execute(select(func.max(stamp))).scalar()
        ahead = latest is not None and float(latest) > now + 1.0  # a clock that restarted
        if boots == {self._boot} and not ahead:
            return True
        # Another clock: pretend no time passed since its latest stamp (never less waiting).
        shift = now - float(latest) if latest is not None else 0.0
        tx.execute(
            update(rate_permits).values(
                taken_at=rate_permits.c.taken_at + shift,
                released_at=rate_permits.c.released_at + shift,
            )
        )
        blocks = rate_buckets.c.blocked_until
        tx.execute(
            update(rate_buckets)
            .where(blocks.is_not(None), ~rate_buckets.c.bucket.startswith(BOOT_ROW))
            .values(blocked_until=blocks + shift if latest is not None else None)
        )
        tx.execute(delete(rate_buckets).where(rate_buckets.c.bucket.startswith(BOOT_ROW)))
        tx.execute(rate_buckets.insert().values(bucket=self._boot))
        return False

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
