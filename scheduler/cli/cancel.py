"""cancel: stop a running run by hand, from any host that reaches the history database.

The request is written on the run's row; the process running it reads it back with its next
heartbeat, starts no new target (nor a new task), follows what is in flight to its end, records
the tasks it never started as skipped, and ends the run `cancelled` with who asked, when and
why. Nothing here waits for that: `show RUN_ID` tells when it is done."""

from __future__ import annotations

import getpass
import socket
from datetime import UTC, datetime

import click

from scheduler import render
from scheduler.cli.base import State, cli, complete_job_id, parse_run_id
from scheduler.domain import Run, RunStatus
from scheduler.errors import BadInputError, NotFoundError
from scheduler.history import HistoryStore, RunFilter

MAX_RUNS_OF_A_JOB = 1000  # running runs of one job `--job` cancels at most (there are a few)


@cli.command()
@click.argument("run_id", required=False)
@click.option(
    "--job",
    "job_id",
    metavar="JOB",
    help="cancel every running run of this job",
    shell_complete=complete_job_id,
)
@click.option("--reason", metavar="TEXT", help="why, recorded with the run")
@click.pass_obj
def cancel(state: State, run_id: str | None, job_id: str | None, reason: str | None) -> None:
    """Stop a running run: no new target starts, work in flight finishes and is recorded,
    targets not started are skipped, and the run ends `cancelled`. Exit 2 when the run
    already ended or does not exist."""
    if (run_id is None) == (job_id is None):
        raise BadInputError("cancel needs a RUN_ID or --job JOB (one of them)")
    store = _store(state)
    try:
        runs = [_run(store, parse_run_id(run_id))] if run_id is not None else _of(store, job_id)
        for run in runs:
            click.echo(_request(store, run, requester(), reason or None))
    finally:
        store.close()


def requester() -> str:
    """Who asks: user@host, as far as this process can tell."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container), no USER variable
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _store(state: State) -> HistoryStore:
    from scheduler.bootstrap import open_store

    return open_store(state.database_url(), recording=True)


def _run(store: HistoryStore, run_id: int) -> Run:
    run = store.queries.get_run(run_id)
    if run is None:
        raise NotFoundError(f"no run {run_id}")
    return run


def _of(store: HistoryStore, job_id: str | None) -> list[Run]:
    running = store.queries.list_runs(
        RunFilter(job_id=job_id, status=RunStatus.RUNNING.value, limit=MAX_RUNS_OF_A_JOB)
    )
    if not running:
        raise BadInputError(f"job {job_id!r} has no running run: nothing to cancel")
    return sorted(running, key=lambda r: r.run_id)


def _request(store: HistoryStore, run: Run, by: str, reason: str | None) -> str:
    """Ask `run` to stop; what to tell the operator. BadInputError when it already ended."""
    now = datetime.now(UTC)
    if run.status is RunStatus.RUNNING and run.cancel is None:
        run = store.runs.request_cancel(run.run_id, now, by=by, reason=reason) or run
    about = f"run {run.run_id} (job {run.job_id})"
    if run.status is not RunStatus.RUNNING:
        ended = render.utc_iso(run.finished_at) or "?"
        raise BadInputError(
            f"{about} already ended: {run.status.value} at {ended}; nothing to cancel"
        )
    assert run.cancel is not None  # requested now, or earlier by someone
    asked = f"by {run.cancel.by} at {render.utc_iso(run.cancel.at)}"
    if (run.cancel.at, run.cancel.by) != (now, by):
        return f"{about}: a cancel was already requested {asked}"
    return (
        f"{about}: cancel requested {asked}; {run.started_by or 'its process'} starts no new "
        "target from its next heartbeat, lets the work in flight finish, then ends the run "
        f"cancelled (see: show {run.run_id})"
    )
