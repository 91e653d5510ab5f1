"""The history database as a file: private to its owner, refused when it cannot hold anything
(in memory) or cannot be written (read-only), at start and with one clear line."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from scheduler.bootstrap import open_store
from scheduler.errors import BadInputError, StoreError
from scheduler.history import RunFilter, make_engine
from scheduler.history.migrate import upgrade


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_sqlite_history_and_its_siblings_are_private(tmp_path: Path, umask_022: None) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'history.db'}")
    store.events.record_daemon_event("me", "started", None, datetime(2026, 11, 1, tzinfo=UTC))
    files = sorted(p.name for p in tmp_path.iterdir())
    assert "history.db" in files and "history.db-wal" in files
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    store.engine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///file::memory:?cache=shared&uri=true",
        "sqlite:///file:x?mode=memory&uri=true",
    ],
)
def test_an_in_memory_database_is_refused_for_recording(url: str) -> None:
    with pytest.raises(BadInputError, match=r"in-memory SQLite database, which keeps no history"):
        open_store(url, recording=True)


@contextmanager
def read_only(url: str) -> Iterator[str]:
    """The same history, opened so that it refuses writes: SQLite's read-only mode, or a
    PostgreSQL database whose transactions are read-only by default."""
    if url.startswith("sqlite:///"):
        yield f"sqlite:///file:{url.removeprefix('sqlite:///')}?mode=ro&uri=true"
        return
    name = make_url(url).database
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(
            f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'
        )
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql("SET default_transaction_read_only = off")
            connection.exec_driver_sql(
                f'ALTER DATABASE "{name}" RESET default_transaction_read_only'
            )
        admin.dispose()


def test_a_database_that_refuses_writes_is_an_error_at_start(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    open_store(database_url, recording=True).engine.dispose()  # writable
    with read_only(database_url) as url:
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"cannot be written: .*read-?only") as caught:
            open_store(url, recording=True)
        assert not caught.value.transient
        assert time.monotonic() - started < 10
        reader = open_store(url)  # reading it is fine
        assert reader.queries.list_runs(RunFilter()) == []
        reader.engine.dispose()
