"""Rollouts and the circuit breaker, as pure decisions: which targets lead, how they split into
waves, and when a run must halt.

Order: the canary first (the sites named, or labelled, or the first N or N% of the order below),
then every other target by a stable hash of its site and environment names: the same sites lead
every night, and an agency's sites named after one client (client-a-shop, client-a-blog...) are
spread over the waves instead of sharing one, as they would in name order. Waves are cumulative
shares of all the targets: `waves: [10%, 50%, 100%]` after a canary of 3 out of 100 targets
makes waves of 3, 7, 40 and 50.

The breaker counts the targets done so far: `halt_after: {rolled_back: 2, failed: 10%}` trips
when two were rolled back, or when a tenth of those done failed (a share needs a few targets
done before it means anything: MIN_DONE_FOR_SHARE)."""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from scheduler.domain import Target
from scheduler.rollout import HaltAfter, Rollout, Share

MIN_DONE_FOR_SHARE = 3  # a share of the targets done trips only once this many are done


def rank(target: Target) -> str:
    """A target's place in the order: stable across nights and processes."""
    return hashlib.sha256(f"{target.site_name}/{target.environment_name}".encode()).hexdigest()


def in_canary(target: Target, rollout: Rollout) -> bool:
    """Whether the rollout names `target` in its canary (by site or label)."""
    if rollout.canary_sites:
        return any(fnmatch.fnmatchcase(target.site_name, p) for p in rollout.canary_sites)
    return bool(set(rollout.canary_labels) & set(target.labels))


def waves(targets: Sequence[Target], rollout: Rollout) -> list[list[Target]]:
    """The targets in waves, in order (the canary first, when the rollout has one); no empty
    wave."""
    ordered = sorted(targets, key=rank)
    canary: list[Target] = []
    if rollout.canary_sites or rollout.canary_labels:
        canary = [t for t in ordered if in_canary(t, rollout)]
        ordered = [t for t in ordered if not in_canary(t, rollout)]
    elif rollout.canary is not None:
        size = max(1, rollout.canary.of(len(ordered)))
        canary, ordered = ordered[:size], ordered[size:]
    total = len(targets)
    result = [canary] if canary else []
    done = len(canary)
    for share in rollout.waves:
        upto = max(done, share.of(total))
        if upto > done:
            result.append(ordered[done - len(canary) : upto - len(canary)])
            done = upto
    if done < total:  # a last wave of 100% is implied
        result.append(ordered[done - len(canary) :])
    return result


def wave_names(groups: Sequence[Sequence[Target]], rollout: Rollout) -> list[str]:
    """What history calls each of `waves`' groups: "canary", then "wave 1 of 2" and so on."""
    if rollout.canary_sites or rollout.canary_labels:
        canary = bool(groups) and in_canary(groups[0][0], rollout)
    else:
        canary = rollout.canary is not None and bool(groups)
    count = len(groups) - canary
    names = ["canary"] if canary else []
    return names + [f"wave {n} of {count}" for n in range(1, count + 1)]


@dataclass(frozen=True)
class Tally:
    """Targets done so far in a run, and how many of them were rolled back, or failed
    otherwise (a target with a rolled-back task counts as rolled back only)."""

    done: int = 0
    rolled_back: int = 0
    failed: int = 0


def _over(limit: Share | None, count: int, done: int) -> bool:
    if limit is None or count == 0:
        return False
    if limit.percent is not None:
        return done >= MIN_DONE_FOR_SHARE and count * 100 >= limit.percent * done
    return count >= (limit.count or 0)


def tripped(halt_after: HaltAfter | None, tally: Tally) -> str | None:
    """Why the breaker trips now (for the run's error and the notification), or None."""
    if halt_after is None:
        return None
    reasons = []
    if _over(halt_after.rolled_back, tally.rolled_back, tally.done):
        reasons.append(
            f"{tally.rolled_back} of {tally.done} target(s) done were rolled back "
            f"(halt_after.rolled_back: {halt_after.rolled_back})"
        )
    if _over(halt_after.failed, tally.failed, tally.done):
        reasons.append(
            f"{tally.failed} of {tally.done} target(s) done failed "
            f"(halt_after.failed: {halt_after.failed})"
        )
    return "; ".join(reasons) or None
