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


# --- the daemon's decisions for slots no firing accounts for (pure, literal instants) ----------


def test_plan_catch_up_runs_the_newest_and_writes_covered_rows_at_once() -> None:
    schedule = IntervalSchedule(every_s=3600)
    last, live_from = T0, T0 + timedelta(hours=4)  # 01:00, 02:00, 03:00 were missed
    now = live_from - timedelta(minutes=30)
    decision = slots.plan_catch_up(
        "job", schedule, last, live_from, now, window_s=3 * 3600, grace_s=300, max_rows=10
    )
    assert decision.run == T0 + timedelta(hours=3)
    assert [m.slot for m in decision.missed] == [T0 + timedelta(hours=h) for h in (1, 2)]
    assert [m.not_before for m in decision.missed] == [None, None]  # both covered by the run
    assert all("coalesced into the catch-up run" in m.reason for m in decision.missed)
    assert decision.missed_count == 2
    narrower = slots.plan_catch_up(
        "job", schedule, last, live_from, now, window_s=7200, grace_s=300, max_rows=10
    )  # 01:00 is older than the window: not covered, its row waits for its grace
    assert [m.not_before for m in narrower.missed] == [T0 + timedelta(hours=1, minutes=5), None]


def test_plan_catch_up_lets_an_uncovered_slot_wait_for_its_grace() -> None:
    schedule = IntervalSchedule(every_s=3600, jitter_s=600)
    last, live_from = T0, T0 + timedelta(hours=3)
    now = T0 + timedelta(hours=2, minutes=1)  # inside the 02:00 slot's jitter delay
    decision = slots.plan_catch_up(
        "job", schedule, last, live_from, now, window_s=None, grace_s=300, max_rows=10
    )
    assert decision.run is None
    by_slot = {m.slot: m for m in decision.missed}
    assert set(by_slot) == {T0 + timedelta(hours=1), T0 + timedelta(hours=2)}
    for slot, missed in by_slot.items():
        assert missed.not_before == slots.grace_ends("job", schedule, slot, 300)
        assert missed.not_before == slots.fire_time("job", schedule, slot) + timedelta(minutes=5)
        assert "catch_up is off" in missed.reason


def test_plan_catch_up_counts_what_it_does_not_list() -> None:
    schedule = IntervalSchedule(every_s=60)
    decision = slots.plan_catch_up(
        "job", schedule, T0, T0 + timedelta(days=1), T0 + timedelta(days=1),
        window_s=None, grace_s=0, max_rows=5,
    )  # fmt: skip
    assert len(decision.missed) == 5 and decision.missed_count == 24 * 60 - 1  # 00:01 to 23:59
    assert "(and 1434 older missed slot(s) not listed)" in decision.missed[0].reason


def test_the_gap_window_starts_where_the_schedule_came_into_force() -> None:
    schedule = IntervalSchedule(every_s=3600)
    now = T0 + timedelta(hours=10, minutes=30)
    since = T0 + timedelta(hours=8)  # a slot: included
    window = slots.gap_window(schedule, since, now, lookback_s=6 * 3600, max_rows=100)
    assert window.slots == tuple(T0 + timedelta(hours=h) for h in (8, 9, 10))


def test_the_gap_window_looks_back_no_further_than_its_bound() -> None:
    schedule = IntervalSchedule(every_s=3600)
    now = T0 + timedelta(hours=10, minutes=30)
    window = slots.gap_window(schedule, T0, now, lookback_s=2 * 3600, max_rows=100)
    assert window.slots == (T0 + timedelta(hours=9), T0 + timedelta(hours=10))
    newest = slots.gap_window(schedule, T0, now, lookback_s=10**6, max_rows=2)
    assert newest.slots == (T0 + timedelta(hours=9), T0 + timedelta(hours=10))


def test_lost_slots_are_those_between_recorded_ones_without_a_row() -> None:
    schedule = IntervalSchedule(every_s=3600)
    recorded = {T0, T0 + timedelta(hours=1), T0 + timedelta(hours=4)}
    lost = slots.lost_slots("job", schedule, recorded, grace_s=60, max_rows=100)
    assert [m.slot for m in lost] == [T0 + timedelta(hours=2), T0 + timedelta(hours=3)]
    assert all(m.reason == slots.LOST_SLOT for m in lost)
    assert lost[0].not_before == T0 + timedelta(hours=2, minutes=1)
    assert slots.lost_slots("job", schedule, {T0}, grace_s=60, max_rows=100) == []


def test_an_edited_schedule_keeps_a_pending_slot_only_if_it_still_fires_it() -> None:
    hourly = IntervalSchedule(every_s=3600)
    slot = T0 + timedelta(hours=1)
    assert slots.still_fires(hourly, slot, slot)
    assert not slots.still_fires(hourly, slot, slot + timedelta(hours=1))  # starts after it
    every_7m = IntervalSchedule(every_s=420)
    assert not slots.still_fires(every_7m, slot + timedelta(minutes=1), slot)  # not its slot
