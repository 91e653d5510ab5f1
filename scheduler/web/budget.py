"""The budget page's view logic, pure: requests per minute of each company, minute by minute
(a minute with none is 0), against the limit per minute."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from scheduler.httpd import number

MAX_HOURS = 48


@dataclass(frozen=True)
class Usage:
    company: str
    labels: list[str]  # "HH:MM" in the page's zone, oldest first
    values: list[int]
    total: int
    peak: int


def hours_from(query: Mapping[str, str], default: int = 6) -> int:
    hours = number(query.get("hours"))
    return min(hours, MAX_HOURS) if hours else default


def usage(
    minutes: Sequence[Mapping[str, Any]],
    companies: Mapping[str, str],
    now: datetime,
    hours: int,
    zone: tzinfo = UTC,
) -> list[Usage]:
    """Per company (`companies`: scope -> company name; an unknown scope shows as itself), one
        value per minute of the last `hours`, from `history requests --format json`'s rows; the
    minutes are labelled in `zone`."""
    first = now.replace(second=0, microsecond=0) - timedelta(hours=hours) + timedelta(minutes=1)
    slots = [first + timedelta(minutes=i) for i in range(hours * 60)]
    index = {slot: i for i, slot in enumerate(slots)}
    series: dict[str, list[int]] = {name: [0] * len(slots) for name in companies.values()}
    for row in minutes:
        at = datetime.fromisoformat(row["minute"])
        name = companies.get(row["scope"], row["scope"])
        values = series.setdefault(name, [0] * len(slots))
        if at in index:
            values[index[at]] += row["requests"]
    labels = [slot.astimezone(zone).strftime("%H:%M") for slot in slots]
    return [
        Usage(name, labels, values, sum(values), max(values, default=0))
        for name, values in sorted(series.items())
    ]
