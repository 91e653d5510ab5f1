"""EnvironmentLocks in SQL: one row per environment; a lease its holder renews while working,
taken over once it lapses (an upsert decides, so exactly one taker wins)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update

from scheduler.history.sql import Database
from scheduler.history.tables import environment_locks

locks = environment_locks.c


class SqlEnvironmentLocks:
    def __init__(self, db: Database) -> None:
        self.db = db

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
        expires = now + timedelta(seconds=lease_s)
        statement = self.db.upsert(environment_locks).values(
            environment_id=environment_id,
            holder=holder,
            label=label,
            acquired_at=now,
            expires_at=expires,
        )
        may_take = [locks.holder == holder, locks.expires_at < now]
        if take_from:
            may_take.append(locks.holder.startswith(take_from, autoescape=True))
        statement = statement.on_conflict_do_update(
            index_elements=["environment_id"],
            set_={
                "holder": statement.excluded.holder,
                "label": statement.excluded.label,
                "acquired_at": statement.excluded.acquired_at,
                "expires_at": statement.excluded.expires_at,
            },
            where=or_(*may_take),
        ).returning(locks.holder)
        with self.db.tx() as tx:
            taken = tx.execute(statement).scalar_one_or_none()
            if taken == holder:
                return None
            label_now = tx.execute(
                select(locks.label).where(locks.environment_id == environment_id)
            ).scalar_one_or_none()
        return str(label_now or "another holder")

    def renew_locks(self, holders: Iterable[str], now: datetime, lease_s: float) -> set[str]:
        """A holder missing from the answer lost its lease: it lapsed (now past expires_at) or
        another holder took the environment."""
        names = list(holders)
        if not names:
            return set()
        with self.db.tx() as tx:
            renewed = tx.execute(
                update(environment_locks)
                .where(locks.holder.in_(names), locks.expires_at >= now)
                .values(expires_at=now + timedelta(seconds=lease_s))
                .returning(locks.holder)
            ).scalars()
            return {str(h) for h in renewed}

    def held_environments(self, environment_ids: Iterable[str], now: datetime) -> set[str]:
        ids = list(environment_ids)
        if not ids:
            return set()
        with self.db.tx() as tx:
            held = tx.execute(
                select(locks.environment_id).where(
                    locks.environment_id.in_(ids), locks.expires_at >= now
                )
            ).scalars()
            return {str(environment_id) for environment_id in held}

    def unlock_environment(self, environment_id: str, holder: str) -> None:
        with self.db.tx() as tx:
            tx.execute(
                delete(environment_locks).where(
                    locks.environment_id == environment_id, locks.holder == holder
                )
            )
