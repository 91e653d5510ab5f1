"""trigger --dry-run: the job's targets resolved live (reads only: the key's check, the site
list) and, per target, each action with the requests it would take; the total and the rate
budget it needs. No run is recorded and no change is sent to Kinsta."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from scheduler import planning
from scheduler.actions import registry
from scheduler.domain import Config, Job, Target

if TYPE_CHECKING:
    from scheduler.runner import Runner


def show(runner: Runner, job: Job, config: Config) -> list[Target]:
    """Print what a run of `job` would do now; the targets it would act on."""
    targets = runner.targets(job)
    names = [a.name for a in job.actions]
    learned = planning.Learned(
        runner.store.queries.typical_durations(names), runner.store.queries.typical_polls(names)
    )
    actions = registry()
    each = [
        (spec.name, planning.action_requests(spec, actions[spec.name], learned))
        for spec in job.actions
    ]
    per_target = sum(n for _, n in each)
    total = planning.LIST_REQUESTS + math.ceil(per_target * len(targets))
    floor_s = planning.rate_floor_s(total, config.kinsta.rate_limits)
    budget = f"{floor_s / 60:.1f} min of rate budget" if floor_s else "within one rate window"
    click.echo(
        f"dry run of job {job.id}: {len(targets)} target(s), ~{total} API request(s) ({budget}); "
        "only reads were sent (the key's check, the site list), and no run is recorded"
    )
    click.echo("\n".join(_lines(targets, each)))
    return targets


def _lines(targets: Sequence[Target], each: Sequence[tuple[str, float]]) -> list[str]:
    steps = ", ".join(f"{name} (~{requests:.1f} requests)" for name, requests in each)
    return [f"  {target.key}: {steps}" for target in targets]
