"""Times for people on the dashboard's pages, pure: history's ISO instants (UTC) shown in
jobs.yaml's `timezone` ("Fri 4 Dec 17:17"), how long ago they were ("3 min ago") and how long a
run took ("16 s"), all against one `now` that the page reads once from the daemon's clock. The
JSON twins keep the ISO text; the HTML keeps it too, in each `<time>`'s datetime and title."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from jinja2.runtime import Context
from markupsafe import Markup, escape

Moment = str | datetime | None
NOTHING = "—"


def zone_of(name: str | None) -> tzinfo:
    """The zone called `name`; UTC when there is none or it is unknown."""
    if not name or name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def instant(value: Moment) -> datetime | None:
    """An aware datetime from history's ISO text ("...Z" or "+00:00") or a datetime."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _iso(value: Moment) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return value or ""


@dataclass
class Times:
    """One page's way of showing times: its `now` and its zone."""

    now: datetime
    zone: tzinfo = UTC
    _short: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, now: datetime, zone: str | None) -> Times:
        return cls(now, zone_of(zone))

    @property
    def abbreviation(self) -> str:
        """The zone's name as its clocks show it now ("CET", "CEST", "UTC")."""
        return self.now.astimezone(self.zone).tzname() or str(self.zone)

    def short(
        self,
        value: Moment,
        zone: str | None = None,
        *,
        with_zone: bool = False,
        seconds: bool = False,
    ) -> str:
        """The instant as "Fri 4 Dec 17:17" in the page's zone (or `zone`), the year added when
        it is not this year's, the seconds with `seconds`, the zone's abbreviation after it with
        `with_zone`; "—" for nothing."""
        # A fleet page shows thousands of times: each text is worked out once per page.
        key = (_iso(value), f"{zone}:{with_zone}:{seconds}")
        found = self._short.get(key)
        if found is None:
            found = self._short[key] = self._format(value, zone, with_zone, seconds)
        return found

    def _format(self, value: Moment, zone: str | None, with_zone: bool, seconds: bool) -> str:
        moment = instant(value)
        if moment is None:
            return NOTHING
        local = moment.astimezone(zone_of(zone) if zone else self.zone)
        text = f"{local:%a} {local.day} {local:%b}"
        if local.year != self.now.astimezone(local.tzinfo).year:
            text += f" {local.year}"
        text += f" {local:%H:%M:%S}" if seconds else f" {local:%H:%M}"
        return f"{text} {local.tzname()}" if with_zone else text

    def tag(
        self,
        value: Moment,
        zone: str | None = None,
        *,
        with_zone: bool = False,
        seconds: bool = False,
    ) -> Markup:
        """`<time datetime="ISO" title="ISO">Fri 4 Dec 17:17</time>`; "—" for nothing."""
        if instant(value) is None:
            return escape(NOTHING)
        return _tag(_iso(value), self.short(value, zone, with_zone=with_zone, seconds=seconds))

    def ago(self, value: Moment) -> str:
        """How long before now ("just now", "42 s ago", "3 min ago", "5 h ago", "2 d ago"),
        or after it ("in 3 min"); "" for nothing."""
        moment = instant(value)
        if moment is None:
            return ""
        seconds = (self.now - moment).total_seconds()
        if abs(seconds) < 5:
            return "just now"
        span = span_text(abs(seconds), coarse=True)
        return f"{span} ago" if seconds > 0 else f"in {span}"


UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def span_text(seconds: float, *, coarse: bool = False) -> str:
    """A length of time: "16 s", "2 min 5 s", "1 h 3 min", "2 d 4 h"; `coarse` keeps only the
    largest unit ("2 min", "1 h", "2 d")."""
    whole = round(seconds)
    for index, (name, size) in enumerate(UNITS[:-1]):
        if whole >= size:
            first = f"{whole // size} {name}"
            smaller, small_size = UNITS[index + 1]
            rest = whole % size // small_size
            return first if coarse or not rest else f"{first} {rest} {smaller}"
    return f"{whole} s"


def within_minutes(values: list[str]) -> bool:
    """Whether two of these ISO instants (UTC) fall in one minute, so that showing them
    without seconds would show the same text twice."""
    minutes = [value[:16] for value in values]
    return len(set(minutes)) < len(minutes)


def took(start: Moment, end: Moment) -> str:
    """How long from `start` to `end` ("16 s"); "" when either is missing."""
    first, last = instant(start), instant(end)
    if first is None or last is None:
        return ""
    return span_text(max((last - first).total_seconds(), 0.0))


OPERATION_ID = re.compile(r"^(?P<kind>.*?)(?P<head>[0-9a-f]{8})(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}$")
ID_WIDTH = 28


def short_id(operation_id: str) -> str:
    """An operation's id for a table: its kind and the first 8 characters of its UUID
    ("backups:add-manual-c7c1b27e…"), or the id cut to ID_WIDTH when it has no UUID."""
    found = OPERATION_ID.match(operation_id)
    if found:
        return f"{found['kind']}{found['head']}…"
    return operation_id if len(operation_id) <= ID_WIDTH else operation_id[: ID_WIDTH - 1] + "…"


def clock(times: Times, value: Moment) -> Markup:
    """The time of day with seconds ("17:35:43") in the page's zone, the ISO text in the title."""
    moment = instant(value)
    if moment is None:
        return escape(NOTHING)
    return _tag(_iso(value), f"{moment.astimezone(times.zone):%H:%M:%S}")


def _tag(iso: str, text: str) -> Markup:
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(iso, text)


def filters() -> dict[str, Callable[..., Any]]:
    """The templates' filters; each page's context holds its `times` (Times)."""

    @jinja2.pass_context
    def when(
        context: Context,
        value: Moment,
        zone: str | None = None,
        with_zone: bool = False,
        seconds: bool = False,
    ) -> Markup:
        return cast(Times, context["times"]).tag(value, zone, with_zone=with_zone, seconds=seconds)

    @jinja2.pass_context
    def ago(context: Context, value: Moment) -> str:
        return cast(Times, context["times"]).ago(value)

    @jinja2.pass_context
    def time_of_day(context: Context, value: Moment) -> Markup:
        return clock(cast(Times, context["times"]), value)

    return {"when": when, "ago": ago, "clock": time_of_day, "took": took, "short_id": short_id}
