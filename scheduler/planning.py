"""What `plan` says about the jobs: how many requests a run needs, how long the rate governor
needs to send them, how long a run is likely to take, and which schedules collide. Pure logic:
the command gathers targets and what history learned and hands them in.

The model of a run. Requests: the site listing, then per target each action's calls and reads
(ActionDef.cost) and its operations' polls (the mean history has seen for that action, else
POLLS_PER_OPERATION). Length: a night is rate-bound, so with `concurrency: auto` it lasts as long
as the key's limit needs for its requests beyond the first window's burst (the rate floor), plus
the tail: when the budget no longer holds anything back, the last targets still have part of
their chain of operations ahead (about TAIL_SHARE of one); never less than one target's chain.
`concurrency: N` runs waves of N targets, never faster than that. Runs that start in the same
minute on the same company share the key's budget: each sends at about the same pace, so a run
waits behind its own requests and, of each other's, as many as it sends itself."""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from scheduler import schedules
from scheduler.actions import ActionDef, Scope
from scheduler.actions.updates import UpdateOptions
from scheduler.domain import (
    ActionSpec,
    IntervalSchedule,
    Job,
    RateLimits,
    Run,
    RunStatus,
    Schedule,
)
from scheduler.ports import QuarantineEntry

LIST_REQUESTS = 1  # resolving targets: one GET /sites with environments
# Polls an operation costs before history knows its action (the mean of recent successes, then):
# scouts learn an action in the first minutes of a cold night; a warm one needs about one.
POLLS_PER_OPERATION = 1.1
# After the budget stops being the bottleneck, the last targets' operations still run: about
# this share of one target's chain (the end game starts them all, each partly done).
TAIL_SHARE = 0.5
# Kinsta's rate window. Actions declare their typical durations at Kinsta's pace; a jobs.yaml that
# scales the window (as the sandbox's benchmarks and tests scale time) scales them alike.
KINSTA_WINDOW_S = RateLimits().window_s  # the same figure the runner scales scouts by
UPDATE_KINDS = {"update_plugins": "plugins", "update_themes": "themes"}


@dataclass(frozen=True)
class Learned:
    """What history knows per action: the typical duration of its operations (seconds)
    and the mean number of polls each cost. Actions it does not know fall back to their
    declaration and POLLS_PER_OPERATION."""

    durations_s: Mapping[str, float] = field(default_factory=dict)
    polls: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Estimate:
    job_id: str
    targets: int | None  # None when the API could not be asked
    requests: int | None  # per run
    governor_s: float | None  # the least time the rate limit allows for those requests
    chain_s: float  # one target's actions, one after another
    duration_s: float | None  # the run's likely length
    operations: int | None = None  # asynchronous operations per run (each polled)
    # The requests on the key's budget while the run goes: its own, and those of the runs that
    # start in the same minute (`shared_with`) that go out meanwhile; what duration_s uses.
    shared_requests: int | None = None
    shared_with: tuple[str, ...] = ()


def target_cost(
    job: Job, actions: Mapping[str, ActionDef], learned: Learned
) -> tuple[float, float]:
    """(requests, operations) per target: each action's calls and reads, and its operations
    with the polls each is expected to cost."""
    requests = operations = 0.0
    for spec in job.actions:
        requests += action_requests(spec, actions[spec.name], learned)
        operations += actions[spec.name].cost(spec.options).operations
    return requests, operations


def action_requests(spec: ActionSpec, action: ActionDef, learned: Learned) -> float:
    """What one task of `spec` asks of Kinsta: its calls and reads, and the polls its
    operations are expected to take (as history has seen them, else POLLS_PER_OPERATION)."""
    cost = action.cost(spec.options)
    return cost.requests + cost.operations * learned.polls.get(spec.name, POLLS_PER_OPERATION)


def rate_floor_s(requests: int, limits: RateLimits) -> float:
    """The least time the key's limit allows for `requests`: the first window's worth go at
    once, then `per_minute` more per window (`window_s`, scaled in tests and benchmarks)."""
    per_window = limits.per_minute
    return max(0.0, (requests - per_window) / per_window * limits.window_s)


def run_length_s(job: Job, targets: int, chain_s: float, floor_s: float) -> float:
    """How long a run of `targets` targets lasts, given one target's chain and the rate floor
    of the requests its budget carries."""
    if not targets:
        return 0.0
    paced = max(floor_s + TAIL_SHARE * chain_s, chain_s)
    if job.concurrency is None:  # auto: targets start as the budget allows
        return paced
    return max(paced, math.ceil(targets / job.concurrency) * chain_s)


def estimate(
    job: Job,
    targets: int | None,
    actions: Mapping[str, ActionDef],
    limits: RateLimits,
    learned: Learned,
    *,
    together: Sequence[tuple[str, int]] = (),
) -> Estimate:
    """A run of `job` over `targets` targets. `together`: (job id, requests per run) of the
    runs that start in the same minute on the same key (see `starting_together`)."""
    declared = limits.window_s / KINSTA_WINDOW_S  # declared durations are at Kinsta's pace
    chain = sum(
        learned.durations_s.get(a.name, actions[a.name].typical_s * declared) for a in job.actions
    )
    if targets is None:
        return Estimate(job.id, None, None, None, chain, None)
    per_target, operations = target_cost(job, actions, learned)
    company_only = all(actions[a.name].scope is Scope.COMPANY for a in job.actions)
    requests = (0 if company_only else LIST_REQUESTS) + math.ceil(per_target * targets)
    shared = requests + sum(min(theirs, requests) for _, theirs in together)
    length = run_length_s(job, targets, chain, rate_floor_s(shared, limits))
    return Estimate(
        job.id,
        targets,
        requests,
        rate_floor_s(requests, limits),
        chain,
        length,
        operations=round(operations * targets),
        shared_requests=shared,
        shared_with=tuple(other for other, _ in together),
    )


def starting_together(
    jobs: Sequence[Job], requests: Mapping[str, int | None], now: datetime
) -> dict[str, list[tuple[str, int]]]:
    """Per scheduled job, the jobs of its company (with their requests per run) whose runs
    start in the same UTC minute as one of its own, at the fire time where they add the most to
    its budget (see `estimate`); over each job's cycle, as `warnings` looks (a weekly job meets
    a nightly one once a week, a monthly one meets the nightly one on its day: both hear of it).
    Jobs whose requests are unknown are left out."""
    known = [j for j in jobs if j.schedule is not None and requests.get(j.id) is not None]
    fires, minutes, ends = _fire_index(known, now)
    meetings: dict[str, dict[datetime, set[str]]] = {j.id: {} for j in known}
    for job in known:
        for moment in fires[job.id]:
            minute = _minute(moment)
            others = meetings[job.id].setdefault(minute, set())
            others |= minutes[(job.company, minute)] - {job.id}
            for end, other in ends[job.company]:  # cycles shorter than this job's: ask them
                if end >= moment:
                    break
                if other.id != job.id and _fires_in_minute(other.schedule, moment):
                    others.add(other.id)
                    meetings[other.id].setdefault(minute, set()).add(job.id)
    found: dict[str, list[tuple[str, int]]] = {}
    for job_id, met in meetings.items():
        mine = requests[job_id] or 0
        best: list[tuple[str, int]] = []
        for others in met.values():
            here = [(o, requests[o] or 0) for o in sorted(others)]
            if sum(min(n, mine) for _, n in here) > sum(min(n, mine) for _, n in best):
                best = here
        if best:
            found[job_id] = best
    return found


def _fire_index(
    jobs: Sequence[Job], now: datetime
) -> tuple[
    dict[str, tuple[datetime, ...]],
    dict[tuple[str, datetime], set[str]],
    dict[str, list[tuple[datetime, Job]]],
]:
    """(each job's fire times over its cycle; (company, minute) -> the jobs firing then; per
    company, how far each job's fire times were enumerated, soonest first)."""
    fires: dict[str, tuple[datetime, ...]] = {}
    minutes: dict[tuple[str, datetime], set[str]] = {}
    ends: dict[str, list[tuple[datetime, Job]]] = {}
    for job in jobs:
        assert job.schedule is not None
        until = now + horizon(job.schedule)
        found = fires[job.id] = fire_times(job.schedule, now, until)
        ends.setdefault(job.company, []).append(
            (found[-1] if len(found) == MAX_FIRES else until, job)
        )
        for moment in found:
            minutes.setdefault((job.company, _minute(moment)), set()).add(job.id)
    for listed in ends.values():
        listed.sort(key=lambda pair: pair[0])
    return fires, minutes, ends


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _fires_in_minute(schedule: Schedule | None, moment: datetime) -> bool:
    if schedule is None:
        return False
    start = _minute(moment)
    after = schedules.next_fire_after(schedule, start - timedelta(microseconds=1))
    return after < start + timedelta(minutes=1)


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
            kind = UPDATE_KINDS.get(action.name)
            if kind is None or not isinstance(action.options, UpdateOptions):
                continue
            for pattern in action.options.exclude:
                if not any(fnmatchcase(name, pattern) for name in installed.get(kind, set())):
                    found.append(
                        (job.id, f"{action.name}.exclude: no environment has {kind} {pattern!r}")
                    )
    return found


def held_back(job: Job, quarantined: Sequence[QuarantineEntry]) -> list[QuarantineEntry]:
    """The quarantined versions the job's updates hold back: those of the kind an update action
    of the job updates, that its `include` takes and its `exclude` does not."""
    found: list[QuarantineEntry] = []
    for action in job.actions:
        kind = UPDATE_KINDS.get(action.name)
        if kind is None:
            continue
        options = action.options if isinstance(action.options, UpdateOptions) else UpdateOptions()
        for entry in quarantined:
            taken = any(fnmatchcase(entry.name, p) for p in options.include or ("*",))
            excluded = any(fnmatchcase(entry.name, p) for p in options.exclude)
            if entry.kind == kind and entry.active and taken and not excluded:
                found.append(entry)
    return list(dict.fromkeys(found))


def halts(job: Job, jobs: Sequence[Job], latest: Mapping[str, Run]) -> list[Run]:
    """The halts `plan` shows beside `job`: its own latest run, and the latest run of each job
    that updates the same kind (plugins, themes), when the circuit breaker halted it."""
    kinds = {UPDATE_KINDS.get(a.name) for a in job.actions} - {None}
    related = [
        other
        for other in jobs
        if other.id == job.id or kinds & {UPDATE_KINDS.get(a.name) for a in other.actions}
    ]
    found = [latest.get(other.id) for other in related]
    return [run for run in found if run is not None and run.status is RunStatus.HALTED]
