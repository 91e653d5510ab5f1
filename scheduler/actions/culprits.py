"""Culprit isolation for a bulk safe update that failed verification and was restored: which
of its items broke the site? Pure logic: the search (halves), and whether another step fits
in what the run has left. The steps themselves (backup, update, verify, restore) are
scheduler.actions.safe's, handed in as `trial`.

The search. The bulk step failed, so its items are split in halves; each half is tried on its
own, on top of what was kept so far: a half that passes is kept (its items stay updated); one
that fails is restored and split again. A single item whose step fails is guilty: that is the
only proof that convicts (and quarantines) a version. When the first half of a failed group
passes, the second half, applied on top of it, would repeat the failed group: it is split at
once instead of tried whole (one step saved per level), but a single item is always tried on
its own before it is convicted. One guilty item among n costs about 2 log2(n) steps; every
item guilty, 2n - 1 at most.

The budget. A step starts only if, before the run's timeout, there is time for as long as the
longest step so far took, and for its requests at the key's rate behind the requests already
waiting for budget (the requests a step costs come from the action's cost declaration, what
`plan` counts). Whatever is not tried stays as it was before the update: held back for the next
run, neither kept nor convicted."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Verdict(StrEnum):
    """How one step ended."""

    PASSED = "passed"  # updated and verified: kept
    FAILED = "failed"  # verification failed, and the step's backup was restored
    ABORTED = "aborted"  # the step could not be completed (backup, update or restore failed)


class _Known(StrEnum):
    TRIED = "tried"  # a step of exactly this group failed (the bulk step)
    IMPLIED = "implied"  # its sibling passed, so on top of it this group repeats a failed one


@dataclass(frozen=True)
class Isolation:
    """What the search found: the items kept (updated and verified), the guilty ones (each
    failed a step of its own) and the ones left untried, with why the search stopped early."""

    kept: tuple[str, ...] = ()
    guilty: tuple[str, ...] = ()
    untried: tuple[str, ...] = ()
    stopped: str | None = None


@dataclass
class _Search:
    trial: Callable[[tuple[str, ...]], Verdict]
    go_on: Callable[[], str | None]
    kept: list[str] = field(default_factory=list)
    guilty: list[str] = field(default_factory=list)
    untried: list[str] = field(default_factory=list)
    stopped: str | None = None

    def settle(self, group: tuple[str, ...], known: _Known | None) -> Verdict | None:
        """Keep what passes in `group`, convict what fails alone; the group's verdict as a
        whole (None: not settled, the search stopped)."""
        if self.stopped is not None:
            self.untried.extend(group)
            return None
        if len(group) == 1 and known is _Known.TRIED:
            self.guilty.extend(group)
            return Verdict.FAILED
        if known is None or len(group) == 1:
            verdict = self._try(group)
            if verdict is not Verdict.FAILED or len(group) == 1:
                return verdict
        left, right = halves(group)
        first = self.settle(left, None)
        self.settle(right, _Known.IMPLIED if first is Verdict.PASSED else None)
        return Verdict.FAILED

    def _try(self, group: tuple[str, ...]) -> Verdict | None:
        why = self.go_on()
        if why is not None:
            self.stopped = why
            self.untried.extend(group)
            return None
        verdict = self.trial(group)
        if verdict is Verdict.ABORTED:
            self.stopped = "a step could not be completed"
            self.untried.extend(group)
            return None
        if verdict is Verdict.PASSED:
            self.kept.extend(group)
        elif len(group) == 1:
            self.guilty.extend(group)
        return verdict


def halves(group: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The first half (the larger, when odd) and the rest."""
    middle = (len(group) + 1) // 2
    return tuple(group[:middle]), tuple(group[middle:])


def isolate(
    failed: Sequence[str],
    trial: Callable[[tuple[str, ...]], Verdict],
    go_on: Callable[[], str | None],
) -> Isolation:
    """Find the guilty items among `failed`, whose bulk step failed verification and was
    restored. `trial(group)` runs one step with those items on top of what was kept so far;
    `go_on()` says why no further step may start (None: it may)."""
    search = _Search(trial, go_on)
    search.settle(tuple(failed), _Known.TRIED)
    return Isolation(
        tuple(search.kept), tuple(search.guilty), tuple(search.untried), search.stopped
    )


def affordable(
    time_left_s: float,
    step_s: float,
    step_requests: float,
    *,
    per_window: int,
    window_s: float,
    waiting: int = 0,
) -> str | None:
    """Why another step may not start (None: it may): before the run's timeout there must be
    time for a step as long as the longest so far (`step_s`), and for its requests at the key's
    rate after the `waiting` requests already queued for budget."""
    rate_s = (step_requests + waiting) / max(per_window, 1) * window_s
    needed_s = max(step_s, rate_s)
    if time_left_s < needed_s:
        return (
            f"the run's timeout is {max(time_left_s, 0.0):.0f}s away and a step needs about "
            f"{needed_s:.0f}s"
        )
    return None
