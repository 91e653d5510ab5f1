"""The permit ledger's contract, for the in-memory ledger and the SQL ledger on SQLite and on
PostgreSQL: never more than the limit in any window, atomic across buckets, blocks shared."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from scheduler.history import make_engine
from scheduler.history.ledger import SqlLedger
from scheduler.history.migrate import upgrade
from scheduler.history.tables import rate_permits
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


# --- the SQLite ledger's clock (issue 11 item 19) ------------------------------------------------

FULL = BucketLimit("company:full", 3)
MINUTE = 60.0


@pytest.fixture
def sqlite_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(empty_database("sqlite", request, tmp_path))
    upgrade(engine)
    yield engine
    engine.dispose()


def fill(ledger: SqlLedger) -> None:
    for _ in range(FULL.limit):
        grant = ledger.acquire([FULL], MINUTE, HOLD_S)
        assert isinstance(grant, Grant)
        ledger.release(grant)


def test_a_wall_clock_step_forward_grants_nothing_extra(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = SqlLedger(sqlite_engine)
    fill(ledger)
    stepped = time.time() + 61  # NTP steps the wall clock a minute ahead
    monkeypatch.setattr(time, "time", lambda: stepped)
    wait = ledger.acquire([FULL], MINUTE, HOLD_S)
    assert isinstance(wait, float) and MINUTE - 5 < wait <= MINUTE


def test_a_wall_clock_step_back_stalls_nothing(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = SqlLedger(sqlite_engine)
    for _ in range(FULL.limit):
        ledger.release(take(ledger, BucketLimit(FULL.name, FULL.limit)))
    time.sleep(WINDOW_S + 0.05)
    stepped = time.time() - 600  # ten minutes back
    monkeypatch.setattr(time, "time", lambda: stepped)
    assert isinstance(ledger.acquire([FULL], WINDOW_S, HOLD_S), Grant)


class Ticks:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("new_boot_clock", [5.0, 50_000.0])
def test_after_a_reboot_the_permits_of_the_last_boot_still_count(
    sqlite_engine: Engine, new_boot_clock: float
) -> None:
    """The host's clock restarts at boot: the new boot neither stalls for the old clock's
    uptime nor forgets the permits taken just before the reboot."""
    before = SqlLedger(sqlite_engine, ticks=Ticks(10_000.0), boot_id="boot-1")
    fill(before)
    ticks = Ticks(new_boot_clock)
    after = SqlLedger(sqlite_engine, ticks=ticks, boot_id="boot-2")
    wait = after.acquire([FULL], MINUTE, HOLD_S)
    assert isinstance(wait, float) and wait == pytest.approx(MINUTE, abs=0.01)
    ticks.now += MINUTE + 0.01
    assert isinstance(after.acquire([FULL], MINUTE, HOLD_S), Grant)
    again = SqlLedger(sqlite_engine, ticks=ticks, boot_id="boot-2")  # another process, same boot
    assert isinstance(again.acquire([FULL], MINUTE, HOLD_S), Grant)
    assert isinstance(again.acquire([FULL], MINUTE, HOLD_S), Grant)
    wait = again.acquire([FULL], MINUTE, HOLD_S)  # three unreleased permits of this boot: full
    assert isinstance(wait, float) and wait == pytest.approx(MINUTE + HOLD_S, abs=0.01)


def test_stamps_of_the_old_wall_clock_ledger_are_carried_over(sqlite_engine: Engine) -> None:
    """A database written by the wall-clock ledger: its permits are not seen 56 years ahead."""
    with sqlite_engine.begin() as db:
        now = time.time()
        db.execute(
            rate_permits.insert(),
            [{"bucket": FULL.name, "taken_at": now, "released_at": now}] * FULL.limit,
        )
    ledger = SqlLedger(sqlite_engine)
    wait = ledger.acquire([FULL], MINUTE, HOLD_S)
    assert isinstance(wait, float) and wait == pytest.approx(MINUTE, abs=0.01)


def test_processes_on_one_host_share_the_clock(sqlite_engine: Engine) -> None:
    first, second = SqlLedger(sqlite_engine), SqlLedger(sqlite_engine)
    fill(first)
    wait = second.acquire([FULL], MINUTE, HOLD_S)
    assert isinstance(wait, float) and MINUTE - 5 < wait <= MINUTE
