"""plan: each job's next fire times, targets, request budget and colliding schedules."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from scheduler import render
from scheduler.cli.base import RELATIVE, State, cli, parse_when, sandbox_flag
from scheduler.domain import Config
from scheduler.errors import BadInputError, KinstaError, SchedulerError

if TYPE_CHECKING:
    from scheduler.history import HistoryStore

PLAN_AT_RANGE = (datetime(1900, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC))


@cli.command()
@click.option("--count", type=click.IntRange(1, 100), default=5, show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True
)
@sandbox_flag
@click.option("--offline", is_flag=True, help="do not ask the API for the targets")
@click.option(
    "--at",
    "at",
    metavar="TIME",
    help="plan as if it were this ISO date/time (default: now), e.g. the start of a freeze",
)
@click.pass_obj
def plan(state: State, count: int, fmt: str, sandbox: bool, offline: bool, at: str | None) -> None:
    """Each job's next fire times in its zone (DST cases marked), its targets, the requests a run
    needs (polls as history has seen them), the time the rate limit needs for them and how long
    a run likely takes (with the jobs due in the same minute, which share the key's budget);
    warns about colliding schedules (looking over each pair of jobs' common cycle, at least a
    week ahead, whatever --count shows)."""
    from scheduler.views.plan import plan_rows

    config = state.load(sandbox=sandbox)
    now = _parse_at(at) if at else datetime.now(UTC)
    targets, note = _plan_inputs(config, sandbox=sandbox, offline=offline)
    with _history(config) as store:
        rows, found = plan_rows(config, now, count, targets=targets, store=store, note=note)
    if fmt == "json":
        click.echo(render.to_json(rows))
        return
    if note:
        click.echo(f"(targets not resolved: {note})")
    for row in rows:
        _echo_row(row)
    for _, text in found:
        click.echo(f"warning: {text}", err=True)


def _echo_row(row: dict[str, Any]) -> None:
    click.echo(f"{row['job_id']}  ({row['schedule']}, {row['timezone']})")
    if row["targets"] is not None:
        _echo_estimate(row)
    paused = row["paused"]
    if paused is not None:
        click.echo(f"  {_pause_line(paused)}: its slots are skipped")
    for entry in row["held_back"]:
        click.echo(f"  holds back {entry['kind']} {entry['name']}: {entry['why']}")
    for halt in row["halted"]:
        when = render.local(datetime.fromisoformat(halt["finished_at"]))
        click.echo(f"  run {halt['run_id']} of {halt['job_id']} halted ({when}): {halt['reason']}")
    if not row["next_local"]:
        click.echo("  runs only when triggered")
    for moment, at, dst, blackout in zip(
        row["next_local"], row["next"], row["dst"], row["blackout"], strict=True
    ):
        marks = [dst] if dst else []
        if paused is not None and _pauses(paused, datetime.fromisoformat(at)):
            marks.append("disabled" if paused["source"] == "jobs.yaml" else "paused")
        if blackout is not None:
            marks.append(f"blackout: {blackout}")
        click.echo(f"  {moment}" + "".join(f"  [{mark}]" for mark in marks))


def _pause_line(paused: dict[str, Any]) -> str:
    """A job's pause as the table shows it (in the local zone)."""
    if paused["source"] == "jobs.yaml":
        return f"paused: {paused['why']}"
    until = paused["until"]
    ends = render.local(datetime.fromisoformat(until)) if until else "resumed"
    reason = f": {paused['reason']}" if paused["reason"] else ""
    return f"paused by {paused['by']} until {ends}{reason}"


def _pauses(paused: dict[str, Any], moment: datetime) -> bool:
    """Whether a job's pause holds its slot at `moment`."""
    if paused["source"] == "jobs.yaml":
        return True
    since, until = paused["paused_at"], paused["until"]
    if moment < datetime.fromisoformat(since):
        return False  # planned --at a time before the pause began
    return until is None or moment < datetime.fromisoformat(until)


def _echo_estimate(row: dict[str, Any]) -> None:
    budget = (
        f"{row['governor_minutes']:.1f} min of rate budget"
        if row["governor_minutes"]
        else "within one rate window"
    )
    click.echo(
        f"  {row['targets']} target(s), ~{row['requests']} request(s) per run "
        f"({budget}), a run takes ~{row['duration_minutes']:.1f} min"
    )
    if row["shared_with"]:
        click.echo(
            f"  shares the key's budget with {', '.join(row['shared_with'])} (due in the same "
            f"minute): ~{row['shared_requests']} request(s) while it runs, counted in its length"
        )


def _parse_at(value: str) -> datetime:
    """plan --at: an ISO date/time (local zone unless it names one), not a relative one."""
    if RELATIVE.match(value.strip()):
        raise BadInputError(f"--at {value!r}: give an ISO date/time such as 2026-11-27T03:00")
    found = parse_when(value, datetime.now(UTC))
    assert found is not None
    # Planning looks up to a year past it (and fire times beyond): keep clear of the calendar's
    # ends, where a cron's next firing cannot be computed.
    if not PLAN_AT_RANGE[0] <= found <= PLAN_AT_RANGE[1]:
        raise BadInputError(f"--at {value!r}: give a time between the years 1900 and 9000")
    return found


@contextlib.contextmanager
def _history(config: Config) -> Iterator[HistoryStore | None]:
    """The history store, or None when it cannot be opened (plan works without history)."""
    from scheduler.bootstrap import open_store

    try:
        store = open_store(config.database_url)
    except SchedulerError:
        yield None
        return
    try:
        yield store
    finally:
        store.engine.dispose()


def _plan_inputs(
    config: Config, *, sandbox: bool, offline: bool
) -> tuple[dict[str, set[str]] | None, str | None]:
    """(environment ids per job, why targets are unknown)."""
    from scheduler.bootstrap import open_services

    if offline:
        return None, "--offline"
    if not sandbox and any(c.api_key is None for c in config.kinsta.all_companies()):
        return None, "no API key (set KINSTA_API_KEY, or use --sandbox)"
    try:
        services = open_services(config, sandbox=sandbox)
    except SchedulerError as exc:
        return None, str(exc)
    try:
        found = {
            job.id: {t.environment_id or t.key for t in services.runner_for(job).targets(job)}
            for job in config.jobs
        }
    except KinstaError as exc:
        return None, f"Kinsta API: {exc}"
    finally:
        services.close()
    return found, None
