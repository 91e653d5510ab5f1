"""Alembic, driven from code: the migrations ship inside the package (scheduler._migrations)."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from scheduler.errors import BadInputError, SchemaOutOfDateError, StoreError
from scheduler.history.db import redact


def alembic_config(engine: Engine) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(resources.files("scheduler._migrations")))
    config.attributes["engine"] = engine
    return config


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        where = redact(str(engine.url))
        raise StoreError(
            f"cannot reach the history database {where}: {exc.__class__.__name__}", transient=True
        ) from exc


def upgrade(engine: Engine, revision: str = "head") -> None:
    _migrate(command.upgrade, engine, revision)


def downgrade(engine: Engine, revision: str) -> None:
    _migrate(command.downgrade, engine, revision)


def may_exist(engine: Engine, revision: str) -> bool:
    """False only for a revision no migration has (downgrade refuses it with its own message),
    so a question is not asked before an error; relative ones (-1, head-2) may exist."""
    if not revision.strip():
        return False
    if revision in ("base", "head", "heads") or any(c in revision for c in "-+@:"):
        return True
    script = ScriptDirectory.from_config(alembic_config(engine))
    return any(r.revision.startswith(revision) for r in script.walk_revisions())


def _migrate(step: Callable[[AlembicConfig, str], None], engine: Engine, revision: str) -> None:
    """Run an Alembic command; an unknown revision is bad input, a database that fails is a
    StoreError (a read-only file, a lost connection), each one line."""
    if not revision.strip():
        raise BadInputError("give a schema revision (for example head, base or 0007)")
    try:
        step(alembic_config(engine), revision)
    except CommandError as exc:
        raise BadInputError(f"schema revision {revision!r}: {exc}") from exc
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise StoreError(
            f"cannot migrate the history database {redact(str(engine.url))}: {reason}"
        ) from exc


def ensure_writable(engine: Engine) -> None:
    """Refuse, at start, a database that takes no writes (a read-only SQLite file, a PostgreSQL
    standby or read-only role): every write would fail, and be retried, for as long as the
    process lives. The probe rewrites the schema version in place and rolls it back."""
    try:
        with engine.connect() as connection:
            transaction = connection.begin()
            try:
                connection.exec_driver_sql("UPDATE alembic_version SET version_num = version_num")
            finally:
                transaction.rollback()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise StoreError(
            f"the history database {redact(str(engine.url))} cannot be written: {reason}"
        ) from exc


def ensure_current(engine: Engine, *, upgrade_sqlite: bool = False) -> None:
    """Refuse to work on a schema older than the code. A brand-new SQLite file (no tables at
    all) is created on the spot: it holds nothing, so there is nothing to migrate carefully.
    An older SQLite schema is migrated when the operator asked (`upgrade_sqlite`); PostgreSQL,
    shared by replicas, always needs the explicit `db upgrade` step."""
    current = current_revision(engine)
    head = head_revision(engine)
    if current == head:
        return
    sqlite = engine.dialect.name == "sqlite"
    if sqlite and (upgrade_sqlite or (current is None and not inspect(engine).get_table_names())):
        upgrade(engine)
        return
    raise SchemaOutOfDateError(
        f"the history database {redact(str(engine.url))} is at schema {current or 'none'}, "
        f"the code needs {head}: run `kinsta-scheduler db upgrade`"
        + (" (or pass --upgrade-db)" if sqlite else "")
    )
