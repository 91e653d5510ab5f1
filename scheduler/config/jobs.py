"""Each job of jobs.yaml -> a domain.Job: its schedule, and its actions validated with the
options model the action catalogue declares."""

from __future__ import annotations

import difflib
import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from scheduler import schedules
from scheduler.actions import Scope, registry
from scheduler.config.blackouts import blackouts_of
from scheduler.config.problems import Problems, validate_leniently, validation_messages
from scheduler.config.shape import (
    CanaryModel,
    HaltAfterModel,
    JobModel,
    RolloutModel,
    ScheduleModel,
    share_parts,
)
from scheduler.domain import (
    DEFAULT_COMPANY,
    ActionSpec,
    CronSchedule,
    IntervalSchedule,
    Job,
    Schedule,
    Secret,
    TargetSelector,
)
from scheduler.rollout import HaltAfter, Rollout, Share
from scheduler.values import parse_duration

JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
# For a job's wrong keys, while its other keys are checked: values that provoke no problem
# (allow_scheduled: true, so that an on-demand action is not blamed for a wrong flag).
_STAND_INS = {"id": "job", "actions": ["clear_cache"], "allow_scheduled": True}


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


def _schedule(raw: ScheduleModel, default_zone: str) -> Schedule:
    if (raw.cron is None) == (raw.every is None):
        raise ValueError("give exactly one of cron or every")
    jitter = parse_duration(raw.jitter)
    if raw.every is not None:
        every = parse_duration(raw.every)
        if every < 1:
            raise ValueError("every must be at least 1s")
        if raw.timezone is not None:
            raise ValueError("timezone applies to cron schedules only")
        if jitter >= every:
            raise ValueError("jitter must be shorter than the interval")
        return IntervalSchedule(every_s=every, jitter_s=jitter)
    assert raw.cron is not None
    zone = _zone(raw.timezone or default_zone)
    try:
        fires = schedules.cron_fires(raw.cron)
    except ValueError as exc:
        raise ValueError(f"invalid cron expression {raw.cron[:100]!r}: {exc}") from exc
    if not fires:
        raise ValueError(f"cron expression {raw.cron!r} never fires (no such date)")
    gap = schedules.cron_gap_within(raw.cron, jitter)
    if gap is not None:
        raise ValueError(
            f"jitter must be shorter than the time between two firings ({_describe_s(gap)} "
            f"in {raw.cron!r})"
        )
    return CronSchedule(expression=raw.cron, timezone=zone, jitter_s=jitter)


def _describe_s(gap: timedelta) -> str:
    seconds = int(gap.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _actions(
    raw: list[str | dict[str, Any]], at: tuple[str | int, ...], problems: Problems
) -> tuple[ActionSpec, ...]:
    catalogue = registry()
    specs = []
    for index, item in enumerate(raw):
        path = (*at, index)
        options: Any
        if isinstance(item, str):
            name, options = item, {}
        elif len(item) == 1:
            name, options = next(iter(item.items()))
            options = {} if options is None else options
        else:
            problems.add(
                path, "an action with options is a mapping with one key, the action's name"
            )
            continue
        definition = catalogue.get(name)
        if definition is None:
            close = difflib.get_close_matches(str(name), list(catalogue), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            known = ", ".join(sorted(catalogue))
            problems.add(path, f"unknown action {name!r} ({hint}known: {known})")
            continue
        if not isinstance(options, dict):
            problems.add((*path, name), "options must be a mapping")
            continue
        try:
            parsed = definition.options.model_validate(options)
        except ValidationError as exc:
            for loc, message in validation_messages(exc):
                problems.add((*path, name, *loc), message)
            continue
        specs.append(ActionSpec(name=name, options=parsed))
    return tuple(specs)


def _job(raw: JobModel, index: int, default_zone: str, problems: Problems) -> Job | None:
    at: tuple[str | int, ...] = ("jobs", index)
    before = len(problems.items)
    if not JOB_ID.match(raw.id):
        problems.add((*at, "id"), "job ids are letters, digits and - _ . : (no spaces)")
    schedule = None
    if raw.schedule is not None:
        try:
            schedule = _schedule(raw.schedule, default_zone)
        except ValueError as exc:
            problems.add((*at, "schedule"), str(exc))
    actions = _actions(raw.actions, (*at, "actions"), problems)
    _check_action_mix(raw, at, problems)
    grace = _grace(raw, at, problems)
    # A job's blackouts are read in its cron schedule's zone, else the file's.
    zone = schedule.timezone if isinstance(schedule, CronSchedule) else default_zone
    blackouts = blackouts_of(raw.blackouts, (*at, "blackouts"), zone, problems)
    if len(problems.items) > before:
        return None
    return Job(
        id=raw.id,
        schedule=schedule,
        targets=TargetSelector(
            sites=tuple(raw.targets.sites),
            labels=tuple(raw.targets.labels),
            exclude=tuple(raw.targets.exclude),
            environment=raw.targets.environment,
        ),
        actions=actions,
        concurrency=raw.concurrency if isinstance(raw.concurrency, int) else None,
        on_failure=raw.on_failure,
        misfire_grace_s=grace,
        company=raw.company or DEFAULT_COMPANY,
        allow_scheduled=raw.allow_scheduled,
        catch_up_s=None if raw.catch_up is False else float(raw.catch_up),
        timeout_s=float(raw.timeout),
        heartbeat_url=Secret(raw.heartbeat_url) if raw.heartbeat_url else None,
        rollout=_rollout(raw.rollout),
        halt_after=_halt_after(raw.halt_after),
        overlap=raw.overlap,
        enabled=raw.enabled,
        blackouts=blackouts,
    )


def _grace(raw: JobModel, at: tuple[str | int, ...], problems: Problems) -> float:
    try:
        return parse_duration(raw.misfire_grace)
    except ValueError as exc:
        problems.add((*at, "misfire_grace"), str(exc))
        return 0.0


def _share(value: int | str | None) -> Share | None:
    if value is None:
        return None
    count, percent = share_parts(value)
    return Share(count=count, percent=percent)


def _rollout(raw: RolloutModel | None) -> Rollout | None:
    """The job's waves; a last wave of 100% is implied when the listed ones stop short."""
    if raw is None:
        return None
    waves = tuple(s for s in (_share(w) for w in raw.waves) if s is not None)
    if waves[-1].percent != 100.0:
        waves = (*waves, Share(percent=100.0))
    canary = raw.canary
    return Rollout(
        canary=None if canary is None or isinstance(canary, CanaryModel) else _share(canary),
        canary_labels=tuple(canary.labels) if isinstance(canary, CanaryModel) else (),
        canary_sites=tuple(canary.sites) if isinstance(canary, CanaryModel) else (),
        waves=waves,
        pause_s=float(raw.pause),
    )


def _halt_after(raw: HaltAfterModel | None) -> HaltAfter | None:
    if raw is None or (raw.rolled_back is None and raw.failed is None):
        return None
    return HaltAfter(rolled_back=_share(raw.rolled_back), failed=_share(raw.failed))


def _check_action_mix(raw: JobModel, at: tuple[str | int, ...], problems: Problems) -> None:
    catalogue = registry()
    names = [str(a) if isinstance(a, str) else str(next(iter(a), "")) for a in raw.actions]
    for index, name in enumerate(names):
        definition = catalogue.get(name)
        if definition is None:
            continue  # reported by _actions
        if definition.on_demand and raw.schedule is not None and not raw.allow_scheduled:
            problems.add(
                (*at, "actions", index),
                f"{name} is an on-demand action: use it in a job without a schedule (run it with "
                "`trigger`), or set allow_scheduled: true",
            )
        problem = definition.environment_problem(raw.targets.environment)
        if problem is not None:
            problems.add((*at, "targets", "environment"), problem)
    company_level = [n for n in names if n in catalogue and catalogue[n].scope is Scope.COMPANY]
    if company_level and len(names) > len(company_level) and raw.actions:
        problems.add(
            (*at, "actions"),
            f"{', '.join(company_level)} acts on the company, not on environments: put it in a "
            "job of its own",
        )


def top_zone(value: Any, problems: Problems) -> str:
    if not isinstance(value, str):
        return "UTC"  # the model reports the wrong type
    try:
        return _zone(value)
    except ValueError as exc:
        problems.add(("timezone",), str(exc))
        return "UTC"


def jobs_of(raw_jobs: Any, zone: str, problems: Problems, *, sandbox: bool) -> list[Job]:
    """The valid jobs; every problem of every job reported, a wrong key or a duplicate id hiding
    none of a job's other problems."""
    if not isinstance(raw_jobs, list):
        return []
    jobs: list[Job] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw_jobs):
        raw_job, wrong = validate_leniently(JobModel, item, ("jobs", index), problems, _STAND_INS)
        job_id = item.get("id") if isinstance(item, dict) else None
        duplicate = isinstance(job_id, str) and job_id in seen
        if duplicate:
            first = seen[str(job_id)] + 1
            problems.add(("jobs", index, "id"), f"duplicate job id (first at job #{first})")
        elif isinstance(job_id, str):
            seen[job_id] = index
        if raw_job is None:
            continue
        if "actions" in wrong:  # no stand-in: the actions that are there were reported
            raw_job = raw_job.model_copy(update={"actions": []})
        job = _job(raw_job, index, zone, problems)
        if job is not None and not (wrong or duplicate) and (sandbox or not raw_job.sandbox_only):
            jobs.append(job)
    return jobs
