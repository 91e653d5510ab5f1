"""Why a slot is held (scheduler.pauses): blackout windows in real zones across daylight-saving
changes, the order of the reasons, and `pause --until`. Fixed dates only."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.blackouts import FixedBlackout, RecurringBlackout
from scheduler.domain import ActionSpec, Job, TargetSelector
from scheduler.pauses import DISABLED, JobPause, blackout_at, held_because, pause_until

AMSTERDAM = "Europe/Amsterdam"
NEW_YORK = "America/New_York"


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def window(cron: str, hours: float, zone: str = AMSTERDAM) -> RecurringBlackout:
    return RecurringBlackout("w", cron, hours * 3600, zone)


def inside(blackout: RecurringBlackout | FixedBlackout, moment: datetime) -> bool:
    return blackout_at([blackout], moment) is blackout


def test_business_hours_on_the_wall_clock_of_their_zone() -> None:
    hours = window("0 9 * * 1-5", 8)  # Friday 2026-11-27 is CET (UTC+1)
    assert not inside(hours, at(2026, 11, 27, 7, 59, 59))
    assert inside(hours, at(2026, 11, 27, 8, 0))  # 09:00 CET
    assert inside(hours, at(2026, 11, 27, 15, 59, 59))
    assert not inside(hours, at(2026, 11, 27, 16, 0))  # 17:00: closed
    assert not inside(hours, at(2026, 11, 28, 10, 0))  # Saturday
    assert inside(hours, at(2026, 7, 3, 7, 0))  # a Friday in summer: 09:00 CEST


def test_a_window_whose_opening_does_not_exist_opens_when_the_clocks_go_forward() -> None:
    night = window("30 2 * * *", 1)  # 2027-03-28: 02:00 CET becomes 03:00 CEST (01:00Z)
    assert not inside(night, at(2027, 3, 28, 0, 59, 59))
    assert inside(night, at(2027, 3, 28, 1, 0))
    assert inside(night, at(2027, 3, 28, 1, 59, 59))
    assert not inside(night, at(2027, 3, 28, 2, 0))  # an hour of elapsed time


def test_a_window_whose_opening_happens_twice_opens_once_at_the_first() -> None:
    night = window("30 2 * * *", 1)  # 2026-10-25: 02:30 CEST (00:30Z), then 02:30 CET (01:30Z)
    assert not inside(night, at(2026, 10, 25, 0, 29))
    assert inside(night, at(2026, 10, 25, 0, 30))
    assert inside(night, at(2026, 10, 25, 1, 29, 59))
    assert not inside(night, at(2026, 10, 25, 1, 30))  # the second 02:30 opens nothing
    late = window("30 1 * * *", 2, NEW_YORK)  # 2026-11-01: 01:30 EDT (05:30Z) and EST (06:30Z)
    assert inside(late, at(2026, 11, 1, 7, 29)) and not inside(late, at(2026, 11, 1, 7, 30))


def test_a_window_longer_than_its_cycle_is_always_open() -> None:
    always = window("0 * * * *", 2)
    assert all(inside(always, at(2026, 11, 27, h, m)) for h in range(24) for m in (0, 30, 59))


def test_a_fixed_range_includes_its_start_and_excludes_its_end() -> None:
    friday = FixedBlackout("Black Friday", at(2026, 11, 27, 5), at(2026, 12, 2, 5), NEW_YORK)
    assert blackout_at([friday], at(2026, 11, 27, 4, 59, 59)) is None
    assert blackout_at([friday], at(2026, 11, 27, 5)) is friday
    assert blackout_at([friday], at(2026, 12, 2, 4, 59, 59)) is friday
    assert blackout_at([friday], at(2026, 12, 2, 5)) is None


def test_the_first_blackout_that_holds_is_named() -> None:
    fixed = FixedBlackout("freeze", at(2026, 11, 27), at(2026, 11, 28), "UTC")
    hours = window("0 9 * * 1-5", 8)
    assert blackout_at([fixed, hours], at(2026, 11, 27, 9)) is fixed
    assert blackout_at([hours, fixed], at(2026, 11, 27, 9)) is hours
    assert blackout_at([fixed, hours], at(2026, 11, 30, 9)) is hours
    assert blackout_at([], at(2026, 11, 30, 9)) is None


JOB = Job("nightly", None, TargetSelector(), (ActionSpec("clear_cache"),))
SLOT = at(2026, 11, 27, 3)
NOW = SLOT + timedelta(seconds=2)
FREEZE = FixedBlackout("Black Friday", at(2026, 11, 27), at(2026, 12, 2), "UTC")
OWN = FixedBlackout("own freeze", at(2026, 11, 26), at(2026, 11, 28), "UTC")


def test_a_job_runs_unless_something_holds_it() -> None:
    assert held_because(JOB, [], SLOT, NOW, None) is None
    assert held_because(JOB, [FREEZE], SLOT, NOW, None) == "blackout: Black Friday"
    mine = replace(JOB, blackouts=(OWN,))
    assert held_because(mine, [FREEZE], SLOT, NOW, None) == "blackout: own freeze"


def test_disabled_then_paused_then_blackout() -> None:
    paused = JobPause("nightly", at(2026, 11, 26, 9), "ops@bastion", SLOT + timedelta(hours=1), "x")
    assert held_because(replace(JOB, enabled=False), [FREEZE], SLOT, NOW, paused) == DISABLED
    assert held_because(JOB, [FREEZE], SLOT, NOW, paused) == paused.why()
    expired = replace(paused, until=NOW)  # a pause ends at its `until`
    assert held_because(JOB, [FREEZE], SLOT, NOW, expired) == "blackout: Black Friday"
    assert held_because(JOB, [], SLOT, NOW, expired) is None


def test_a_pause_says_who_when_until_and_why() -> None:
    paused = JobPause("nightly", at(2026, 11, 26, 9, 0, 0), "ops@bastion", None, None)
    assert paused.why() == "paused by ops@bastion at 2026-11-26T09:00:00Z"
    assert paused.active(at(9999, 1, 1))
    timed = replace(paused, until=at(2026, 11, 28), reason="deploy freeze")
    assert timed.why() == (
        "paused by ops@bastion at 2026-11-26T09:00:00Z until 2026-11-28T00:00:00Z: deploy freeze"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", NOW + timedelta(hours=2)),
        ("90m", NOW + timedelta(minutes=90)),
        ("3d", NOW + timedelta(days=3)),
        ("2026-12-01T08:00+01:00", at(2026, 12, 1, 7)),
        ("2026-12-01 08:00Z", at(2026, 12, 1, 8)),
    ],
)
def test_until_is_a_duration_from_now_or_a_time(text: str, expected: datetime) -> None:
    assert pause_until(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "2026-11-01T00:00Z",
            "is in the past (2026-11-01T00:00:00Z; it is now 2026-11-27T03:00:02Z)",
        ),
        ("0s", "is in the past"),
        ("tomorrow", "cannot read 'tomorrow': give a duration such as 2h"),
        ("36501d", "at most 36500d"),
    ],
)
def test_until_in_the_past_or_unreadable_is_refused(text: str, words: str) -> None:
    with pytest.raises(ValueError) as caught:
        pause_until(text, NOW)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    "text",
    ["", " ", "-1d", "1y", "²d", "٣d", "now", "2026-13-01", "0001-01-01", "2026-W01",
     "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "1" * 5000 + "d", "\u202e7d"],
)  # fmt: skip
def test_hostile_until_is_a_value_error_never_another_exception(text: str) -> None:
    with pytest.raises(ValueError):
        pause_until(text, NOW)
