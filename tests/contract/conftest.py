"""The storage contract: every test here runs over each implementation of the ports, in memory,
on a real SQLite file and on the real PostgreSQL (skipped without it, as the pg tests are)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.history import HistoryStore, make_engine, memory_store, sql_store
from scheduler.history.migrate import upgrade
from tests.conftest import empty_database


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HistoryStore]:
    if request.param == "memory":
        yield memory_store()
        return
    engine = make_engine(empty_database(request.param, request, tmp_path))
    upgrade(engine)
    yield sql_store(engine)
    engine.dispose()
