"""The permit ledger's contract, for the in-memory ledger and the SQL ledger on SQLite and on
PostgreSQL: never more than the limit in any window, atomic across buckets, blocks shared."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.history import make_engine
from scheduler.history.ledger import SqlLedger
from scheduler.history.migrate import upgrade
from scheduler.ratelimit import BucketLimit, Grant, Ledger, MemoryLedger
from tests.conftest import empty_database

A = BucketLimit("company:a", 3)
CREATE = BucketLimit("creation:a", 1)
WINDOW_S = 0.6
HOLD_S = 5.0


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "memory":
        yield MemoryLedger(time.monotonic)
        return
    engine = make_engine(empty_database(request.param, request, tmp_path))
    upgrade(engine)
    yield SqlLedger(engine)
    engine.dispose()


def take(ledger: Ledger, *buckets: BucketLimit) -> Grant:
    result = ledger.acquire(list(buckets), WINDOW_S, HOLD_S)
    assert isinstance(result, Grant), f"had to wait {result:.3f}s"
    return result


def test_grants_up_to_the_limit_then_says_how_long_to_wait(ledger: Ledger) -> None:
    grants = [take(ledger, A) for _ in range(3)]
    for grant in grants:
        ledger.release(grant)
    wait = ledger.acquire([A], WINDOW_S, HOLD_S)
    assert isinstance(wait, float) and 0 < wait <= WINDOW_S
    time.sleep(wait + 0.01)
    take(ledger, A)


def test_unreleased_permits_count_until_hold_expires(ledger: Ledger) -> None:
    for _ in range(3):
        take(ledger, A)  # never released: their holder "died"
    wait = ledger.acquire([A], WINDOW_S, HOLD_S)
    assert isinstance(wait, float) and wait > HOLD_S


def test_buckets_are_taken_together_or_not_at_all(ledger: Ledger) -> None:
    ledger.release(take(ledger, A, CREATE))
    assert isinstance(ledger.acquire([A, CREATE], WINDOW_S, HOLD_S), float)  # creation is full
    for _ in range(2):
        take(ledger, A)  # the failed attempt took nothing from company:a


def test_a_block_pauses_the_bucket(ledger: Ledger) -> None:
    ledger.block(A.name, 0.3)
    wait = ledger.acquire([A], WINDOW_S, HOLD_S)
    assert isinstance(wait, float) and 0.2 < wait <= 0.3
    ledger.block(A.name, 0.01)  # a shorter block never shortens a longer one
    assert isinstance(ledger.acquire([A], WINDOW_S, HOLD_S), float)


def test_threads_never_exceed_the_limit_in_any_window(ledger: Ledger) -> None:
    limit = BucketLimit("company:busy", 5)
    window = 0.4
    taken: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(4):
            while not isinstance(grant := ledger.acquire([limit], window, HOLD_S), Grant):
                time.sleep(min(grant, 0.02))
            with lock:
                taken.append(time.monotonic())
            time.sleep(0.005)
            ledger.release(grant)

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    taken.sort()
    assert len(taken) == 20
    for i, start in enumerate(taken):
        assert len([t for t in taken[i:] if t - start < window]) <= 5
