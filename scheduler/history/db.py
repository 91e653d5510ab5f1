"""Engines for the history database: SQLite (embedded default) and PostgreSQL (psycopg 3).

SQLite: WAL so the daemon and a CLI query share the file; a busy timeout so a locked file waits
instead of failing; foreign keys on; every transaction BEGIN IMMEDIATE, because in WAL a deferred
transaction that reads then writes fails at once with SQLITE_BUSY instead of waiting (Python 3.11's
sqlite3 cannot be told this, hence the documented connect/begin event recipe).
PostgreSQL: pre-ping, and the session zone set to UTC.
A new SQLite file is created 0600 (its -wal and -shm files follow its mode).
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from scheduler.errors import BadInputError

SQLITE_BUSY_TIMEOUT_MS = 15_000
_FORMS = "use sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB"


def normalise_url(url: str) -> str:
    # Not quoted when it cannot be parsed: there is no telling which part is a password.
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise BadInputError(f"the database URL cannot be parsed: {_FORMS}") from exc
    except ValueError as exc:
        message = f"the database URL cannot be parsed (its host or port is malformed): {_FORMS}"
        raise BadInputError(message) from exc
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise BadInputError(f"database URL {redact(url)!r}: port {parsed.port} is not 1-65535")
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if backend == "sqlite":
        return url
    raise BadInputError(
        f"database URL {redact(url)!r}: unsupported scheme {parsed.drivername!r} ({_FORMS})"
    )


def refuse_in_memory(url: str) -> None:
    """A command that records needs a history that outlives it: an in-memory SQLite database
    vanishes with its connection (each pooled connection even gets its own, without tables)."""
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() != "sqlite":
        return
    database = parsed.database or ""
    if (
        database in ("", ":memory:")
        or database.startswith("file::memory:")
        or (parsed.query.get("mode") == "memory")
    ):
        raise BadInputError(
            f"database URL {redact(url)!r} is an in-memory SQLite database, which keeps no "
            "history: give a file (sqlite:///PATH) or PostgreSQL"
        )


def redact(url: str) -> str:
    """The URL without its password (as written when it has none)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return "<unparseable>"
    return url if parsed.password is None else parsed.render_as_string(hide_password=True)


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        _create_private(make_url(url).database)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args={"options": "-c timezone=UTC", "connect_timeout": 10},
    )


def _create_private(path: str | None) -> None:
    """Create a new SQLite file 0600 before SQLite opens it: the history names every site and
    what was done to it, so it is no one else's to read. SQLite gives the -wal, -shm and
    -journal files it creates beside it the database file's mode."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError:
        return  # it exists, or SQLite will say why it cannot be opened


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
