"""Shared fixtures: a sandbox on loopback, history stores on a real SQLite file and on the real
PostgreSQL (a fresh database per session), and a fake clock for pure logic."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from scheduler.clock import Clock
from scheduler.history import SqlHistoryStore, make_engine, sql_store
from scheduler.history.migrate import upgrade
from scheduler.sandbox import Sandbox, SandboxOptions, SandboxServer

PG_ADMIN_URL = os.environ.get(
    "KINSTA_SCHEDULER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# How the sandboxes of the tests make operation ids: "fresh" (the sandbox's default) or
# "per-target" (`sandbox --operation-ids` reads the same variable). `make test` runs the suite
# with fresh ids, then the tests where ids matter again with per-target ids (make test-ids).
OPERATION_IDS = os.environ.get("KINSTA_SANDBOX_OPERATION_IDS", "fresh")
if OPERATION_IDS not in ("fresh", "per-target"):
    raise pytest.UsageError(
        f"KINSTA_SANDBOX_OPERATION_IDS={OPERATION_IDS!r}: use fresh or per-target"
    )


# Tests that start the executable (its daemon, its sandbox) and wait on them for seconds each:
# the unparametrised tests of these directories. The chaos run is the longest of all.
HEAVY_DIRS = ("tests/acceptance/", "tests/reliability/")
LONGEST = ("tests/reliability/test_chaos.py",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist (`--dist worksteal`, as `make test` runs) each worker starts on an equal,
    contiguous share of the tests and idle workers take the back half of the longest queue. Put
    the long tests (in collection order, the longest first) at the front of each share and the
    short ones behind, so every worker starts on its part of the long ones and the run ends on
    short ones that balance. The order is the same in every worker, as xdist requires."""
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    if workers < 2:
        return
    heavy = [item for item in items if _heavy(item)]
    heavy.sort(key=lambda item: not item.nodeid.startswith(LONGEST))  # stable
    light = [item for item in items if not _heavy(item)]
    ordered: list[pytest.Item] = []
    for share in range(workers):
        mine = heavy[share::workers]
        size = (len(items) - len(ordered)) // (workers - share)
        ordered += mine + light[: max(0, size - len(mine))]
        light = light[max(0, size - len(mine)) :]
    items[:] = ordered + light


def _heavy(item: pytest.Item) -> bool:
    return item.nodeid.startswith(HEAVY_DIRS) and not hasattr(item, "callspec")


class FakeClock:
    """A clock that only moves when told to (sleep advances it at once)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
        self._mono = 1000.0
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._mono += seconds
        self._now += timedelta(seconds=seconds)

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        if cancel is not None and cancel.is_set():
            return True
        self.slept.append(seconds)
        self.advance(max(0.0, seconds))
        return False


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


def checked_sandbox(clock: Clock | None = None, **options: Any) -> Iterator[SandboxServer]:
    """A sandbox on loopback; the test fails if any request it received broke the spec, or if
    the sandbox answered anything the spec does not document."""
    defaults = {"sites": 6, "seed": 7, "time_scale": 0.02, "operation_ids": OPERATION_IDS}
    server = SandboxServer(Sandbox(SandboxOptions(**{**defaults, **options}), clock)).start()
    yield server
    server.stop()
    stats = server.sandbox.snapshot()
    assert stats["violations"] == [], "requests that do not match openapi.json"
    assert stats["response_violations"] == [], "sandbox responses that do not match openapi.json"
    assert stats["canned"] == {}, "WordPress operations must be modelled, not canned"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    yield from checked_sandbox()


def _pg_available() -> bool:
    engine = create_engine(PG_ADMIN_URL)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except OperationalError:
        return False
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this session. In CI an unreachable server fails."""
    if not _pg_available():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is unreachable at {PG_ADMIN_URL} and CI=true")
        pytest.skip("PostgreSQL is not reachable (set KINSTA_SCHEDULER_TEST_PG_URL)")
    name = f"ks_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset_pg(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def empty_database(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'history.db'}"
    url: str = request.getfixturevalue("pg_url")
    _reset_pg(url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind (not yet migrated)."""
    return empty_database(request.param, request, tmp_path)


@pytest.fixture
def store(database_url: str) -> Iterator[SqlHistoryStore]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield sql_store(engine)
    engine.dispose()
