"""Alembic is the only way tables are made: `upgrade head` gives exactly the declared tables, on
SQLite and PostgreSQL, and downgrade then upgrade round-trips."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from scheduler.history import make_engine
from scheduler.history.migrate import current_revision, downgrade, head_revision, upgrade
from scheduler.history.tables import metadata


def _diff(url: str) -> list[object]:
    engine = make_engine(url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    return list(diff)


def test_upgrade_head_matches_the_declared_tables(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
    assert set(inspect(engine).get_table_names()) - {"alembic_version"} == set(metadata.tables)
    engine.dispose()
    assert _diff(database_url) == []


def test_downgrade_then_upgrade_round_trips(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
    engine.dispose()
    assert _diff(database_url) == []
