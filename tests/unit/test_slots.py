"""Slot arithmetic (slots.py): jitter, the slot of a fire time, ranges found from the newest,
and what becomes of each slot of a late firing or a catch-up. Every instant is fixed."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from scheduler import slots
from scheduler.domain import CronSchedule, IntervalSchedule
from scheduler.schedules import next_fire_after, upcoming

T0 = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)


def test_cron_jitter_never_reaches_the_next_slot_so_no_slot_is_lost() -> None:
    """`0,5 * * * *` with 10m of jitter (issue 11.8: 709 of 2,709 slots were lost): each slot
    fires before the next one, and each fire time maps back to its own slot."""
    schedule = CronSchedule("0,5 * * * *", "UTC", jitter_s=600)
    wanted = upcoming(schedule, T0, 2_000)
    fired = [slots.fire_time("job", schedule, s) for s in wanted]
    assert fired == sorted(fired)
    assert all(s <= f < next_fire_after(schedule, s) for s, f in zip(wanted, fired, strict=True))
    assert [slots.slot_of(schedule, f) for f in fired] == wanted
    assert max(f - s for s, f in zip(wanted, fired, strict=True)) > timedelta(minutes=4)


def test_jitter_is_the_same_in_every_process_and_differs_per_job() -> None:
    schedule = IntervalSchedule(every_s=3600, jitter_s=3000)
    assert slots.jitter("a", schedule, T0) == slots.jitter("a", schedule, T0)
    assert slots.jitter("a", schedule, T0) != slots.jitter("b", schedule, T0)
    assert slots.jitter("a", IntervalSchedule(every_s=3600), T0) == timedelta(0)


def test_a_schedule_built_inside_a_jitter_delay_still_fires_that_slot() -> None:
    schedule = IntervalSchedule(every_s=3600, jitter_s=3000)
    fire = slots.fire_time("a", schedule, T0)
    assert fire > T0
    middle = T0 + (fire - T0) / 2
    assert slots.first_slot_firing_from("a", schedule, middle) == T0
    assert slots.first_slot_firing_from("a", schedule, fire + timedelta(microseconds=1)) == (
        T0 + timedelta(hours=1)
    )


def test_interval_slots_are_found_from_the_newest() -> None:
    """`every: 1s` down 5 hours (issue 11.12): the newest slots, and the rest counted."""
    schedule = IntervalSchedule(every_s=1)
    now = T0 + timedelta(hours=5)
    began = time.monotonic()
    found = slots.slots_between(schedule, T0, now, 101)
    assert time.monotonic() - began < 0.1
    assert found.slots == tuple(now - timedelta(seconds=s) for s in range(101, 0, -1))
    assert found.older == 5 * 3600 - 1 - 101 and found.older_exact


def test_cron_slots_are_found_from_the_newest() -> None:
    schedule = CronSchedule("*/5 * * * *", "UTC")
    now = T0 + timedelta(days=3)
    found = slots.slots_between(schedule, T0, now, 10)
    assert found.slots == tuple(now - timedelta(minutes=5 * n) for n in range(10, 0, -1))
    assert found.older == 3 * 288 - 1 - 10
    weekly = CronSchedule("0 3 * * 1", "UTC")  # sparse: the windows widen until enough
    found = slots.slots_between(weekly, T0 - timedelta(days=60), T0, 3)
    assert [s.weekday() for s in found.slots] == [0, 0, 0] and found.slots[-1] < T0
    assert found.older == 5


def test_a_late_firing_runs_its_newest_timely_slot_and_accounts_for_the_others() -> None:
    schedule = IntervalSchedule(every_s=5)
    fired = [T0 + timedelta(seconds=5 * n) for n in range(6)]  # 27 s behind
    now = fired[-1] + timedelta(seconds=2)
    firing = slots.account(schedule, fired, now, grace_s=20)
    assert firing.run == fired[-1]
    assert [s for s, _ in firing.missed] == fired[:-1]
    late = dict(firing.missed)
    assert "more than misfire_grace (20s)" in late[fired[0]]
    assert "coalesced into the run of" in late[fired[-2]]
    nothing_timely = slots.account(schedule, fired[:2], now, grace_s=1)
    assert nothing_timely.run is None and len(nothing_timely.missed) == 2


def test_catch_up_runs_the_newest_within_its_window_and_lists_a_bounded_number() -> None:
    schedule = IntervalSchedule(every_s=60)
    now = T0 + timedelta(days=1)
    found = slots.slots_between(schedule, T0, now, 11)
    plan = slots.catch_up_plan(found, now, 3600, max_rows=10)
    assert plan.run == now - timedelta(minutes=1)
    assert len(plan.missed) == 10 and all(covered for _, _, covered in plan.missed)
    assert "(and 1428 older missed slot(s) not listed)" in plan.missed[0][1]
    off = slots.catch_up_plan(found, now, None, max_rows=10)
    assert off.run is None and len(off.missed) == 10
    assert not any(covered for _, _, covered in off.missed)
    assert "catch_up is off (and 1429 older" in off.missed[0][1]


def test_a_firing_after_hours_of_suspension_lists_a_bounded_number_quickly() -> None:
    schedule = IntervalSchedule(every_s=1)
    fired = [T0 + timedelta(seconds=n) for n in range(5 * 3600)]
    now = fired[-1] + timedelta(milliseconds=500)
    began = time.monotonic()
    firing = slots.account(schedule, fired, now, grace_s=300, max_rows=100)
    assert time.monotonic() - began < 2
    assert firing.run == fired[-1] and len(firing.missed) == 100
    assert [s for s, _ in firing.missed] == fired[-101:-1]
    assert "(and 17899 older slot(s) not listed)" in firing.missed[0][1]
