"""Times for people on the dashboard (scheduler.web.times): ISO instants shown in jobs.yaml's
zone with its abbreviation across a DST change, ages and durations against a fixed now, and
operation ids shortened."""

from __future__ import annotations

from datetime import UTC, datetime

import jinja2
import pytest

from scheduler.web.times import (
    Times,
    filters,
    short_id,
    span_text,
    took,
    within_minutes,
    zone_of,
)

NOW = datetime(2026, 12, 4, 16, 17, 33, 850268, tzinfo=UTC)  # a Friday, CET (UTC+1)
AMSTERDAM = "Europe/Amsterdam"


def test_an_instant_is_shown_in_the_page_zone_without_seconds() -> None:
    times = Times.of(NOW, AMSTERDAM)
    assert times.short("2026-12-04T16:17:33.850268Z") == "Fri 4 Dec 17:17"
    assert times.abbreviation == "CET"
    assert Times.of(NOW, None).short(NOW) == "Fri 4 Dec 16:17"


def test_the_zone_abbreviation_follows_daylight_saving_time() -> None:
    times = Times.of(NOW, AMSTERDAM)
    # 2027-03-28: Amsterdam's clocks go from 02:00 CET to 03:00 CEST (01:00 UTC).
    assert times.short("2027-03-28T00:30:00Z", with_zone=True) == "Sun 28 Mar 2027 01:30 CET"
    assert times.short("2027-03-28T01:30:00Z", with_zone=True) == "Sun 28 Mar 2027 03:30 CEST"
    summer = Times.of(datetime(2026, 7, 1, 12, tzinfo=UTC), AMSTERDAM)
    assert summer.abbreviation == "CEST"


def test_another_zone_can_be_asked_for_and_an_unknown_one_is_utc() -> None:
    times = Times.of(NOW, AMSTERDAM)
    fire = "2026-12-06T02:00:00Z"
    assert times.short(fire, "America/New_York", with_zone=True) == "Sat 5 Dec 21:00 EST"
    assert zone_of("Mars/Olympus_Mons") is UTC and zone_of("") is UTC
    assert Times.of(NOW, "Nowhere/Land").short(fire, with_zone=True) == "Sun 6 Dec 02:00 UTC"


def test_a_time_tag_keeps_the_iso_text_and_nothing_is_a_dash() -> None:
    times = Times.of(NOW, AMSTERDAM)
    assert str(times.tag("2026-12-04T16:17:33.850268Z")) == (
        '<time datetime="2026-12-04T16:17:33.850268Z" '
        'title="2026-12-04T16:17:33.850268Z">Fri 4 Dec 17:17</time>'
    )
    assert str(times.tag(None)) == "—" and times.short(None) == "—"


@pytest.mark.parametrize(
    ("at", "text"),
    [
        ("2026-12-04T16:17:31Z", "just now"),
        ("2026-12-04T16:17:00Z", "34 s ago"),
        ("2026-12-04T16:14:30Z", "3 min ago"),
        ("2026-12-04T11:00:00Z", "5 h ago"),
        ("2026-12-01T16:00:00+00:00", "3 d ago"),
        ("2026-12-04T16:47:00Z", "in 29 min"),
        (None, ""),
    ],
)
def test_ages_are_counted_from_the_injected_now(at: str | None, text: str) -> None:
    assert Times.of(NOW, AMSTERDAM).ago(at) == text


def test_durations() -> None:
    assert took("2026-12-04T16:17:00Z", "2026-12-04T16:17:16.4Z") == "16 s"
    assert took("2026-12-04T16:17:00Z", "2026-12-04T16:19:05Z") == "2 min 5 s"
    assert took("2026-12-04T15:00:00Z", "2026-12-04T16:03:00Z") == "1 h 3 min"
    assert (span_text(7200), span_text(90061, coarse=True)) == ("2 h", "1 d")
    assert took(None, "2026-12-04T16:17:00Z") == ""


def test_operation_ids_are_shortened_to_their_kind_and_the_uuids_head() -> None:
    long = "backups:add-manual-c7c1b27e-5b93-4fea-b49b-ac7b7e1a49e1"
    assert short_id(long) == "backups:add-manual-c7c1b27e…"
    assert short_id("backup:e1-0") == "backup:e1-0"
    assert short_id("x" * 40) == "x" * 27 + "…"


def test_the_filters_read_the_pages_times() -> None:
    env = jinja2.Environment(autoescape=True)
    env.filters.update(filters())
    template = env.from_string(
        "{{ at | when }} {{ at | ago }} {{ at | clock }} {{ at | took(end) }}"
    )
    text = template.render(
        at="2026-12-04T16:14:30Z", end="2026-12-04T16:15:00Z", times=Times.of(NOW, AMSTERDAM)
    )
    assert text == (
        '<time datetime="2026-12-04T16:14:30Z" title="2026-12-04T16:14:30Z">Fri 4 Dec 17:14</time>'
        ' 3 min ago <time datetime="2026-12-04T16:14:30Z" title="2026-12-04T16:14:30Z">17:14:30'
        "</time> 30 s"
    )


def test_seconds_are_shown_when_fire_times_share_a_minute() -> None:
    fires = ["2026-12-04T16:41:12Z", "2026-12-04T16:41:15Z"]
    assert within_minutes(fires) and not within_minutes(["2026-12-04T16:41:12Z"])
    times = Times.of(NOW, AMSTERDAM)
    assert times.short(fires[1], with_zone=True, seconds=True) == "Fri 4 Dec 17:41:15 CET"
