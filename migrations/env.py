"""Alembic environment. The engine comes from scheduler.history.migrate (or sqlalchemy.url)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from scheduler.history.db import make_engine
from scheduler.history.tables import metadata

config = context.config


def _engine() -> Engine:
    engine = config.attributes.get("engine")
    if isinstance(engine, Engine):
        return engine
    return make_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///kinsta-scheduler.db")


def run_migrations_online() -> None:
    engine = _engine()
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # Batch migrations recreate tables; referencing foreign keys must be off meanwhile.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=True,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
