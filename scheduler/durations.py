"""Pure duration statistics: how long an operation took, and the typical duration of a kind of
operation (a high percentile of recent estimates). History (typical_durations) and the runner
(what this process has seen) both learn with these, so they agree. Also how many polls a kind of
operation typically costs (history's typical_polls, for `plan`).

Why the 97th percentile: the runner polls an operation first when it is typically done, so the
percentile is the share of operations one poll settles. Every further poll costs the same rate
budget as an action, and on a rate-bound night budget is the night's length; a poll that comes
a little late costs only that operation's pipeline a little time, which other targets' work
fills meanwhile. The estimates history keeps are bounded above by the poll that saw each
operation done, so they settle where about 3% of operations need a second poll."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from scheduler.domain import OperationState

MIN_DURATION_SAMPLES = 5  # fewer estimates than this tell nothing yet
PERCENTILE = 0.97


def operation_duration_s(
    started: datetime, finished: datetime, events: Sequence[Mapping[str, Any]] | None
) -> float | None:
    """An estimate of how long an operation really took, or None when history cannot tell.

    It ended after the last poll that saw it running (`low`) and by the first that saw it done
    (`high`). That poll may have waited for rate budget before it left; counting the wait would
    make each run poll later than the last, so the estimate is the moment the poll was ready to
    go (`high - waited`), never before `low`."""
    high = (finished - started).total_seconds()
    events = events or []
    done: Mapping[str, Any] = next(
        (e for e in events if e.get("state") == OperationState.SUCCEEDED.value), {}
    )
    if done.get("late"):
        return None  # seen done by recovery: it ended at some moment nobody watched
    running = [
        (datetime.fromisoformat(e["at"]) - started).total_seconds()
        for e in events
        if e.get("state") == OperationState.IN_PROGRESS.value
    ]
    ready = high - float(done.get("waited_s") or 0.0)
    estimate = max([ready, *running])
    return estimate if estimate > 0 else None


def typical(values: Iterable[float]) -> float:
    """The PERCENTILE (nearest rank below) of at least one value."""
    ordered = sorted(values)
    return ordered[int(PERCENTILE * (len(ordered) - 1))]


def typical_duration_s(estimates: Iterable[float | None]) -> float | None:
    """The typical duration of the known estimates, or None while fewer than
    MIN_DURATION_SAMPLES are known."""
    known = [e for e in estimates if e is not None]
    return typical(known) if len(known) >= MIN_DURATION_SAMPLES else None


def typical_polls(counts: Iterable[int]) -> float | None:
    """The mean number of polls of recent operations of a kind (what `plan` expects each to
    cost), or None while fewer than MIN_DURATION_SAMPLES are known."""
    known = list(counts)
    return sum(known) / len(known) if len(known) >= MIN_DURATION_SAMPLES else None
