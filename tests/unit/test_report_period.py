"""A report's period, from fixed dates (never today): calendar months in the configuration's
zone, lengths up to now, the days and weeks the charts count by; and the branding's colours."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from scheduler.branding import colour_problem
from scheduler.errors import BadInputError
from scheduler.reporting import choose_period, month_period, since_period

NOW = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def test_a_month_is_its_calendar_month_in_the_zone() -> None:
    period = month_period("2026-11", BERLIN)
    assert period.start == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)  # CET: UTC+1
    assert period.end == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    assert period.label == "2026-11"
    assert period.days()[0] == date(2026, 11, 1) and period.days()[-1] == date(2026, 11, 30)
    assert len(period.days()) == 30


def test_a_month_across_a_clock_change_and_a_year_end() -> None:
    october = month_period("2026-10", BERLIN)  # summer time ends on 25 October
    assert october.start == datetime(2026, 9, 30, 22, 0, tzinfo=UTC)
    assert (october.end - october.start).total_seconds() == (31 * 24 + 1) * 3600
    december = month_period("2026-12", ZoneInfo("UTC"))
    assert december.end == datetime(2027, 1, 1, tzinfo=UTC)


def test_weeks_are_the_mondays_of_the_weeks_the_period_touches() -> None:
    period = month_period("2026-11", ZoneInfo("UTC"))  # Sunday 1st to Monday 30th
    assert period.weeks() == [
        date(2026, 10, 26),
        date(2026, 11, 2),
        date(2026, 11, 9),
        date(2026, 11, 16),
        date(2026, 11, 23),
        date(2026, 11, 30),
    ]


def test_since_is_a_length_up_to_now() -> None:
    period = since_period("30d", NOW, ZoneInfo("UTC"))
    assert (period.start, period.end) == (datetime(2026, 11, 4, 15, 30, tzinfo=UTC), NOW)
    assert since_period("2w", NOW, UTC).start == datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
    assert since_period("48h", NOW, UTC).start == datetime(2026, 12, 2, 15, 30, tzinfo=UTC)
    assert period.days()[0] == date(2026, 11, 4) and period.days()[-1] == date(2026, 12, 4)


@pytest.mark.parametrize("value", ["2026-13", "2026-00", "26-11", "2026/11", "november", "1969-12"])
def test_a_bad_month_is_refused(value: str) -> None:
    with pytest.raises(BadInputError, match="--month"):
        month_period(value, UTC)


@pytest.mark.parametrize("value", ["30", "0d", "30 days", "-1d", "1y", "99999d"])
def test_a_bad_since_is_refused(value: str) -> None:
    with pytest.raises(BadInputError, match="--since"):
        since_period(value, NOW, UTC)


@pytest.mark.parametrize(("since", "month"), [("30d", "2026-11"), (None, None)])
def test_exactly_one_of_since_and_month(since: str | None, month: str | None) -> None:
    with pytest.raises(BadInputError, match="exactly one of --since"):
        choose_period(since, month, NOW, UTC)


@pytest.mark.parametrize(
    "value", ["#0b7285", "#abc", "#0b7285cc", "teal", "RebeccaPurple", "rgb(0, 114, 178)",
              "hsla(200, 50%, 40%, 0.5)"]
)  # fmt: skip
def test_plain_colours_are_accepted(value: str) -> None:
    assert colour_problem(value) is None


@pytest.mark.parametrize(
    "value", ["red; } body { display: none", "#12", "url(x)", "var(--x)", "expression(1)", ""]
)
def test_anything_else_is_not_a_colour(value: str) -> None:
    assert colour_problem(value) is not None
