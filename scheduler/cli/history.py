"""history: runs and tasks, the event logs (governor, daemon, notifications), prune."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
from rich.console import Console

from scheduler import render
from scheduler.cli.base import (
    FORMATS,
    State,
    cli,
    complete_job_id,
    emit,
    history_store,
    make_console,
    parse_when,
)
from scheduler.domain import RunStatus, TaskStatus
from scheduler.errors import BadInputError, SchedulerError
from scheduler.history import HistoryStore, RunFilter, TaskFilter
from scheduler.pauses import DISABLED, JobPause
from scheduler.views.documents import REQUEST_MINUTE_FIELDS, requests_document

E = TypeVar("E")


@cli.group(invoke_without_command=True)
@click.option("--tasks", "as_tasks", is_flag=True, help="one row per task instead of per run")
@click.option("--job", "job_id", shell_complete=complete_job_id)
@click.option("--site")
@click.option("--action", help="with --tasks: only this action")
@click.option("--status")
@click.option("--since", help="7d, 12h, 30m or an ISO date/time")
@click.option("--until")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.pass_context
def history(
    ctx: click.Context,
    as_tasks: bool,
    job_id: str | None,
    site: str | None,
    action: str | None,
    status: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    fmt: str,
) -> None:
    """List runs (or tasks), newest first, and the jobs paused now. `history prune` removes
    old ones."""

    if ctx.invoked_subcommand is not None:
        return
    state: State = ctx.obj
    _check_filters(as_tasks, status, action)
    now = datetime.now(UTC)
    since_at, until_at = parse_when(since, now), parse_when(until, now)
    store = history_store(state)
    console = make_console()
    if as_tasks:
        tasks = store.queries.list_tasks(
            TaskFilter(
                job_id=job_id,
                site=site,
                action=action,
                status=status,
                since=since_at,
                until=until_at,
                limit=limit,
            )
        )
        rows = [render.task_json(t) for t in tasks]
        emit(
            fmt,
            rows,
            render.TASK_FIELDS,
            lambda: render.tasks_table(tasks, console, f"{len(tasks)} task(s)"),
        )
    else:
        where = RunFilter(
            job_id=job_id, site=site, status=status, since=since_at, until=until_at, limit=limit
        )
        _list_runs(state, store, where, fmt, now)


def _list_runs(
    state: State, store: HistoryStore, where: RunFilter, fmt: str, now: datetime
) -> None:
    """The runs; under the table, the jobs paused now."""
    runs = store.queries.list_runs(where)

    def table() -> None:
        render.runs_table(runs, make_console())
        _echo_pauses(state, store.pauses.pauses(now), where.job_id)

    emit(fmt, [render.run_json(r) for r in runs], render.RUN_FIELDS, table)


def _echo_pauses(state: State, pauses: list[JobPause], job_id: str | None) -> None:
    """The jobs paused now (by `pause`, or `enabled: false` when jobs.yaml can be read), and
    until when (local time)."""
    lines = [
        f"paused: {p.job_id} by {p.by} until "
        + (render.local(p.until) if p.until else "resumed")
        + (f": {p.reason}" if p.reason else "")
        for p in pauses
    ]
    with contextlib.suppress(SchedulerError):
        lines += [
            f"paused: {j.id}: {DISABLED}" for j in state.load(sandbox=True).jobs if not j.enabled
        ]
    for line in lines:
        if job_id is None or line.startswith((f"paused: {job_id} ", f"paused: {job_id}:")):
            click.echo(line)


def _check_filters(as_tasks: bool, status: str | None, action: str | None) -> None:
    statuses = {s.value for s in (TaskStatus if as_tasks else RunStatus)}
    if status is not None and status not in statuses:
        raise BadInputError(f"unknown status {status!r} (one of: {', '.join(sorted(statuses))})")
    if action is not None and not as_tasks:
        raise BadInputError("--action needs --tasks")


def _event_log(
    name: str,
    help_text: str,
    fetch: Callable[[Any, datetime | None, int], Sequence[E]],
    to_json: Callable[[E], dict[str, Any]],
    fields: tuple[str, ...],
    table: Callable[[Sequence[E], Console], None],
) -> None:
    """A `history NAME [--since] [--limit] [--format]` command over one kind of recorded event."""

    @history.command(name, help=help_text)
    @click.option(
        "--since", default="7d", show_default=True, help="7d, 12h, 30m or an ISO date/time"
    )
    @click.option("--limit", type=click.IntRange(1, 100_000), default=200, show_default=True)
    @click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
    @click.pass_obj
    def command(state: State, since: str, limit: int, fmt: str) -> None:
        items = fetch(history_store(state), parse_when(since, datetime.now(UTC)), limit)
        rows = [to_json(item) for item in items]
        emit(fmt, rows, fields, lambda: table(items, make_console()))


_event_log(
    "governor",
    "What the rate governor did: 429s, pauses for other users of a key, long waits.",
    lambda store, since, limit: store.events.governor_events(since, limit),
    render.governor_event_json,
    render.GOVERNOR_FIELDS,
    render.governor_table,
)
_event_log(
    "daemon",
    "What daemons did: starts, stops, jobs.yaml reloaded, rejected (and why) or missing.",
    lambda store, since, limit: store.events.daemon_events(since, limit),
    render.daemon_event_json,
    render.DAEMON_EVENT_FIELDS,
    render.daemon_events_table,
)
_event_log(
    "notifications",
    "Notifications the daemon sent (webhooks, heartbeat pings), and whether they arrived.",
    lambda store, since, limit: store.events.notifications(since, limit),
    render.notification_json,
    render.NOTIFICATION_FIELDS,
    render.notifications_table,
)


@history.command("requests")
@click.option("--since", default="6h", show_default=True, help="7d, 12h, 30m or an ISO date/time")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.pass_obj
def history_requests(state: State, since: str, fmt: str) -> None:
    """Requests sent per API key (its fingerprint) and minute, oldest first: what the rate
    budget was spent on (the dashboard's /budget charts it)."""
    since_at = parse_when(since, datetime.now(UTC))
    assert since_at is not None
    rows = requests_document(history_store(state), since_at)

    def table() -> None:
        for row in rows:
            click.echo(
                f"{render.local(datetime.fromisoformat(row['minute']))}  {row['scope']}  "
                f"{row['requests']}"
            )

    emit(fmt, rows, REQUEST_MINUTE_FIELDS, table)


@history.command("prune")
@click.option(
    "--older-than", required=True, help="runs scheduled before this long ago (90d, 12w...)"
)
@click.option(
    "--keep-last",
    type=click.IntRange(0),
    default=20,
    show_default=True,
    help="always keep each job's newest N runs",
)
@click.option("--dry-run", is_flag=True, help="count what would be removed, remove nothing")
@click.pass_obj
def history_prune(state: State, older_than: str, keep_last: int, dry_run: bool) -> None:
    """Remove old runs with their tasks and operations, and old governor events, daemon events,
    notifications and requests per minute; a running run is never removed."""
    cutoff = parse_when(older_than, datetime.now(UTC))
    assert cutoff is not None
    result = history_store(state).maintenance.prune(cutoff, keep_last, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {result.runs} run(s), {result.tasks} task(s), {result.operations} operation(s) "
        f"scheduled before {render.utc_iso(cutoff)}, keeping each job's newest {keep_last}, "
        f"and {result.events} event(s) and notification(s) from before then"
    )
