"""show (one run with its tasks) and sites (each site's latest outcomes)."""

from __future__ import annotations

import click

from scheduler import render
from scheduler.cli.base import FORMATS, State, cli, history_store, make_console, parse_run_id
from scheduler.errors import NotFoundError


@cli.command()
@click.argument("run_id")
@click.option(
    "--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True
)
@click.pass_obj
def show(state: State, run_id: str, fmt: str) -> None:
    """One run with its tasks and each operation's timeline."""
    number = parse_run_id(run_id)
    store = history_store(state)
    run = store.queries.get_run(number)
    if run is None:
        raise NotFoundError(f"no run {run_id}")
    tasks = store.tasks.run_tasks(run.run_id)
    if fmt == "json":
        body = render.run_json(run)
        body["tasks"] = [render.task_json(t, with_operations=True) for t in tasks]
        click.echo(render.to_json(body))
    else:
        render.run_detail(run, tasks, make_console())


@cli.command()
@click.option("--site", help="only this site")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.pass_obj
def sites(state: State, site: str | None, fmt: str) -> None:
    """One row per site: each action's latest outcome, the last success and the last failure."""
    store = history_store(state)
    entries = store.queries.site_actions(site)
    inventory = store.catalogue.latest_inventory(site)
    if site is not None and not entries and not inventory:
        raise NotFoundError(f"no history for site {site!r}")
    rows = render.sites_json(entries, inventory)
    if fmt == "json":
        click.echo(render.to_json(rows))
    elif fmt == "csv":
        flat = [render.site_action_json(e) for e in entries]
        click.echo(render.to_csv(flat, render.SITE_ACTION_FIELDS), nl=False)
    else:
        render.sites_table(rows, make_console())
