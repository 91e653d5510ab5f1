"""How a job rolls out over its targets and when it halts: shares of targets (jobs.yaml `3` or
`"5%"`), the rollout's canary and waves, the circuit breaker's limits. Pure values."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Share:
    """A number of targets, or a percentage of them (jobs.yaml: 3 or "5%")."""

    count: int | None = None
    percent: float | None = None

    def of(self, total: int) -> int:
        """How many of `total` targets (a percentage rounds up: 5% of 30 is 2)."""
        if self.percent is not None:
            return min(total, math.ceil(total * self.percent / 100 - 1e-9))
        return min(total, self.count or 0)

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else str(self.count)


@dataclass(frozen=True)
class Rollout:
    """Targets in waves: the canary first (a number or share of targets, or the sites with
    given labels or names), then each wave up to its share of all targets; a wave starts only
    when the one before ended and `pause_s` passed."""

    canary: Share | None = None
    canary_labels: tuple[str, ...] = ()
    canary_sites: tuple[str, ...] = ()
    waves: tuple[Share, ...] = (Share(percent=100.0),)  # cumulative; the last is 100%
    pause_s: float = 0.0


@dataclass(frozen=True)
class HaltAfter:
    """The circuit breaker: the run halts fleet-wide once this many of the targets done so
    far were rolled back, or failed (either; a count or a share)."""

    rolled_back: Share | None = None
    failed: Share | None = None


WAVE_ENDED = "ended"  # every target of the wave was done
WAVE_STOPPED = "stopped"  # the run halted, was cancelled or ran out of time during the wave
WAVE_NOT_STARTED = "not started"  # the run stopped before the wave began


@dataclass(frozen=True)
class WaveRecord:
    """A wave of a run as history keeps it: which wave (0 is the canary when the rollout has
    one), how many targets it had and how they ended, and when it began and ended."""

    index: int
    name: str  # "canary" or "wave 2 of 3"
    targets: int
    status: str  # WAVE_ENDED | WAVE_STOPPED | WAVE_NOT_STARTED
    done: int = 0
    failed: int = 0
    rolled_back: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None

    def summary(self) -> str:
        if self.status == WAVE_NOT_STARTED:
            return f"{self.name}: not started ({self.targets} target(s))"
        return (
            f"{self.name}: {self.done} of {self.targets} target(s) done, {self.failed} failed, "
            f"{self.rolled_back} rolled back" + (", stopped" if self.status == WAVE_STOPPED else "")
        )
