"""What `plan` says about the jobs: how many requests a run needs, how long the rate governor
needs to send them, how long a run is likely to take, and which schedules collide. Pure logic:
the command gathers targets and learned durations and hands them in."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from scheduler.actions import ActionDef
from scheduler.domain import Job

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


def warnings(
    jobs: Sequence[Job],
    estimates: Mapping[str, Estimate],
    fires: Mapping[str, Sequence[datetime]],
    shared: Mapping[tuple[str, str], int | None],
) -> list[tuple[tuple[str, ...], str]]:
    """(the jobs concerned, warning): runs that cannot finish before their next slot, and pairs
    of jobs acting on the same environments at overlapping times. `shared[(a, b)]`:
    environments both act on (None: unknown, but their selectors may overlap; absent: none)."""
    found: list[tuple[tuple[str, ...], str]] = []
    for job in jobs:
        length = estimates[job.id].duration_s
        times = fires.get(job.id, ())
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        if length is not None and gaps and length > min(gaps):
            found.append((
                (job.id,),
                f"job {job.id}: a run needs about {length / 60:.0f} min but slots are "
                f"{min(gaps) / 60:.0f} min apart: the next slot will be skipped while it runs",
            ))  # fmt: skip
    for index, first in enumerate(jobs):
        for second in jobs[index + 1 :]:
            key = (first.id, second.id)
            if key not in shared:
                continue
            when = _overlap(fires.get(first.id, ()), fires.get(second.id, ()), estimates, key)
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


def _overlap(
    a: Sequence[datetime],
    b: Sequence[datetime],
    estimates: Mapping[str, Estimate],
    key: tuple[str, str],
) -> datetime | None:
    def length(job_id: str) -> timedelta:
        known = estimates[job_id].duration_s
        return timedelta(seconds=known if known is not None else estimates[job_id].chain_s)

    span_a, span_b = length(key[0]), length(key[1])
    for start_a in a:
        for start_b in b:
            if start_a < start_b + span_b and start_b < start_a + span_a:
                return max(start_a, start_b)
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
            if kind is None:
                continue
            for pattern in action.options.get("exclude", ()):
                if not any(fnmatchcase(name, pattern) for name in installed.get(kind, set())):
                    found.append(
                        (job.id, f"{action.name}.exclude: no environment has {kind} {pattern!r}")
                    )
    return found
