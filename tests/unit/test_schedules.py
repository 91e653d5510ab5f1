"""Fire times across real DST transitions, crontab weekday rules and anchored intervals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scheduler.domain import CronSchedule, IntervalSchedule
from scheduler.schedules import expand_day_of_week, latest_slot, next_fire_after, upcoming


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_fall_back_fold_runs_once_at_first_occurrence_amsterdam() -> None:
    schedule = CronSchedule("30 2 * * *", "Europe/Amsterdam")
    assert upcoming(schedule, utc(2026, 10, 24, 12), 3) == [
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST, the first of the two 02:30s
        utc(2026, 10, 26, 1, 30),
        utc(2026, 10, 27, 1, 30),
    ]


def test_fall_back_fold_runs_once_new_york() -> None:
    schedule = CronSchedule("30 1 * * *", "America/New_York")
    assert upcoming(schedule, utc(2026, 10, 31, 12), 2) == [
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 2, 6, 30),
    ]


def test_fold_does_not_repeat_sub_hourly_slots() -> None:
    schedule = CronSchedule("*/30 * * * *", "Europe/Amsterdam")
    times = upcoming(schedule, utc(2026, 10, 24, 23, 40), 4)
    assert times == [
        utc(2026, 10, 25, 0, 0),
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 2, 0),
        utc(2026, 10, 25, 2, 30),
    ]


def test_spring_forward_gap_runs_at_first_valid_instant_after() -> None:
    schedule = CronSchedule("30 2 * * *", "Europe/Amsterdam")
    # 02:30 does not exist on 2027-03-28; clocks jump from 02:00 CET to 03:00 CEST (01:00Z).
    assert upcoming(schedule, utc(2027, 3, 27, 12), 2) == [
        utc(2027, 3, 28, 1, 0),
        utc(2027, 3, 29, 0, 30),
    ]


def test_several_gap_times_coalesce_into_one_run() -> None:
    schedule = CronSchedule("*/20 2 * * *", "Europe/Amsterdam")
    assert upcoming(schedule, utc(2027, 3, 28, 0), 2) == [
        utc(2027, 3, 28, 1, 0),
        utc(2027, 3, 29, 0, 0),
    ]


def test_half_hour_shift_zone_gap() -> None:
    schedule = CronSchedule("15 2 * * *", "Australia/Lord_Howe")
    assert next_fire_after(schedule, utc(2026, 10, 3, 0)) == utc(2026, 10, 3, 15, 30)  # 02:30 local


@pytest.mark.parametrize("weekday", ["0", "7", "sun"])
def test_sunday_is_zero_and_seven(weekday: str) -> None:
    schedule = CronSchedule(f"0 3 * * {weekday}", "UTC")
    fired = next_fire_after(schedule, utc(2026, 11, 24))
    assert fired == utc(2026, 11, 29, 3) and fired.weekday() == 6


def test_day_of_week_ranges_starting_on_sunday() -> None:
    assert expand_day_of_week("0-2") == [0, 1, 2]
    assert expand_day_of_week("5-7") == [0, 5, 6]
    assert expand_day_of_week("*/2") == [0, 2, 4, 6]
    assert expand_day_of_week("mon-fri") == [1, 2, 3, 4, 5]


def test_day_of_month_or_day_of_week_as_crontab() -> None:
    schedule = CronSchedule("0 0 13 * 5", "UTC")  # the 13th, and every Friday
    assert upcoming(schedule, utc(2026, 11, 1), 4) == [
        utc(2026, 11, 6), utc(2026, 11, 13), utc(2026, 11, 20), utc(2026, 11, 27),
    ]  # fmt: skip


def test_interval_slots_are_anchored_not_relative_to_start() -> None:
    schedule = IntervalSchedule(every_s=30)
    assert next_fire_after(schedule, utc(2026, 1, 1, 0, 0, 10)) == utc(2026, 1, 1, 0, 0, 30)
    assert next_fire_after(schedule, utc(2026, 1, 1, 0, 0, 30)) == utc(2026, 1, 1, 0, 1)


def test_latest_slot_finds_the_unjittered_fire_time() -> None:
    schedule = IntervalSchedule(every_s=3600, jitter_s=300)
    now = utc(2026, 1, 1, 5, 4, 10)  # fired 4m10s late because of jitter
    assert latest_slot(schedule, now, timedelta(seconds=301)) == utc(2026, 1, 1, 5)
    assert latest_slot(schedule, utc(2026, 1, 1, 5, 30), timedelta(seconds=60)) is None


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_fire_after(IntervalSchedule(60), datetime(2026, 1, 1))  # noqa: DTZ001
