"""Pure slot arithmetic for the daemon: when a slot fires (its jitter), which slot a firing
belongs to, which slots lie between two instants (newest first, bounded), and what becomes of
each slot a firing, a catch-up or the gap check accounts for (run, or missed with its reason and
when its row may be written). No clock and no database: instants are arguments.

- A slot is the un-jittered fire time (schedules.py); it is the key of exactly-once claims.
- Jitter is a deterministic function of (job id, slot): every replica, every restart and every
  reload computes the same fire time for a slot, so a slot's fire time is known before it fires.
- Jitter is bounded by the gap to the next slot (for cron too), so fire times keep the slots'
  order and a fire time belongs to exactly one slot: the newest slot at or before it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduler.domain import CronSchedule, IntervalSchedule, Schedule
from scheduler.schedules import INTERVAL_ANCHOR, latest_slot, next_fire_after

_US = timedelta(microseconds=1)
CRON_WINDOW = timedelta(days=1)  # first window searched backwards for cron slots
MAX_COUNTED = 10_000  # cron slots counted one by one beyond the listed ones
LOST_SLOT = (
    "no process recorded this slot: the one that fired it died before it could (kill -9 while "
    "the database was unreachable); found by the gap check"
)


def jitter(job_id: str, schedule: Schedule, slot: datetime) -> timedelta:
    """The slot's delay: a fraction (from a hash of job id and slot) of the job's jitter, never
    reaching the next slot."""
    if not schedule.jitter_s:
        return timedelta(0)
    gap = next_fire_after(schedule, slot) - slot
    bound = min(timedelta(seconds=schedule.jitter_s), gap)
    digest = hashlib.sha256(f"{job_id}|{slot.isoformat()}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64  # in [0, 1)
    return timedelta(microseconds=int(bound / _US * fraction))


def fire_time(job_id: str, schedule: Schedule, slot: datetime) -> datetime:
    return slot + jitter(job_id, schedule, slot)


def grace_ends(job_id: str, schedule: Schedule, slot: datetime, grace_s: float) -> datetime:
    """When a slot's misfire grace has passed: no live replica runs it after this."""
    return fire_time(job_id, schedule, slot) + timedelta(seconds=grace_s)


def slot_of(schedule: Schedule, fired: datetime) -> datetime | None:
    """The slot a (jittered) fire time belongs to: the newest slot at or before it."""
    return latest_slot(schedule, fired, timedelta(seconds=schedule.jitter_s) + _US)


def first_slot_firing_from(job_id: str, schedule: Schedule, since: datetime) -> datetime:
    """The first slot whose fire time is at or after `since`: where a schedule built at `since`
    (start, reload) takes over. A slot already due belongs to whoever was firing before."""
    slot = next_fire_after(schedule, since - timedelta(seconds=schedule.jitter_s) - _US)
    while fire_time(job_id, schedule, slot) < since:
        slot = next_fire_after(schedule, slot)
    return slot


def latest_fired(job_id: str, schedule: Schedule, now: datetime) -> datetime | None:
    """The fire time of the newest slot fired by `now` (looking back a day at most)."""
    back = timedelta(days=1, seconds=schedule.jitter_s)
    for slot in reversed(slots_between(schedule, now - back, now + _US, 2).slots):
        fired = fire_time(job_id, schedule, slot)
        if fired <= now:
            return fired
    return None


@dataclass(frozen=True)
class SlotRange:
    """The newest slots of a range (oldest first) and how many older ones were not listed."""

    slots: tuple[datetime, ...]
    older: int
    older_exact: bool = True  # False: at least `older`


def slots_between(schedule: Schedule, after: datetime, before: datetime, limit: int) -> SlotRange:
    """Slots s with after < s < before: the newest `limit` (listed oldest first, found from the
    newest, so a long range costs no more than a short one) and the count of older ones."""
    if before <= after or limit <= 0:
        return SlotRange((), 0)
    if isinstance(schedule, IntervalSchedule):
        return _interval_slots(schedule, after, before, limit)
    return _cron_slots(schedule, after, before, limit)


def _interval_slots(
    schedule: IntervalSchedule, after: datetime, before: datetime, limit: int
) -> SlotRange:
    step = round(schedule.every_s * 1_000_000)
    first = (after - INTERVAL_ANCHOR) // _US // step + 1  # index of the first slot > after
    last = -((-((before - INTERVAL_ANCHOR) // _US)) // step) - 1  # of the last slot < before
    if last < first:
        return SlotRange((), 0)
    listed_from = max(first, last - limit + 1)
    slots = tuple(INTERVAL_ANCHOR + _US * (step * n) for n in range(listed_from, last + 1))
    return SlotRange(slots, listed_from - first)


def _in_window(schedule: Schedule, low: datetime, high: datetime, cap: int) -> list[datetime]:
    """Slots s with low < s < high, oldest first, at most `cap` of them."""
    found: list[datetime] = []
    moment = low
    while len(found) < cap:
        moment = next_fire_after(schedule, moment)
        if moment >= high:
            break
        found.append(moment)
    return found


def _cron_slots(schedule: CronSchedule, after: datetime, before: datetime, limit: int) -> SlotRange:
    """Windows back from `before` (a day, then doubling) until `limit` slots are found; the
    older ones are counted forward, up to MAX_COUNTED."""
    newest: list[datetime] = []
    high, window = before, CRON_WINDOW
    while len(newest) < limit and high > after:
        low = max(after, high - window)
        start = low - _US if low > after else after  # [low, high), or (after, high)
        newest = _in_window(schedule, start, high, 10**9) + newest
        high, window = low, window * 2
    newest = newest[-limit:]
    if not newest:
        return SlotRange((), 0)
    older = _in_window(schedule, after, newest[0], MAX_COUNTED + 1)
    return SlotRange(tuple(newest), min(len(older), MAX_COUNTED), len(older) <= MAX_COUNTED)


# --- what becomes of each slot ----------------------------------------------------------------


@dataclass(frozen=True)
class Firing:
    """One firing's slots: the one that runs (if any) and why each other one does not."""

    run: datetime | None
    missed: tuple[tuple[datetime, str], ...]


def account(
    schedule: Schedule,
    fired: list[datetime],
    now: datetime,
    grace_s: float,
    *,
    max_rows: int = 100,
) -> Firing:
    """A firing may stand for several fire times (the host was suspended or overloaded and
    APScheduler came late): the newest slot fired within misfire_grace runs, once; every other
    slot is missed, with its reason (the newest `max_rows` listed, the oldest of them counting
    the rest, as catch-up does)."""
    slots: list[tuple[datetime, datetime]] = []
    for moment in sorted(set(fired)):
        slot = slot_of(schedule, moment)
        if slot is not None and (not slots or slots[-1][0] != slot):
            slots.append((slot, moment))
    timely = [s for s, moment in slots if (now - moment).total_seconds() <= grace_s]
    run = timely[-1] if timely else None
    others = [(slot, moment) for slot, moment in slots if slot != run]
    listed = others[-max_rows:] if max_rows > 0 else []
    missed: list[tuple[datetime, str]] = []
    for slot, moment in listed:
        late = (now - moment).total_seconds()
        if late > grace_s:
            reason = (
                f"fired {late:.0f}s late, more than misfire_grace ({grace_s:g}s): "
                "the host was suspended or overloaded"
            )
        elif run is not None:
            reason = f"the host fell behind; coalesced into the run of {run.isoformat()}"
        else:  # pragma: no cover - a timely slot is always the one that runs
            reason = "the host fell behind"
        missed.append((slot, reason))
    if missed and len(others) > len(listed):
        slot, reason = missed[0]
        missed[0] = (slot, f"{reason} (and {len(others) - len(listed)} older slot(s) not listed)")
    return Firing(run, tuple(missed))


@dataclass(frozen=True)
class CatchUp:
    """What a start does with the slots a job missed while no daemon ran: the slot that runs,
    and each missed one with its reason and whether the catch-up run covers it."""

    run: datetime | None
    missed: tuple[tuple[datetime, str, bool], ...]


def catch_up_plan(
    found: SlotRange, now: datetime, window_s: float | None, *, max_rows: int
) -> CatchUp:
    """The newest slot within the `catch_up` window runs once (trigger catch_up); the newest
    `max_rows` others are missed with their reason; the oldest of those counts the rest."""
    newest = found.slots[-1] if found.slots else None
    run = None
    if newest is not None and window_s is not None and (now - newest).total_seconds() <= window_s:
        run = newest
    others = [s for s in found.slots if s != run]
    listed = others[-max_rows:] if max_rows > 0 else []
    older = found.older + len(others) - len(listed)
    window = "catch_up is off" if window_s is None else f"older than catch_up ({window_s:g}s)"
    missed: list[tuple[datetime, str, bool]] = []
    for slot in listed:
        reason = f"missed while no daemon ran; {window}"
        covered = False
        if run is not None and window_s is not None and (now - slot).total_seconds() <= window_s:
            at = run.isoformat()
            reason = f"missed while no daemon ran; coalesced into the catch-up run of {at}"
            covered = True
        missed.append((slot, reason, covered))
    if older and missed:
        slot, reason, covered = missed[0]
        exact = "" if found.older_exact else "+"
        note = f" (and {older}{exact} older missed slot(s) not listed)"
        missed[0] = (slot, reason + note, covered)
    return CatchUp(run, tuple(missed))


@dataclass(frozen=True)
class MissedSlot:
    """A slot that did not run, its reason, and when its row may be written (None: at once)."""

    slot: datetime
    reason: str
    not_before: datetime | None = None


@dataclass(frozen=True)
class CatchUpDecision:
    """For one job at start: the slot that runs now (trigger catch_up), the rows of the missed
    ones, and how many slots were missed in all (listed or counted)."""

    run: datetime | None
    missed: tuple[MissedSlot, ...]
    missed_count: int


def plan_catch_up(
    job_id: str,
    schedule: Schedule,
    last_slot: datetime,
    live_from: datetime,
    now: datetime,
    *,
    window_s: float | None,
    grace_s: float,
    max_rows: int,
) -> CatchUpDecision:
    """Slots after the job's newest row and before the live schedule's first slot: the newest
    within the catch_up window runs; a missed slot the run covers is written at once, any other
    waits for its misfire grace (a live replica may still run it)."""
    found = slots_between(schedule, last_slot, live_from, max_rows + 1)
    plan = catch_up_plan(found, now, window_s, max_rows=max_rows)
    missed = tuple(
        MissedSlot(slot, reason, None if covered else grace_ends(job_id, schedule, slot, grace_s))
        for slot, reason, covered in plan.missed
    )
    missed_count = found.older + len(found.slots) - (plan.run is not None)
    return CatchUpDecision(plan.run, missed, missed_count)


def gap_window(
    schedule: Schedule,
    in_force_since: datetime,
    now: datetime,
    *,
    lookback_s: float,
    max_rows: int,
) -> SlotRange:
    """The slots the gap check looks at: since the schedule has been in force (inclusive), no
    further back than `lookback_s`, before `now`; the newest `max_rows`."""
    since = max(in_force_since, now - timedelta(seconds=lookback_s))
    return slots_between(schedule, since - _US, now, max_rows)


def lost_slots(
    job_id: str,
    schedule: Schedule,
    recorded: Collection[datetime],
    *,
    grace_s: float,
    max_rows: int,
) -> list[MissedSlot]:
    """Slots strictly between the oldest and newest recorded slot that have no row: each is
    missed once its misfire grace has passed."""
    if len(recorded) < 2:
        return []
    found = slots_between(schedule, min(recorded), max(recorded), max_rows)
    return [
        MissedSlot(slot, LOST_SLOT, grace_ends(job_id, schedule, slot, grace_s))
        for slot in found.slots
        if slot not in recorded
    ]


def still_fires(schedule: Schedule, slot: datetime, first_slot: datetime) -> bool:
    """Whether a schedule whose first slot is `first_slot` fires `slot` (an edit made inside
    the slot's jitter delay keeps it only then)."""
    return slot >= first_slot and latest_slot(schedule, slot, _US) == slot
