"""trigger: one job now, in the foreground, with a progress display."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

import click

from scheduler import logs, progress
from scheduler.actions import registry
from scheduler.cli import preview
from scheduler.cli.base import State, cli, complete_job_id, find_job, sandbox_flag, upgrade_flag
from scheduler.cli.confirm import confirm, yes_flag
from scheduler.domain import Config, Job, NotificationRecord, Run, RunStatus, RunTrigger, Task
from scheduler.errors import BadInputError
from scheduler.events import NotificationDelivered, RunFinished
from scheduler.history import HistoryStore
from scheduler.pauses import held_because

if TYPE_CHECKING:
    from scheduler.bootstrap import Services
    from scheduler.runner import Runner


@cli.command()
@click.argument("job_id", shell_complete=complete_job_id)
@click.option(
    "--site",
    "sites",
    multiple=True,
    metavar="SITE",
    help="only this site of the job's targets (a name or pattern; repeat for more)",
)
@click.option(
    "--environment", metavar="ENV", help="only this environment (live, staging or a name)"
)
@click.option(
    "--dry-run", is_flag=True, help="print the targets and what a run would cost; change nothing"
)
@yes_flag
@click.option(
    "--no-notify",
    is_flag=True,
    help="send no notification for this run (messages, heartbeat pings)",
)
@sandbox_flag
@upgrade_flag
@click.option(
    "--force",
    is_flag=True,
    help="run it even if it is paused, disabled (enabled: false) or inside a blackout",
)
@click.pass_obj
def trigger(
    state: State,
    job_id: str,
    sites: tuple[str, ...],
    environment: str | None,
    dry_run: bool,
    yes: bool,
    no_notify: bool,
    sandbox: bool,
    upgrade_db: bool,
    force: bool,
) -> None:
    """Run one job now, in the foreground; exit 0 if every task succeeded, 1 if any failed.
    A job that restores, pushes, deletes or creates asks first on a terminal (--yes skips the
    question; without a terminal it needs --yes). Sends the notifications the daemon would for
    the run, unless --no-notify. A paused or disabled job, or one inside a blackout now, runs
    only with --force (exit 2)."""
    from scheduler.bootstrap import open_services, register_notify_secrets

    config, job = _load(state, job_id, sandbox=sandbox)
    job = narrowed(job, sites, environment)
    register_notify_secrets(config)
    services = open_services(config, sandbox=sandbox, upgrade_sqlite=upgrade_db)
    try:
        runner = services.runner_for(job)
        if dry_run:  # runs nothing: held or not
            preview.show(runner, job, config)
            return
        _check_held(job, config, services.store, services.clock.now(), force=force)
        _check_targets(runner, job, yes=yes, narrowed=bool(sites or environment))
        delivered = [] if no_notify else _notifications(services)
        governor = services.governors[job.company]
        requests_before = governor.requests
        with progress.shown(services.bus, governor, sys.stderr.isatty()) as watch:
            result = runner.run(job, RunTrigger.MANUAL, runner.clock.now(), config.revision)
        assert result is not None  # manual runs never collide on a slot
        tasks = services.store.tasks.run_tasks(result.run_id)
        services.bus.publish(RunFinished(job, result, tuple(tasks)))  # as the daemon does
    finally:
        services.close()
    _summary(result, tasks, governor.requests - requests_before, watch.elapsed_s())
    if delivered:
        click.echo(_notified(delivered))
    if result.status not in (RunStatus.SUCCEEDED, RunStatus.SKIPPED):
        sys.exit(1)


def _summary(result: Run, tasks: list[Task], requests: int, elapsed_s: float) -> None:
    """The run's line, then one line per task that failed."""
    counts = Counter(t.status.value for t in tasks)
    click.echo(
        f"run {result.run_id}: {result.status.value}, {result.tasks_total} task(s) ("
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        + f"), {result.tasks_failed} failed, {requests} API "
        f"request(s), {elapsed_s:.1f}s" + (f" ({result.error})" if result.error else "")
    )
    for task in tasks:
        if task.status.is_failure:
            click.echo(
                f"  {task.status.value}: {task.site}/{task.environment} {task.action}: "
                f"{logs.mask(task.message or '')}"
            )


def _notifications(services: Services) -> list[NotificationRecord]:
    """The daemon's notifications for this run; what they delivered (or not) is listed."""
    from scheduler.bootstrap import open_notifications

    open_notifications(services)
    delivered: list[NotificationRecord] = []
    services.bus.subscribe(NotificationDelivered, lambda event: delivered.append(event.record))
    return delivered


def _notified(records: list[NotificationRecord]) -> str:
    """One line on the run's notifications: `notifications: 3 delivered, 1 not delivered
    (history notifications)`."""
    lost = sum(not r.ok for r in records)
    line = f"notifications: {len(records) - lost} delivered"
    return line + (f", {lost} not delivered (history notifications)" if lost else "")


def _load(state: State, job_id: str, *, sandbox: bool) -> tuple[Config, Job]:
    """jobs.yaml and the job named; bad input (with a did-you-mean) when it has none."""
    config = state.load(require_api_key=not sandbox, sandbox=sandbox)
    job = config.job(job_id)
    if job is None and not sandbox and state.load(sandbox=True).job(job_id) is not None:
        raise BadInputError(f"job {job_id!r} is sandbox_only: it runs only with --sandbox")
    return config, find_job(config, job_id)


def narrowed(job: Job, sites: tuple[str, ...], environment: str | None) -> Job:
    """The job with its targets narrowed to `sites` and `environment` (trigger --site/--env)."""
    if not sites and environment is None:
        return job
    for given in (*sites, environment or "x"):
        if not given.strip():
            raise BadInputError("--site and --environment take a name or a pattern, not blank")
    selector = replace(job.targets, only_sites=sites, only_environment=environment)
    return replace(job, targets=selector)


def _check_targets(runner: Runner, job: Job, *, yes: bool, narrowed: bool) -> None:
    """Before a run: a narrowing that leaves no target is bad input, and a job that restores,
    pushes, deletes or creates is confirmed, listing the environments it will touch."""
    actions = registry()
    risky = [a.name for a in job.actions if actions[a.name].on_demand]
    if not (risky or narrowed):
        return
    targets = runner.targets(job)
    if narrowed and not targets:
        raise BadInputError(
            f"--site/--environment: none of job {job.id!r}'s targets is left to run on"
        )
    if risky:
        what = f"run {', '.join(risky)} (job {job.id}) on {len(targets)} target(s)"
        confirm(what, [t.key for t in targets], yes=yes)


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
