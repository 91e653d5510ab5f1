"""trigger: one job now, in the foreground, with a progress display."""

from __future__ import annotations

import sys
from collections import Counter

import click

from scheduler import logs, progress
from scheduler.cli.base import State, cli, complete_job_id, did_you_mean, sandbox_flag, upgrade_flag
from scheduler.domain import RunStatus, RunTrigger
from scheduler.errors import BadInputError, NotFoundError


@cli.command()
@click.argument("job_id", shell_complete=complete_job_id)
@sandbox_flag
@upgrade_flag
@click.pass_obj
def trigger(state: State, job_id: str, sandbox: bool, upgrade_db: bool) -> None:
    """Run one job now, in the foreground; exit 0 if every task succeeded, 1 if any failed."""
    from scheduler.bootstrap import open_services

    config = state.load(require_api_key=not sandbox, sandbox=sandbox)
    job = config.job(job_id)
    if job is None and not sandbox and state.load(sandbox=True).job(job_id) is not None:
        raise BadInputError(f"job {job_id!r} is sandbox_only: it runs only with --sandbox")
    if job is None:
        known = [j.id for j in config.jobs]
        raise NotFoundError(f"no job {job_id!r} in {config.path}{did_you_mean(job_id, known)}")
    services = open_services(config, sandbox=sandbox, upgrade_sqlite=upgrade_db)
    try:
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
