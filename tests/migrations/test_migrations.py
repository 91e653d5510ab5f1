"""Alembic is the only way tables are made: `upgrade head` gives exactly the declared tables, on
SQLite and PostgreSQL, and downgrade then upgrade round-trips."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from scheduler.domain import RunStatus, RunTrigger
from scheduler.history import make_engine, sql_store
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


def test_a_downgrade_before_cancel_reads_a_cancelled_run_as_interrupted(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    store = sql_store(engine)
    now = datetime(2026, 12, 1, 3, tzinfo=UTC)
    run = store.runs.claim_run("nightly", RunTrigger.SCHEDULE, now, now, started_by="a:1")
    assert run is not None
    store.runs.request_cancel(run.run_id, now, by="ops@bastion", reason="bad release")
    store.runs.finish_run(run.run_id, RunStatus.CANCELLED, now, "cancelled by ops@bastion")
    downgrade(engine, "0008")
    with engine.connect() as connection:
        status = connection.execute(text("SELECT status FROM runs")).scalar_one()
        columns = {c["name"] for c in inspect(connection).get_columns("runs")}
    assert status == "interrupted" and "cancel_reason" not in columns
    upgrade(engine)
    engine.dispose()


def test_a_downgrade_before_slack_reads_a_slack_run_as_manual(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    store = sql_store(engine)
    now = datetime(2026, 12, 6, 9, tzinfo=UTC)
    store.runs.claim_run("c", RunTrigger.SLACK, now, now, started_by="a:1", requested_by="slack:U1")
    downgrade(engine, "0011")
    with engine.connect() as connection:
        trigger = connection.execute(text("SELECT trigger FROM runs")).scalar_one()
        columns = {c["name"] for c in inspect(connection).get_columns("runs")}
    assert trigger == "manual" and "requested_by" not in columns
    upgrade(engine)
    run = sql_store(engine).queries.get_run(1)
    assert run is not None and run.trigger is RunTrigger.MANUAL and run.requested_by is None
    engine.dispose()
