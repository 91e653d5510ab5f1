"""plan: each job's next fire times, targets, request budget and colliding schedules."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from scheduler import render
from scheduler.cli.base import RELATIVE, State, cli, parse_when, sandbox_flag
from scheduler.domain import Config, Job
from scheduler.errors import BadInputError, KinstaError, SchedulerError
from scheduler.pauses import DISABLED, JobPause, blackout_at
from scheduler.ports import RunFilter

if TYPE_CHECKING:
    from scheduler.planning import Estimate, Learned

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
    config = state.load(sandbox=sandbox)
    now = _parse_at(at) if at else datetime.now(UTC)
    targets, learned, note = _plan_inputs(state, config, sandbox=sandbox, offline=offline)
    rows, found = _plan(config, now, count, targets, learned)
    known = _from_history(config, now)
    for row in rows:
        row["warnings"] = [text for jobs, text in found if row["job_id"] in jobs]
        row["targets_note"] = note
        row.update(known[row["job_id"]])
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


def _learned(config: Config) -> Learned:
    """What history knows of the jobs' actions: durations and polls (nothing without it)."""
    from scheduler.bootstrap import open_store
    from scheduler.planning import Learned

    names = sorted({a.name for j in config.jobs for a in j.actions})
    with contextlib.suppress(SchedulerError):
        store = open_store(config.database_url)
        try:
            return Learned(
                store.queries.typical_durations(names), store.queries.typical_polls(names)
            )
        finally:
            store.engine.dispose()
    return Learned()


def _from_history(config: Config, now: datetime) -> dict[str, dict[str, Any]]:
    """Per job, what history adds to its row: the quarantined versions its updates hold back
    and why (`held_back`), the halts of its own or a related job's latest run (`halted`, see
    planning.halts) and its pause (`paused`); nothing without history."""
    from scheduler.bootstrap import open_store
    from scheduler.planning import halts, held_back

    entries, latest, paused = [], {}, {}
    with contextlib.suppress(SchedulerError):
        store = open_store(config.database_url)
        try:
            entries = store.quarantine.entries()
            for job in config.jobs:
                for run in store.queries.list_runs(RunFilter(job_id=job.id, limit=1)):
                    latest[job.id] = run
            paused = {p.job_id: p for p in store.pauses.pauses(now)}
        finally:
            store.engine.dispose()
    return {
        job.id: {
            "held_back": [
                {"kind": e.kind, "name": e.name, "version": e.version, "why": e.why()}
                for e in held_back(job, entries)
            ],
            "halted": [
                {
                    "job_id": run.job_id,
                    "run_id": run.run_id,
                    "finished_at": render.utc_iso(run.finished_at),
                    "reason": run.error,
                }
                for run in halts(job, config.jobs, latest)
            ],
            "paused": _paused(job, paused.get(job.id)),
        }
        for job in config.jobs
    }


def _paused(job: Job, pause: JobPause | None) -> dict[str, Any] | None:
    """A job's pause in `plan --format json`: by `pause` (who, when, until, why) or by
    `enabled: false` in jobs.yaml; None when it is not paused."""
    if not job.enabled:
        return {"source": "jobs.yaml", "by": None, "paused_at": None, "until": None,
                "reason": "enabled: false", "why": DISABLED}  # fmt: skip
    if pause is None:
        return None
    return {
        "source": "pause",
        "by": pause.by,
        "paused_at": render.utc_iso(pause.paused_at),
        "until": render.utc_iso(pause.until),
        "reason": pause.reason,
        "why": pause.why(),
    }


def _plan_inputs(
    state: State, config: Config, *, sandbox: bool, offline: bool
) -> tuple[dict[str, set[str]] | None, Learned, str | None]:
    """(environment ids per job, what history learned, why targets are unknown)."""
    from scheduler.bootstrap import open_services

    learned = _learned(config)
    if offline:
        return None, learned, "--offline"
    if not sandbox and any(c.api_key is None for c in config.kinsta.all_companies()):
        return None, learned, "no API key (set KINSTA_API_KEY, or use --sandbox)"
    try:
        services = open_services(config, sandbox=sandbox)
    except SchedulerError as exc:
        return None, learned, str(exc)
    try:
        found = {
            job.id: {t.environment_id or t.key for t in services.runner_for(job).targets(job)}
            for job in config.jobs
        }
    except KinstaError as exc:
        return None, learned, f"Kinsta API: {exc}"
    finally:
        services.close()
    return found, learned, None


def _plan(
    config: Config,
    now: datetime,
    count: int,
    targets: dict[str, set[str]] | None,
    learned: Learned,
) -> tuple[list[dict[str, Any]], list[tuple[tuple[str, ...], str]]]:
    from zoneinfo import ZoneInfo

    from scheduler import planning, schedules
    from scheduler.domain import CronSchedule

    estimates = _estimates(config, now, targets, learned)
    rows = []
    for job in config.jobs:
        times = schedules.upcoming(job.schedule, now, count) if job.schedule else []
        zone = ZoneInfo(job.schedule.timezone) if isinstance(job.schedule, CronSchedule) else UTC
        guess = estimates[job.id]
        rows.append(
            {
                "job_id": job.id,
                "schedule": _describe_schedule(job.schedule),
                "timezone": str(zone),
                "next": [render.utc_iso(t) for t in times],
                "next_local": [t.astimezone(zone).isoformat() for t in times],
                "dst": [schedules.dst_note(job.schedule, t) for t in times] if job.schedule else [],
                "blackout": [_blackout(config, job, t) for t in times],
                "targets": guess.targets,
                "requests": guess.requests,
                "governor_minutes": None if guess.governor_s is None else guess.governor_s / 60,
                "duration_minutes": None if guess.duration_s is None else guess.duration_s / 60,
                "operations": guess.operations,
                "chain_minutes": guess.chain_s / 60,
                "shared_requests": guess.shared_requests,
                "shared_with": list(guess.shared_with),
            }
        )
    shared: dict[tuple[str, str], int | None] = {}
    enabled = [job for job in config.jobs if job.enabled]  # a disabled job collides with none
    for index, first in enumerate(enabled):
        for second in enabled[index + 1 :]:
            if targets is not None:
                common = len(targets[first.id] & targets[second.id])
                if common and first.company == second.company:
                    shared[(first.id, second.id)] = common
            elif planning.may_share(first, second):
                shared[(first.id, second.id)] = None
    return rows, planning.warnings(enabled, estimates, now, shared)


def _blackout(config: Config, job: Job, moment: datetime) -> str | None:
    found = blackout_at((*job.blackouts, *config.blackouts), moment)
    return found.name if found is not None else None


def _estimates(
    config: Config, now: datetime, targets: dict[str, set[str]] | None, learned: Learned
) -> dict[str, Estimate]:
    """Each job's estimate; runs that start in the same minute share the key's budget, so each
    job is estimated again with the others' requests once they are known."""
    from scheduler import planning
    from scheduler.actions import registry

    actions, limits = registry(), config.kinsta.rate_limits
    alone = {
        job.id: planning.estimate(
            job, len(targets[job.id]) if targets is not None else None, actions, limits, learned
        )
        for job in config.jobs
    }
    enabled = [job for job in config.jobs if job.enabled]
    met = planning.starting_together(enabled, {k: e.requests for k, e in alone.items()}, now)
    return {
        job.id: planning.estimate(
            job, alone[job.id].targets, actions, limits, learned, together=met[job.id]
        )
        if job.id in met
        else alone[job.id]
        for job in config.jobs
    }


def _describe_schedule(schedule: Any) -> str:
    from scheduler.domain import CronSchedule

    if schedule is None:
        return "no schedule"
    if isinstance(schedule, CronSchedule):
        return f"cron {schedule.expression}"
    return f"every {schedule.every_s:g}s"
