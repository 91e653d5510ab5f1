"""show (one run with its tasks) and sites (each site's latest outcomes)."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from scheduler import render
from scheduler.cli.base import FORMATS, State, cli, history_store, make_console, parse_run_id
from scheduler.domain import Task
from scheduler.errors import NotFoundError
from scheduler.fleetquery import STATUSES
from scheduler.views.documents import (
    MAX_PER_PAGE,
    PER_PAGE,
    fleet_document,
    show_document,
    site_query,
    sites_document,
)


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
    if fmt == "json":
        click.echo(render.to_json(show_document(store, number)))
        return
    run = store.queries.get_run(number)
    if run is None:
        raise NotFoundError(f"no run {run_id}")
    tasks = store.tasks.run_tasks(run.run_id)
    waves = store.queries.run_waves(run.run_id)
    held = [e for e in store.quarantine.entries(released=True) if e.run_id == run.run_id]
    console = make_console()
    render.run_detail(run, tasks, console)
    for wave in waves:
        span = f" ({render.local(wave.started_at)} to {render.local(wave.ended_at)})"
        console.print(f"  {wave.summary()}" + (span if wave.started_at else ""), markup=False)
    for task in tasks:
        _update_notes(task, console)
    for entry in held:
        console.print(f"  quarantined {entry.kind[:-1]} {entry.name} {entry.why()}", markup=False)


def _update_notes(task: Task, console: Console) -> None:
    """What an update held back and why, the checks its verification failed, and the steps of
    a culprit's isolation."""
    result, where = task.result or {}, f"  {task.site}/{task.environment}"
    for name, why in sorted((result.get("held_back") or {}).items()):
        console.print(f"{where} {task.action} held back {name}: {why}", markup=False)
    for check in (result.get("verify") or {}).get("checks") or []:
        if not check.get("ok", True):
            at = f" at {check['url']}" if check.get("url") else ""
            console.print(
                f"{where} check {check.get('name')} failed{at}: {check.get('detail')}",
                markup=False,
            )
    steps = result.get("steps") or []
    for number, step in enumerate(steps if len(steps) > 1 else [], 1):
        problems = "; ".join(step.get("problems") or [])
        console.print(
            f"{where} step {number}: {', '.join(step['items'])} (backup {step['backup']}): "
            f"{step['verdict']}, {step['outcome']}" + (f": {problems}" if problems else ""),
            markup=False,
        )


@cli.command()
@click.option("--site", help="only this site")
@click.option("--search", metavar="TEXT", help="sites whose name or an environment's has TEXT")
@click.option("--status", type=click.Choice(STATUSES), help="sites of this status")
@click.option("--page", type=click.IntRange(min=1), help="this page of the sites (from 1)")
@click.option(
    "--per-page",
    type=click.IntRange(1, MAX_PER_PAGE),
    default=PER_PAGE,
    show_default=True,
    help="sites a page (with --page)",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.pass_obj
def sites(
    state: State,
    site: str | None,
    search: str | None,
    status: str | None,
    page: int | None,
    per_page: int,
    fmt: str,
) -> None:
    """One row per site: each action's latest outcome, the last success and the last failure.
    A site's status: failed if an action's latest outcome failed, ok, or unknown (no outcome
    yet). Sites in name order; the dashboard's fleet page asks the same question."""
    store = history_store(state)
    if site is not None:
        rows, actions = sites_document(store, site), store.queries.site_actions(site)
    else:
        rows, found = fleet_document(store, site_query(search, status, page, per_page))
        actions = found.actions
    if fmt == "json":
        click.echo(render.to_json(rows))
    elif fmt == "csv":
        flat = [render.site_action_json(e) for e in actions]
        click.echo(render.to_csv(flat, render.SITE_ACTION_FIELDS), nl=False)
    else:
        console = make_console()
        render.sites_table(rows, console)
        for line in _held_lines(rows):
            console.print(line, markup=False)


def _held_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Why each update on offer is held back, a line each, under the `sites` table."""
    return [
        f"{row['site']}/{snapshot['environment']}: {kind[:-1]} {item['name']} "
        f"{item.get('version')} -> {item['update_version']} held back: {item['quarantined']}"
        for row in rows
        for snapshot in row["inventory"]
        for kind in ("plugins", "themes")
        for item in snapshot[kind]
        if item.get("quarantined")
    ]
