"""`plan`'s rows: each job's next fire times in its zone (DST cases marked), what a run needs
and how long it likely takes, what history adds (held-back versions, halts, pauses). `plan
--format json` prints them and the dashboard's /schedule serves them (it never resolves targets
against the API: a page view must not spend rate budget)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from scheduler import planning, render, schedules
from scheduler.actions import registry
from scheduler.domain import Config, CronSchedule, Job
from scheduler.history import HistoryStore
from scheduler.pauses import DISABLED, JobPause, blackout_at
from scheduler.planning import Estimate, Learned
from scheduler.ports import RunFilter

Warnings = list[tuple[tuple[str, ...], str]]


def plan_rows(
    config: Config,
    now: datetime,
    count: int,
    *,
    targets: dict[str, set[str]] | None,
    store: HistoryStore | None,
    note: str | None,
) -> tuple[list[dict[str, Any]], Warnings]:
    """`plan --format json`'s rows (with `targets_note` saying why targets are unknown) and the
    warnings about colliding schedules, as (job ids, text)."""
    learned = learned_from(config, store)
    rows, found = _plan(config, now, count, targets, learned)
    known = _from_history(config, store, now)
    for row in rows:
        row["warnings"] = [text for jobs, text in found if row["job_id"] in jobs]
        row["targets_note"] = note
        row.update(known[row["job_id"]])
    return rows, found


def learned_from(config: Config, store: HistoryStore | None) -> Learned:
    """What history knows of the jobs' actions: durations and polls (nothing without it)."""
    if store is None:
        return Learned()
    names = sorted({a.name for j in config.jobs for a in j.actions})
    return Learned(store.queries.typical_durations(names), store.queries.typical_polls(names))


def _from_history(
    config: Config, store: HistoryStore | None, now: datetime
) -> dict[str, dict[str, Any]]:
    """Per job, what history adds to its row: the quarantined versions its updates hold back
    and why (`held_back`), the halts of its own or a related job's latest run (`halted`, see
    planning.halts) and its pause (`paused`); nothing without history."""
    entries, latest, paused = [], {}, {}
    if store is not None:
        entries = store.quarantine.entries()
        for job in config.jobs:
            for run in store.queries.list_runs(RunFilter(job_id=job.id, limit=1)):
                latest[job.id] = run
        paused = {p.job_id: p for p in store.pauses.pauses(now)}
    return {
        job.id: {
            "held_back": [
                {"kind": e.kind, "name": e.name, "version": e.version, "why": e.why()}
                for e in planning.held_back(job, entries)
            ],
            "halted": [
                {
                    "job_id": run.job_id,
                    "run_id": run.run_id,
                    "finished_at": render.utc_iso(run.finished_at),
                    "reason": run.error,
                }
                for run in planning.halts(job, config.jobs, latest)
            ],
            "paused": paused_json(job, paused.get(job.id)),
        }
        for job in config.jobs
    }


def paused_json(job: Job, pause: JobPause | None) -> dict[str, Any] | None:
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


def _plan(
    config: Config,
    now: datetime,
    count: int,
    targets: dict[str, set[str]] | None,
    learned: Learned,
) -> tuple[list[dict[str, Any]], list[tuple[tuple[str, ...], str]]]:
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
    if schedule is None:
        return "no schedule"
    if isinstance(schedule, CronSchedule):
        return f"cron {schedule.expression}"
    return f"every {schedule.every_s:g}s"
