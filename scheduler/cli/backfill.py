"""backfill: run a job's past slots that never ran, one after another, on purpose."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import click

from scheduler import slots
from scheduler.cli.base import (
    State,
    cli,
    complete_job_id,
    find_job,
    history_store,
    parse_when,
    sandbox_flag,
    upgrade_flag,
)
from scheduler.domain import Config, Job, RunStatus, RunTrigger
from scheduler.errors import BadInputError
from scheduler.history import HistoryStore
from scheduler.pauses import held_because
from scheduler.ports import RunFilter

MAX_SLOTS = 1000  # slots one backfill may run


@cli.command()
@click.argument("job_id", shell_complete=complete_job_id)
@click.option("--from", "since", required=True, metavar="TIME", help="7d, or an ISO date/time")
@click.option("--to", "until", metavar="TIME", help="the range's end (default: now)")
@click.option("--dry-run", is_flag=True, help="list the slots it would run; run nothing")
@click.option(
    "--force", is_flag=True, help="also run slots a pause, enabled: false or a blackout holds"
)
@sandbox_flag
@upgrade_flag
@click.pass_obj
def backfill(
    state: State,
    job_id: str,
    since: str,
    until: str | None,
    dry_run: bool,
    force: bool,
    sandbox: bool,
    upgrade_db: bool,
) -> None:
    """Run the job's slots from --from to --to (both included) that never ran: no row in
    history, or one recorded `missed`. One after another, trigger `backfill`, each claiming its
    slot as a firing does, so a slot that ran (or is claimed meanwhile) is never run again.
    Slots the job's holds would skip (paused now, enabled: false, a blackout at the slot) are
    left out unless --force. Exit 0 when each succeeded, 1 when any did not."""
    config = state.load(require_api_key=not (sandbox or dry_run), sandbox=sandbox)
    job = find_job(config, job_id)
    if job.schedule is None:
        raise BadInputError(f"job {job_id!r} has no schedule, so no slots: run it with trigger")
    now = datetime.now(UTC)
    start, end = parse_when(since, now), parse_when(until, now) if until else now
    assert start is not None and end is not None
    if end > now:
        raise BadInputError(f"--to {until}: a backfill runs past slots only (now is {now:%c})")
    if start > end:
        raise BadInputError("--from comes after --to")
    store = history_store(state)  # closed when the command ends
    todo, recorded = _slots(store, job, start, end)
    todo, held = _holds(store, config, job, todo, now, force=force)
    left = sum(status is not RunStatus.MISSED for status in recorded.values())
    click.echo(
        f"backfill of job {job.id}: {len(todo)} slot(s) to run, {left} "
        f"that ran or were skipped left alone, from {start.isoformat()} to {end.isoformat()}"
    )
    for slot in todo:
        click.echo(f"  {slot.isoformat()}" + ("  (recorded missed)" if slot in recorded else ""))
    for slot, why in held:
        click.echo(f"  {slot.isoformat()}  left out, held: {why} (--force runs it)")
    if dry_run or not todo:
        return
    sys.exit(_run(config, job, todo, sandbox=sandbox, upgrade_db=upgrade_db))


def _slots(
    store: HistoryStore, job: Job, start: datetime, end: datetime
) -> tuple[list[datetime], dict[datetime, RunStatus]]:
    """The slots to run (oldest first: those with no row, or a `missed` one) and the statuses
    of the slots recorded in the range."""
    assert job.schedule is not None
    tick = timedelta(microseconds=1)  # slots_between excludes its ends
    found = slots.slots_between(job.schedule, start - tick, end + tick, MAX_SLOTS)
    if found.older:
        raise BadInputError(
            f"the range holds more than {MAX_SLOTS} slots of job {job.id}: backfill it in parts"
        )
    where = RunFilter(job_id=job.id, since=start, until=end + tick, limit=10 * MAX_SLOTS)
    recorded = {r.scheduled_for: r.status for r in store.queries.list_runs(where)}
    todo = [s for s in found.slots if recorded.get(s, RunStatus.MISSED) is RunStatus.MISSED]
    return todo, recorded


def _holds(
    store: HistoryStore,
    config: Config,
    job: Job,
    slots: list[datetime],
    now: datetime,
    *,
    force: bool,
) -> tuple[list[datetime], list[tuple[datetime, str]]]:
    """The slots to run, and those a hold keeps out with why (none with --force)."""
    if force:
        return slots, []
    pause = store.pauses.paused(job.id, now) if job.enabled else None
    why = {s: held_because(job, config.blackouts, s, now, pause) for s in slots}
    return [s for s in slots if why[s] is None], [(s, w) for s, w in why.items() if w]


def _run(config: Config, job: Job, todo: list[datetime], *, sandbox: bool, upgrade_db: bool) -> int:
    from scheduler.bootstrap import open_services

    services = open_services(config, sandbox=sandbox, upgrade_sqlite=upgrade_db)
    failed = 0
    try:
        runner = services.runner_for(job)
        for slot in todo:
            run = runner.run(job, RunTrigger.BACKFILL, slot, config.revision)
            if run is None:
                click.echo(f"{slot.isoformat()}: claimed elsewhere meanwhile, left alone")
                continue
            failed += run.status not in (RunStatus.SUCCEEDED, RunStatus.SKIPPED)
            detail = f" ({run.error})" if run.error else ""
            click.echo(f"{slot.isoformat()}: run {run.run_id} {run.status.value}{detail}")
            if runner.cancel.is_set():
                break
    finally:
        services.close()
    return 1 if failed else 0
