"""pause and resume: hold a job's slots by hand, from any host that reaches the history.

The pause is written in the history database; every daemon on it reads it at each firing, so
all of them skip the job's slots from their next firing (each recorded `skipped`, with who
paused it, until when and why), with no restart. A pause with `--until` lifts itself then.
`trigger` refuses a paused job unless `--force`. `enabled: false` in jobs.yaml holds a job the
same way, for as long as the file says so."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from scheduler import render
from scheduler.cli.base import State, cli, complete_job_id, job_named
from scheduler.cli.cancel import requester
from scheduler.domain import Config, Job
from scheduler.errors import BadInputError, NotFoundError
from scheduler.history import HistoryStore
from scheduler.pauses import JobPause, iso, pause_until


@cli.command()
@click.argument("job_id", shell_complete=complete_job_id)
@click.option(
    "--until",
    metavar="TIME|DURATION",
    help="lift the pause by itself then: 2h, 3d, or an ISO date/time (default: until resumed)",
)
@click.option("--reason", metavar="TEXT", help="why, recorded with every skipped slot")
@click.pass_obj
def pause(state: State, job_id: str, until: str | None, reason: str | None) -> None:
    """Pause a job: every daemon skips its slots from its next firing (recorded `skipped`
    with the reason), until `resume` or --until. Exit 2 for an unknown job or a past --until."""
    now = datetime.now(UTC)
    config = state.load(sandbox=True)  # every job: sandbox_only ones too
    job = job_named(config, job_id)
    try:
        ends = pause_until(until, now) if until is not None else None
    except ValueError as exc:
        raise BadInputError(f"--until: {exc}") from exc
    new = JobPause(job.id, now, requester(), ends, reason or None)
    store = _store(config)
    try:
        before = store.pauses.pause(new)
    finally:
        store.close()
    click.echo(_paused(job, new, before))


def _paused(job: Job, new: JobPause, before: JobPause | None) -> str:
    ends = f"until {iso(new.until)} ({render.local(new.until)})" if new.until else "until resumed"
    lines = [
        f"job {job.id} paused by {new.by} {ends}" + (f": {new.reason}" if new.reason else ""),
        "every daemon skips its slots from its next firing, each recorded skipped with this "
        f"reason; `resume {job.id}` lifts it",
    ]
    if before is not None:
        lines.append(f"(this replaces the pause it had: {before.why()})")
    if not job.enabled:
        lines.append("(it is also disabled in jobs.yaml: enabled: false)")
    if job.schedule is None:
        lines.append("(it has no schedule: `trigger` refuses it unless --force)")
    return "\n".join(lines)


@cli.command()
@click.argument("job_id", shell_complete=complete_job_id)
@click.pass_obj
def resume(state: State, job_id: str) -> None:
    """Lift a job's pause: its next slot runs. Exit 2 when it is not paused."""
    now = datetime.now(UTC)
    config = state.load(sandbox=True)
    store = _store(config)
    try:
        lifted = store.pauses.resume(job_id, now)
    finally:
        store.close()
    job = config.job(job_id)
    if lifted is not None:
        gone = "" if job is not None else f" (it is no longer in {config.path})"
        click.echo(f"job {job_id} resumed{gone}: its next slot runs; it was {lifted.why()}")
        return
    job = job_named(config, job_id)  # an unknown job: did you mean ...?
    if not job.enabled:
        raise BadInputError(
            f"job {job.id} is not paused by `pause`; it is disabled in jobs.yaml "
            "(enabled: false): set enabled: true there"
        )
    raise NotFoundError(f"job {job.id} is not paused: nothing to resume")


def _store(config: Config) -> HistoryStore:
    from scheduler.bootstrap import open_store

    return open_store(config.database_url, recording=True)
