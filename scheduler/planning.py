"""What `plan` says about the jobs: how many requests a run needs, how long the rate governor
needs to send them, how long a run is likely to take, and which schedules collide. Pure logic:
the command gathers targets and learned durations and hands them in."""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from scheduler import schedules
from scheduler.actions import ActionDef
from scheduler.actions.updates import UpdateOptions
from scheduler.domain import IntervalSchedule, Job, Schedule

LIST_REQUESTS = 1  # resolving targets: one GET /sites with environments


@dataclass(frozen=True)
class Estimate:
    job_id: str
    targets: int | None  # None when the API could not be asked
    requests: int | None  # per run
    governor_s: float | None  # the least time the rate limit allows for those requests
    chain_s: float  # one target's actions, one after another
    duration_s: float | None  # the run's likely length


def estimate(
    job: Job,
    targets: int | None,
    actions: Mapping[str, ActionDef],
    per_minute: int,
    learned_s: Mapping[str, float],
) -> Estimate:
    chain = sum(learned_s.get(a.name, actions[a.name].typical_s) for a in job.actions)
    if targets is None:
        return Estimate(job.id, None, None, None, chain, None)
    per_target = sum(actions[a.name].requests for a in job.actions)
    requests = LIST_REQUESTS + math.ceil(per_target * targets)
    # The first per_minute requests go at once; each further batch waits a window.
    governor = max(0.0, (requests - per_minute) / per_minute * 60)
    if job.concurrency is None:  # auto: targets start as the budget allows
        return Estimate(job.id, targets, requests, governor, chain, max(governor, chain))
    waves = math.ceil(targets / job.concurrency) if targets else 0
    return Estimate(job.id, targets, requests, governor, chain, max(governor, waves * chain))


def may_share(a: Job, b: Job) -> bool:
    """Without the API: could two jobs' target selectors pick the same environment?"""
    if a.company != b.company:
        return False
    envs = {a.targets.environment, b.targets.environment}
    if "all" not in envs and len(envs) > 1:
        return False
    return any(
        fnmatchcase(x, y) or fnmatchcase(y, x) for x in a.targets.sites for y in b.targets.sites
    )


HORIZON_MIN = timedelta(days=7)  # every pair of jobs is compared over at least a week
HORIZON_MAX = timedelta(days=366)  # ... and at most a year (a yearly cycle, or one we cannot tell)
MAX_FIRES = 5_000  # fire times enumerated per job and horizon (an `every: 1m` job: 3.5 days)
_DAY_S = 86_400


def cycle_s(schedule: Schedule) -> int:
    """Seconds after which the schedule's pattern of fire times repeats (near enough for
    collision checks): an interval's length; a daily cron a day, a weekday-only cron a week;
    anything restricted by day of month or month a year (its true cycle may be longer)."""
    if isinstance(schedule, IntervalSchedule):
        return max(1, round(schedule.every_s))
    _minute, _hour, day, month, weekday = schedule.expression.split()
    if day == month == weekday == "*":
        return _DAY_S
    if day == month == "*":
        return 7 * _DAY_S
    return int(HORIZON_MAX.total_seconds())


def horizon(*found: Schedule) -> timedelta:
    """How far ahead to look so that every combination of these schedules' fire times shows:
    their common period (least common multiple of the cycles), at least a week, at most a year."""
    common = math.lcm(*(cycle_s(s) for s in found))
    return min(HORIZON_MAX, max(HORIZON_MIN, timedelta(seconds=common)))


@functools.lru_cache(maxsize=4096)  # plan compares every pair of jobs: enumerate each once
def fire_times(schedule: Schedule, after: datetime, until: datetime) -> tuple[datetime, ...]:
    """Fire times in (after, until], at most MAX_FIRES of them."""
    times: list[datetime] = []
    moment = after
    while len(times) < MAX_FIRES:
        moment = schedules.next_fire_after(schedule, moment)
        if moment > until:
            break
        times.append(moment)
    return tuple(times)


def warnings(
    jobs: Sequence[Job],
    estimates: Mapping[str, Estimate],
    now: datetime,
    shared: Mapping[tuple[str, str], int | None],
) -> list[tuple[tuple[str, ...], str]]:
    """(the jobs concerned, warning): runs that cannot finish before their next slot, and pairs
    of jobs acting on the same environments at overlapping times. `shared[(a, b)]`:
    environments both act on (None: unknown, but their selectors may overlap; absent: none).

    Fire times are looked at from `now` over each schedule's cycle (each pair's common period),
    never less than a week: a weekly job's collision with a nightly one shows whatever the day."""
    found: list[tuple[tuple[str, ...], str]] = []
    for job in jobs:
        length = estimates[job.id].duration_s
        if job.schedule is None or length is None:
            continue
        times = fire_times(job.schedule, now, now + horizon(job.schedule))
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        if gaps and length > min(gaps):
            found.append((
                (job.id,),
                f"job {job.id}: a run needs about {length / 60:.0f} min but slots are "
                f"{min(gaps) / 60:.0f} min apart: the next slot will be skipped while it runs",
            ))  # fmt: skip
    for index, first in enumerate(jobs):
        for second in jobs[index + 1 :]:
            key = (first.id, second.id)
            if key not in shared or first.schedule is None or second.schedule is None:
                continue
            when = first_overlap(
                (first.schedule, _span(estimates[first.id])),
                (second.schedule, _span(estimates[second.id])),
                now,
            )
            if when is None:
                continue
            count = shared[key]
            what = f"{count} shared environment(s)" if count is not None else "environments"
            found.append((
                key,
                f"jobs {first.id} and {second.id} act on {what} at overlapping times (around "
                f"{when:%Y-%m-%d %H:%M} UTC): mutating work on an environment waits for the "
                "other job, so both take longer",
            ))  # fmt: skip
    return found


def _span(estimate: Estimate) -> timedelta:
    known = estimate.duration_s
    return timedelta(seconds=known if known is not None else estimate.chain_s)


def first_overlap(
    a: tuple[Schedule, timedelta], b: tuple[Schedule, timedelta], now: datetime
) -> datetime | None:
    """The first moment after `now` at which a run of one schedule (lasting its span) and a run
    of the other are both going, within the pair's horizon; None if they never meet there.
    Walks the sparser schedule's fire times and asks the other for its next one, so a dense
    schedule (every minute) costs no more than the sparse one's fire count."""
    until = now + horizon(a[0], b[0])
    times_a, times_b = fire_times(a[0], now, until), fire_times(b[0], now, until)
    (sparse, span_sparse), (dense, span_dense) = (a, b) if len(times_a) <= len(times_b) else (b, a)
    for start in times_a if sparse is a[0] else times_b:
        # A run of `dense` overlaps [start, start + span_sparse) if it starts after
        # start - span_dense and before start + span_sparse.
        other = schedules.next_fire_after(dense, start - span_dense)
        if other < start + span_sparse:
            return max(start, other)
    return None


def target_warnings(
    jobs: Sequence[Job],
    sites: Mapping[str, Sequence[tuple[str, Sequence[str]]]],
    installed: Mapping[str, set[str]] | None,
) -> list[tuple[str, str]]:
    """(job id, warning) for target patterns that match no site of the job's company, and for
    plugins or themes in an update's `exclude` that no environment has in the latest inventory.
    `sites`: company -> (site name, labels); `installed`: plugins|themes -> names (None: no
    inventory yet, so that check is skipped)."""
    found: list[tuple[str, str]] = []
    for job in jobs:
        known = sites.get(job.company)
        if known is not None and not any(a.name == "create_site" for a in job.actions):
            for pattern in job.targets.sites:
                if not any(fnmatchcase(name, pattern) for name, _ in known):
                    found.append((job.id, f"targets.sites: {pattern!r} matches no site (yet)"))
            for label in job.targets.labels:
                wanted = label.casefold()
                if not any(wanted in {x.casefold() for x in labels} for _, labels in known):
                    found.append((job.id, f"targets.labels: no site has the label {label!r}"))
        if installed is None:
            continue
        for action in job.actions:
            kind = {"update_plugins": "plugins", "update_themes": "themes"}.get(action.name)
            if kind is None or not isinstance(action.options, UpdateOptions):
                continue
            for pattern in action.options.exclude:
                if not any(fnmatchcase(name, pattern) for name in installed.get(kind, set())):
                    found.append(
                        (job.id, f"{action.name}.exclude: no environment has {kind} {pattern!r}")
                    )
    return found
