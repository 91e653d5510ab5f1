"""trigger: one job now, in the foreground, with a progress display."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import datetime

import click

from scheduler import logs, progress
from scheduler.cli.base import State, cli, sandbox_flag, upgrade_flag
from scheduler.domain import Config, Job, RunStatus, RunTrigger
from scheduler.errors import BadInputError, NotFoundError
from scheduler.history import HistoryStore
from scheduler.pauses import held_because


@cli.command()
@click.argument("job_id")
@sandbox_flag
@upgrade_flag
@click.option(
    "--force",
    is_flag=True,
    help="run it even if it is paused, disabled (enabled: false) or inside a blackout",
)
@click.pass_obj
def trigger(state: State, job_id: str, sandbox: bool, upgrade_db: bool, force: bool) -> None:
    """Run one job now, in the foreground; exit 0 if every task succeeded, 1 if any failed.
    A paused or disabled job, or one inside a blackout now, runs only with --force (exit 2)."""
    from scheduler.bootstrap import open_services

    config = state.load(require_api_key=not sandbox, sandbox=sandbox)
    job = config.job(job_id)
    if job is None and not sandbox and state.load(sandbox=True).job(job_id) is not None:
        raise BadInputError(f"job {job_id!r} is sandbox_only: it runs only with --sandbox")
    if job is None:
        raise NotFoundError(f"no job {job_id!r} in {config.path}")
    services = open_services(config, sandbox=sandbox, upgrade_sqlite=upgrade_db)
    try:
        _check_held(job, config, services.store, services.clock.now(), force=force)
        runner = services.runner_for(job)
        governor = services.governors[job.company]
        requests_before = governor.requests
        with progress.shown(services.bus, governor, sys.stderr.isatty()) as watch:
            result = runner.run(job, RunTrigger.MANUAL, runner.clock.now(), config.revision)
        assert result is not None  # manual runs never collide on a slot
        tasks = services.store.tasks.run_tasks(result.run_id)
    finally:
        services.close()
    counts = Counter(t.status.value for t in tasks)
    click.echo(
        f"run {result.run_id}: {result.status.value}, {result.tasks_total} task(s) ("
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        + f"), {result.tasks_failed} failed, {governor.requests - requests_before} API "
        f"request(s), {watch.elapsed_s():.1f}s" + (f" ({result.error})" if result.error else "")
    )
    for task in tasks:
        if task.status.is_failure:
            click.echo(
                f"  {task.status.value}: {task.site}/{task.environment} {task.action}: "
                f"{logs.mask(task.message or '')}"
            )
    if result.status not in (RunStatus.SUCCEEDED, RunStatus.SKIPPED):
        sys.exit(1)


def _check_held(
    job: Job, config: Config, store: HistoryStore, now: datetime, *, force: bool
) -> None:
    """A job its slots would skip now (paused, disabled, in a blackout) runs only with --force:
    BadInputError without it, a note on stderr with it."""
    pause = store.pauses.paused(job.id, now)
    reason = held_because(job, config.blackouts, now, now, pause)
    if reason is None:
        return
    if not force:
        raise BadInputError(
            f"job {job.id} is held now ({reason}): its slots are skipped; run it anyway with "
            "--force" + (f", or `resume {job.id}` first" if pause is not None else "")
        )
    click.echo(f"forced: job {job.id} runs although it is held ({reason})", err=True)
