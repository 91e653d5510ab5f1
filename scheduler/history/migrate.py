"""Alembic, driven from code: the migrations ship inside the package (scheduler._migrations)."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from scheduler.errors import SchemaOutOfDateError, StoreError
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
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


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
