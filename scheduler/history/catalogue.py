"""Catalogue in SQL: when each plugin or theme version was first seen on offer, and the
inventory snapshots (the newest of each environment answers `sites`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Over, delete, func, insert, select

from scheduler.domain import InventorySnapshot, Target
from scheduler.history.rows import snapshot_from
from scheduler.history.sql import Database, retried
from scheduler.history.tables import inventory, item_versions


def _newest_first() -> Over[int]:
    """Each environment's snapshots ranked newest first (rank 1: its latest)."""
    return func.row_number().over(
        partition_by=(inventory.c.site, inventory.c.environment),
        order_by=(inventory.c.taken_at.desc(), inventory.c.id.desc()),
    )


class SqlCatalogue:
    def __init__(self, db: Database) -> None:
        self.db = db

    @retried
    def note_available(
        self, kind: str, offered: Iterable[tuple[str, str]], now: datetime
    ) -> dict[tuple[str, str], datetime]:
        pairs = sorted(set(offered))
        if not pairs:
            return {}
        with self.db.tx() as tx:
            statement = self.db.upsert(item_versions)
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

    @retried
    def record_inventory(
        self, task_id: int | None, run_id: int | None, target: Target, snapshot: InventorySnapshot
    ) -> None:
        with self.db.tx() as tx:
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
        # Rank on the narrow columns only (the index has them), then fetch the winners' rows:
        # ranking whole rows would read every snapshot's JSON.
        ranked = select(inventory.c.id, _newest_first().label("rank"))
        if site is not None:
            ranked = ranked.where(inventory.c.site == site)
        sub = ranked.subquery()
        query = (
            select(inventory)
            .where(inventory.c.id.in_(select(sub.c.id).where(sub.c.rank == 1)))
            .order_by(inventory.c.site, inventory.c.environment)
        )
        with self.db.tx() as tx:
            rows = tx.execute(query).all()
        return [snapshot_from(r) for r in rows]

    def prune_inventory(self, older_than: datetime) -> None:
        """Snapshots older than the cutoff go, except each environment's newest."""
        ranked = select(
            inventory.c.id,
            inventory.c.taken_at,
            _newest_first().label("rank"),
        ).subquery()
        doomed = select(ranked.c.id).where(ranked.c.rank > 1, ranked.c.taken_at < older_than)
        with self.db.tx() as tx:
            tx.execute(delete(inventory).where(inventory.c.id.in_(doomed)))
