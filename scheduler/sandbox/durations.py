"""How long the sandbox's operations take: a median per kind of operation, in real Kinsta seconds,
and a spread, drawn afresh for each operation, then multiplied by `time_scale`.

Each duration is the median times a factor drawn from a lognormal distribution (the log of the
factor is normal, with mean 0 and standard deviation `spread`), clipped to [LOW_FACTOR,
HIGH_FACTOR]: half the operations take less than the median, a few take much longer, and none
takes less than half or more than three times it, so tests and benchmarks can reason about
bounds (`duration_bounds`). A spread of 0 makes every duration exactly the median.

The draws come from a random stream of their own (`durations-<seed>`), so the ids and cache
choices drawn from the fleet's other streams are the same whatever the spread.

Where the medians come from. Kinsta's OpenAPI document says the tool, edge-caching and CDN
endpoints "trigger longer tasks (from a few seconds to around a minute)", and that "site
creation might take around one to a few minutes" (shared/kinsta-api/REFERENCE.md, "Asynchronous
pattern"); the medians of those kinds sit within what it says. Nothing in the document or in
REFERENCE.md times a backup, a restore, an update, a push, a clone or a deletion: those medians
are our estimate, and the table says so.
"""

from __future__ import annotations

import random

from scheduler.sandbox_values import SandboxSettings

__all__ = [
    "DEFAULT_MEDIAN_S",
    "DEFAULT_SPREAD",
    "HIGH_FACTOR",
    "LOW_FACTOR",
    "MAX_SPREAD",
    "MEDIAN_S",
    "Durations",
    "duration_bounds",
    "median_s",
]

LOW_FACTOR = 0.5  # no operation is quicker than half its median
HIGH_FACTOR = 3.0  # nor slower than three times it
# 0.4: about 4% of operations take half the median, 0.3% three times it
DEFAULT_SPREAD = SandboxSettings.duration_spread
MAX_SPREAD = 2.0
DEFAULT_MEDIAN_S = 10.0  # an operation kind not listed below (our estimate)

SPEC_TOOLS = "spec: tools, edge cache and CDN 'from a few seconds to around a minute'"
SPEC_SITES = "spec: site creation 'around one to a few minutes'"
ESTIMATE = "our estimate"

# kind -> (median seconds at time_scale 1.0, where the figure comes from)
TIMINGS: dict[str, tuple[float, str]] = {
    "cache:clear": (10.0, SPEC_TOOLS),
    "edgeCache:clear": (8.0, SPEC_TOOLS),  # a little quicker than the site cache
    "cdn-cache:clear": (8.0, SPEC_TOOLS),
    "php:restart": (20.0, SPEC_TOOLS),
    "php:modify-version": (60.0, SPEC_TOOLS),  # a restart with another PHP: "around a minute"
    "wp-plugin:update": (30.0, ESTIMATE),
    "wp-theme:update": (30.0, ESTIMATE),
    "wp-plugins:bulk-update": (60.0, ESTIMATE),  # about a minute for a few plugins
    "wp-themes:bulk-update": (60.0, ESTIMATE),
    "backups:add-manual": (120.0, ESTIMATE),  # one to several minutes
    "backups:restore": (180.0, ESTIMATE),  # about three minutes
    "backups:remove": (10.0, ESTIMATE),
    "sites:add-domain": (30.0, ESTIMATE),
    "sites:delete-domain": (15.0, ESTIMATE),
    "sites:add": (180.0, SPEC_SITES),
    "sites:add-plain": (120.0, SPEC_SITES),  # no WordPress to install
    "site:clone": (300.0, ESTIMATE),  # a creation plus a copy: several minutes
    "sites:delete": (60.0, ESTIMATE),
    "environment:add": (180.0, ESTIMATE),  # made like a site (SPEC_SITES)
    "environment:add-plain": (120.0, ESTIMATE),
    "environment:clone": (300.0, ESTIMATE),
    "environments:delete": (60.0, ESTIMATE),
    "environments:push": (180.0, ESTIMATE),  # a copy of files and database, like a restore
}
MEDIAN_S: dict[str, float] = {kind: median for kind, (median, _) in TIMINGS.items()}


def median_s(kind: str) -> float:
    """The median duration of an operation kind at time_scale 1.0, in seconds."""
    return MEDIAN_S.get(kind, DEFAULT_MEDIAN_S)


def check_spread(spread: float) -> float:
    if not 0.0 <= spread <= MAX_SPREAD:
        raise ValueError(f"the duration spread must be between 0 and {MAX_SPREAD:g}")
    return spread


def duration_bounds(
    kind: str, time_scale: float = 1.0, spread: float = DEFAULT_SPREAD
) -> tuple[float, float]:
    """The shortest and the longest an operation of `kind` can take at `time_scale`: exactly
    what `Durations.draw` can return at either end (both the median when spread is 0)."""
    median = median_s(kind) * time_scale
    if check_spread(spread) == 0:
        return median, median
    return median * LOW_FACTOR, median * HIGH_FACTOR


class Durations:
    """One fleet's durations, drawn from their own seeded stream."""

    def __init__(self, seed: int, spread: float = DEFAULT_SPREAD) -> None:
        self.spread = check_spread(spread)
        self._rng = random.Random(f"durations-{seed}")

    def draw(self, kind: str, time_scale: float) -> float:
        """How long this operation of `kind` takes, in seconds at `time_scale`."""
        median = median_s(kind) * time_scale
        if self.spread == 0:
            return median
        factor = self._rng.lognormvariate(0.0, self.spread)
        return median * min(HIGH_FACTOR, max(LOW_FACTOR, factor))

    def bounds(self, kind: str, time_scale: float) -> tuple[float, float]:
        return duration_bounds(kind, time_scale, self.spread)
