"""What only the SQL store can show: the rows themselves (tests/contract holds the ports'
contract over every store)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from scheduler.domain import RunTrigger
from scheduler.errors import StoreError
from scheduler.history import SqlHistoryStore, make_engine, sql_store
from tests.conftest import FakeClock
from tests.contract.test_store import T0, prune_old_inventory


def test_prune_keeps_each_environments_newest_inventory(store: SqlHistoryStore) -> None:
    prune_old_inventory(store)
    with store.engine.connect() as connection:
        remaining = connection.exec_driver_sql("SELECT count(*) FROM inventory").scalar_one()
    assert remaining == 2


def test_writes_retry_on_the_stores_clock(tmp_path: Path, fake_clock: FakeClock) -> None:
    """While the database cannot be reached, a write retries with backoff for `retry_s`, waiting
    on the injected clock (no real sleeping), then gives up with the error."""
    engine = make_engine(f"sqlite:///{tmp_path / 'missing' / 'history.db'}")
    store = sql_store(engine, retry_s=30, clock=fake_clock)
    started = time.monotonic()
    with pytest.raises(StoreError) as raised:
        store.runs.claim_run("j", RunTrigger.SCHEDULE, T0, T0, started_by="x")
    assert raised.value.transient
    assert fake_clock.slept[:3] == [0.5, 1.0, 2.0] and 25 < sum(fake_clock.slept) <= 30
    assert time.monotonic() - started < 5
    store.stop.set()  # shutdown: no retry at all
    fake_clock.slept.clear()
    with pytest.raises(StoreError):
        store.runs.claim_run("j", RunTrigger.SCHEDULE, T0, T0, started_by="x")
    assert fake_clock.slept == []
    engine.dispose()
