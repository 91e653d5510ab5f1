"""The history database as a file: private to its owner, refused when it cannot hold anything
(in memory) or cannot be written (read-only), at start and with one clear line."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scheduler.errors import BadInputError
from scheduler.services import open_store


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_sqlite_history_and_its_siblings_are_private(tmp_path: Path, umask_022: None) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'history.db'}")
    store.record_daemon_event("me", "started", None, datetime(2026, 11, 1, tzinfo=UTC))
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
