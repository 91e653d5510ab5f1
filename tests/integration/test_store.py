"""What only the SQL store can show: the rows themselves (tests/contract holds the ports'
contract over every store)."""

from __future__ import annotations

from datetime import datetime, timedelta

from scheduler.history import SqlHistoryStore
from tests.contract.test_store import T0, TARGETS


def test_prune_keeps_each_environments_newest_inventory(store: SqlHistoryStore) -> None:
    from scheduler.domain import InventorySnapshot

    def snap(at: datetime) -> InventorySnapshot:
        return InventorySnapshot("alpha", "live", at, "8.2", "6.6", (), (), ())

    old = T0 - timedelta(days=200)
    for days in (0, 1, 2):
        store.catalogue.record_inventory(None, None, TARGETS[0], snap(old + timedelta(days=days)))
    store.catalogue.record_inventory(None, None, TARGETS[2], snap(old))  # beta: its only snapshot
    store.maintenance.prune(T0 - timedelta(days=90), keep_last=0)
    store.maintenance.optimize()
    latest = store.catalogue.latest_inventory()
    assert [(s.site, s.taken_at) for s in latest] == [
        ("alpha", old + timedelta(days=2)),
        ("beta", old),
    ]
    with store.engine.connect() as connection:
        remaining = connection.exec_driver_sql("SELECT count(*) FROM inventory").scalar_one()
    assert remaining == 2
