"""Blackouts as values: windows in which no slot of a job runs (a freeze over Black Friday,
business hours). jobs.yaml declares them at the top (every job) and per job
(scheduler.config.blackouts); whether an instant lies in one is decided in scheduler.pauses.

A fixed range is written as wall times in its zone and kept as the instants they stand for
(by the daylight-saving rule of scheduler.schedules: a wall time in a gap is the first instant
after it, one in a fold its first occurrence). A recurring window opens at each match of a cron
expression on the wall clock of its zone and stays open for its duration of elapsed time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class FixedBlackout:
    """From `start` (included) to `end` (excluded), both aware and in UTC."""

    name: str
    start: datetime
    end: datetime
    timezone: str  # the zone the range was written in


@dataclass(frozen=True)
class RecurringBlackout:
    """Open from each match of `cron` in `timezone` for `duration_s` seconds."""

    name: str
    cron: str
    duration_s: float
    timezone: str


Blackout = FixedBlackout | RecurringBlackout
