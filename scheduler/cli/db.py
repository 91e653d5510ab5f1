"""db: the history database's schema (Alembic migrations)."""

from __future__ import annotations

import click

from scheduler import logs
from scheduler.cli.base import State, cli
from scheduler.cli.confirm import confirm, yes_flag


@cli.group()
def db() -> None:
    """The history database's schema (Alembic migrations)."""


@db.command("upgrade")
@click.argument("revision", default="head")
@click.pass_obj
def db_upgrade(state: State, revision: str) -> None:
    """Migrate the schema up to REVISION (default: the newest)."""
    from scheduler.history import make_engine
    from scheduler.history.migrate import current_revision, upgrade

    engine = make_engine(state.database_url())
    click.get_current_context().call_on_close(engine.dispose)
    before = current_revision(engine)
    upgrade(engine, revision)
    click.echo(f"schema: {before or 'empty'} -> {current_revision(engine)}")


@db.command("current")
@click.pass_obj
def db_current(state: State) -> None:
    """Print the schema revision of the database and of the code."""
    from scheduler.history import make_engine
    from scheduler.history.migrate import current_revision, head_revision

    engine = make_engine(state.database_url())
    click.get_current_context().call_on_close(engine.dispose)
    click.echo(f"database: {current_revision(engine) or 'empty'}  code: {head_revision(engine)}")


@db.command("downgrade")
@click.argument("revision")
@yes_flag
@click.pass_obj
def db_downgrade(state: State, revision: str, yes: bool) -> None:
    """Migrate the schema down to REVISION ('base' removes every table and the history in
    them). Asks first on a terminal; without one, needs --yes."""
    from scheduler.history import make_engine
    from scheduler.history.migrate import current_revision, downgrade, may_exist

    engine = make_engine(state.database_url())
    click.get_current_context().call_on_close(engine.dispose)
    before = current_revision(engine) or "empty"
    dropped = (
        "every table of the history, with every run, task and operation recorded"
        if revision == "base"
        else f"what the revisions after {revision} added (tables, columns), with their data"
    )
    where = logs.mask(engine.url.render_as_string(hide_password=True))
    if may_exist(engine, revision):  # else downgrade says what is wrong with it
        confirm(f"downgrade the schema of {where} from {before} to {revision}", [dropped], yes=yes)
    downgrade(engine, revision)
    click.echo(f"schema: {current_revision(engine) or 'empty'}")
