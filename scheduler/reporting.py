"""What a client report covers and reads: its period (pure arithmetic on dates, in the
configuration's zone) and the `ReportReads` port, a handful of set-based reads for every site of
the report at once (SQL in scheduler.history.reports, memory in scheduler.history.memory.reports).
The report itself is assembled in scheduler.reports."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Protocol

from scheduler.domain import InventorySnapshot, TaskStatus
from scheduler.errors import BadInputError

MONTH = re.compile(r"^(\d{4})-(\d{2})$")
SINCE = re.compile(r"^(\d+)\s*(h|d|w)$")
MAX_SINCE_DAYS = 3660  # ten years: a longer report is a typo
RATE_LIMITED = "rate_limited"  # the governor event of a 429


@dataclass(frozen=True)
class Period:
    """[start, end): aware datetimes; `label` names it ("2026-11", "30 days to 2026-12-04")."""

    start: datetime
    end: datetime
    label: str
    zone: tzinfo

    def days(self) -> list[date]:
        """Each local day the period touches, oldest first."""
        first, last = self.start.astimezone(self.zone).date(), self._last_day()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]

    def weeks(self) -> list[date]:
        """The Monday of each week (ISO, local) the period touches, oldest first."""
        return sorted({monday(day) for day in self.days()})

    def local_day(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def _last_day(self) -> date:
        return (self.end - timedelta(microseconds=1)).astimezone(self.zone).date()


def monday(day: date) -> date:
    """The Monday of `day`'s week (ISO weeks)."""
    return day - timedelta(days=day.weekday())


def month_period(value: str, zone: tzinfo) -> Period:
    """`--month 2026-11`: that calendar month in `zone`."""
    found = MONTH.match(value.strip())
    if found is None or not 1 <= int(found[2]) <= 12 or int(found[1]) < 1970:
        raise BadInputError(f"--month {value!r}: give a month as YYYY-MM, such as 2026-11")
    year, month = int(found[1]), int(found[2])
    if year >= 9999:
        raise BadInputError(f"--month {value!r} is out of range")
    following = (year + month // 12, month % 12 + 1)
    start = datetime.combine(date(year, month, 1), time(), zone)
    end = datetime.combine(date(*following, 1), time(), zone)
    return Period(start.astimezone(UTC), end.astimezone(UTC), f"{year:04d}-{month:02d}", zone)


def since_period(value: str, now: datetime, zone: tzinfo) -> Period:
    """`--since 30d` (h, d or w): that long up to `now`."""
    found = SINCE.match(value.strip())
    if found is None:
        raise BadInputError(f"--since {value!r}: give a length such as 30d, 2w or 48h")
    hours = int(found[1]) * {"h": 1, "d": 24, "w": 168}[found[2]]
    if not 0 < hours <= MAX_SINCE_DAYS * 24:
        raise BadInputError(f"--since {value!r}: give from 1h to {MAX_SINCE_DAYS}d")
    end = now.astimezone(UTC)
    label = f"last {found[1]}{found[2]}"
    return Period(end - timedelta(hours=hours), end, label, zone)


def choose_period(since: str | None, month: str | None, now: datetime, zone: tzinfo) -> Period:
    """Exactly one of --since and --month."""
    if (since is None) == (month is None):
        raise BadInputError("give exactly one of --since (such as 30d) and --month (YYYY-MM)")
    if month is not None:
        return month_period(month, zone)
    assert since is not None
    return since_period(since, now, zone)


ENDED = frozenset(
    {
        TaskStatus.SUCCEEDED,
        TaskStatus.FAILED,
        TaskStatus.SKIPPED,
        TaskStatus.ROLLED_BACK,
        TaskStatus.INTERRUPTED,
    }
)


@dataclass(frozen=True)
class PeriodTask:
    """A task that ended, of a run scheduled in the period: what a report reads of it."""

    task_id: int
    run_id: int
    job_id: str
    site: str
    environment: str
    action: str
    status: TaskStatus
    at: datetime  # when it finished (else started, else its run's slot)
    message: str | None
    versions_before: Mapping[str, Any] | None
    versions_after: Mapping[str, Any] | None
    result: Mapping[str, Any] | None
    operations: int  # Kinsta operations it started


@dataclass(frozen=True)
class InventoryEdge:
    """An environment's snapshots at the period's edges: `first` the newest taken at or before
    its start (else the oldest inside it), `last` the newest taken before its end."""

    site: str
    environment: str
    first: InventorySnapshot
    last: InventorySnapshot


class ReportReads(Protocol):
    """The reads of a client report: each one query (or a few) for every site at once."""

    def period_tasks(
        self, since: datetime, until: datetime, sites: Collection[str] | None = None
    ) -> list[PeriodTask]:
        """The ended tasks of runs scheduled in [since, until), of `sites` (None: every
        site), oldest first (by `at`, then id)."""

    def inventory_edges(
        self, since: datetime, until: datetime, sites: Collection[str] | None = None
    ) -> list[InventoryEdge]:
        """Each environment's snapshots at the edges of [since, until) (see InventoryEdge),
        for environments with a snapshot before `until`; by site and environment."""

    def known_sites(self) -> set[str]:
        """Every site history has a task outcome or an inventory snapshot of."""

    def requests_by_hour(
        self, since: datetime, until: datetime, scopes: Collection[str] | None = None
    ) -> dict[datetime, int]:
        """Requests sent to Kinsta per hour of [since, until) that had any, by the hour's start
        (UTC), from the requests per minute the governors record; of the keys whose
        fingerprints are `scopes` (None: every key)."""

    def rate_limited_by_minute(
        self, since: datetime, until: datetime, scopes: Collection[str] | None = None
    ) -> dict[datetime, int]:
        """Kinsta's 429s (the governors' `rate_limited` events) per minute of [since, until)
        that had any, by the minute's start (UTC); every one in the window, however many; of
        the keys whose fingerprints are `scopes` (None: every key)."""
