"""`blackouts:` of jobs.yaml, at the top (every job) and per job -> blackout values
(scheduler.blackouts). Each blackout is checked on its own, and every problem is named with its
file, line, job and field.

    - {name: Black Friday, from: "2026-11-27 00:00", to: "2026-12-01 23:59", timezone: ...}
    - "2026-12-24 to 2026-12-26, Christmas"          # the same, on one line
    - {name: business hours, cron: "0 9 * * 1-5", duration: 8h, timezone: ...}

`to` is included to the end of what it names: the minute (23:59 ends at midnight), the second,
or the whole day for a date alone. Without `timezone` a blackout is read in the zone its owner
gives (the job's cron zone, else the file's `timezone`).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scheduler import schedules
from scheduler.blackouts import Blackout, FixedBlackout, RecurringBlackout
from scheduler.config.problems import Problems, validation_messages
from scheduler.values import Duration, parse_positive_duration

MAX_WINDOW_S = 366 * 86_400.0  # a recurring window longer than a year is a fixed range
_WALL = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2})(:\d{2})?)?$")
_SHORT = re.compile(r"^(?P<start>.+?)\s+to\s+(?P<to>[^,]+?)\s*(?:,\s*(?P<name>.*?))?\s*$")
SHAPE = (
    "a blackout is {from, to} (a fixed range), {cron, duration} (a recurring window), or "
    "'FROM to TO, NAME'"
)


class BlackoutModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(None, min_length=1, max_length=200)
    start: str | None = Field(None, alias="from")
    to: str | None = None
    cron: str | None = None
    duration: Duration | None = None
    timezone: str | None = None


class _Wrong(ValueError):
    """A problem with one field of a blackout (`field`: () for the blackout as a whole)."""

    def __init__(self, field: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.field = field


def blackouts_of(
    raw: Any, at: tuple[str | int, ...], zone: str, problems: Problems
) -> tuple[Blackout, ...]:
    """The blackouts listed at `at` (a list; anything else the file's model reports)."""
    if not isinstance(raw, list):
        return ()
    found: list[Blackout] = []
    for index, written in enumerate(raw):
        path = (*at, index)
        item = _shorthand(written) if isinstance(written, str) else written
        if not isinstance(item, dict):
            problems.add(path, SHAPE)
            continue
        try:
            model = BlackoutModel.model_validate(item)
            found.append(_blackout(model, zone))
        except ValidationError as exc:
            for loc, message in validation_messages(exc):
                problems.add((*path, *loc), message)
        except _Wrong as exc:
            problems.add((*path, *exc.field), str(exc))
    return tuple(found)


def _shorthand(text: str) -> dict[str, str] | None:
    """'2026-11-27 00:00 to 2026-12-01 23:59, Black Friday' as a mapping."""
    match = _SHORT.match(text.strip())
    if match is None:
        return None
    named = {"name": match["name"]} if match["name"] else {}
    return {"from": match["start"], "to": match["to"], **named}


def _blackout(raw: BlackoutModel, zone: str) -> Blackout:
    fixed = raw.start is not None or raw.to is not None
    recurring = raw.cron is not None or raw.duration is not None
    if fixed == recurring:
        raise _Wrong((), SHAPE)
    if raw.timezone is not None:
        zone = _zone(raw.timezone)
    return _fixed(raw, zone) if fixed else _recurring(raw, zone)


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _Wrong(("timezone",), f"unknown time zone {name[:60]!r}") from exc
    return name


def _fixed(raw: BlackoutModel, zone: str) -> FixedBlackout:
    if raw.start is None or raw.to is None:
        missing = "from" if raw.start is None else "to"
        raise _Wrong((missing,), "a fixed range needs both from and to")
    start, _ = _wall(raw.start, "from")
    last, step = _wall(raw.to, "to")
    tz = ZoneInfo(zone)
    try:
        begins = schedules.resolve_wall_time(start, tz)
        end = schedules.resolve_wall_time(last + step, tz)
    except OverflowError as exc:
        raise _Wrong((), "is out of range (the years 2 to 9998)") from exc
    if end <= begins:
        raise _Wrong(("to",), f"ends before it starts ({raw.start} to {raw.to})")
    name = raw.name or f"{raw.start} to {raw.to}"
    return FixedBlackout(name, begins, end, zone)


def _wall(text: str, field: str) -> tuple[datetime, timedelta]:
    """A wall time as written, and how much of time it names (a day, a minute, a second)."""
    match = _WALL.match(text.strip())
    try:
        if match is None:
            raise ValueError(text)
        wall = datetime.fromisoformat(match[0].replace("T", " ")).replace(tzinfo=None)
    except ValueError as exc:
        raise _Wrong(
            (field,),
            f"{text[:40]!r} is not a date (2026-11-27) or a wall time (2026-11-27 00:00) "
            "without an offset: timezone says where it is",
        ) from exc
    if match[2] is None:
        return wall, timedelta(days=1)
    return wall, timedelta(seconds=1 if match[3] else 60)


def _recurring(raw: BlackoutModel, zone: str) -> RecurringBlackout:
    if raw.cron is None or raw.duration is None:
        missing = "cron" if raw.cron is None else "duration"
        raise _Wrong((missing,), "a recurring window needs both cron and duration")
    try:
        fires = schedules.cron_fires(raw.cron)
    except ValueError as exc:
        raise _Wrong(("cron",), f"invalid cron expression {raw.cron[:100]!r}: {exc}") from exc
    if not fires:
        raise _Wrong(("cron",), f"cron expression {raw.cron!r} never fires (no such date)")
    try:
        seconds = parse_positive_duration(raw.duration)
    except ValueError as exc:
        raise _Wrong(("duration",), str(exc)) from exc
    if seconds > MAX_WINDOW_S:
        raise _Wrong(("duration",), "a window lasts at most 366d: use from and to for longer")
    name = raw.name or f"{raw.cron} for {raw.duration}"
    return RecurringBlackout(name, raw.cron, seconds, zone)
