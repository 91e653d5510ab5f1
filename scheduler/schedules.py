"""Pure fire-time arithmetic: which instants (UTC) a schedule fires at.

Cron expressions mean what crontab means, evaluated on the wall clock of the job's zone:
- weekday 0 and 7 are Sunday (APScheduler numbers from Monday; numbers are translated to names);
- a wall time that does not exist (spring-forward gap) fires once, at the first valid instant after
  the gap (the transition itself); several such wall times coalesce into that one firing;
- a wall time that happens twice (fall-back fold) fires once, at its first occurrence.
APScheduler's CronTrigger is used only to enumerate wall-clock matches in a zone without DST (UTC),
so the cron dialect that `validate` accepts is exactly the one that fires.

Intervals (`every`) are anchored to 2000-01-01T00:00Z, so every process computes the same slots
whatever time it started; a slot is the un-jittered fire time, the key of exactly-once claims.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from scheduler.domain import CronSchedule, IntervalSchedule, Schedule

INTERVAL_ANCHOR = datetime(2000, 1, 1, tzinfo=UTC)
_MAX_STEPS = 100_000
_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


_DOW_NUMBERS = {name: number for number, name in enumerate(_DOW_NAMES[:7])}


def _dow_value(token: str) -> int:
    token = token.lower()
    if token in _DOW_NUMBERS:
        return _DOW_NUMBERS[token]
    if not token.isdigit() or int(token) > 7:
        raise ValueError(f"day of week {token!r} is not 0-7 or a day name")
    return int(token) % 7


def expand_day_of_week(field: str) -> list[int]:
    """The Sunday-based day numbers (0-6) a crontab weekday field names."""
    days: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step {step_text!r} must be positive")
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            low, _, high = base.partition("-")
            first, last = _dow_value(low), int(high) if high == "7" else _dow_value(high)
        else:
            first = _dow_value(base)
            last = 7 if step_text else first
        if last < first:
            raise ValueError(f"range {base!r} runs backwards")
        days.update(day % 7 for day in range(first, last + 1, step))
    return sorted(days)


def _cron_trigger(
    minute: str, hour: str, day: str, month: str, dow: str, *, end: datetime | None
) -> CronTrigger:
    names = dow if dow == "*" else ",".join(_DOW_NAMES[d] for d in expand_day_of_week(dow))
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=names,
        timezone=UTC,
        end_date=end,
    )


def build_cron_triggers(expression: str, end: datetime | None = None) -> list[CronTrigger]:
    """Wall-clock triggers (in UTC, which has no DST) whose union is the crontab expression.

    Crontab fires when day-of-month OR day-of-week matches if both are restricted; APScheduler
    requires both, so that case becomes two triggers.
    """
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields (minute hour day month weekday), got {len(fields)}")
    minute, hour, day, month, dow = fields
    if day != "*" and dow != "*":
        return [
            _cron_trigger(minute, hour, day, month, "*", end=end),
            _cron_trigger(minute, hour, "*", month, dow, end=end),
        ]
    return [_cron_trigger(minute, hour, day, month, dow, end=end)]


# A cron expression has no year: what it matches recurs every year, except 29 February, which
# can be eight years apart (2096, 2104). Looking at 2000 to 2008 (wall time) settles both
# questions below for every year, whatever the date today.
_PROBE_FROM = datetime(2000, 1, 1, tzinfo=UTC).replace(tzinfo=None)  # a wall time
_PROBE_TO = datetime(2009, 1, 1, tzinfo=UTC)
_GAP_SAMPLES = 1_500


def cron_fires(expression: str) -> bool:
    """Whether the expression matches any time at all (`0 0 30 2 *` never does)."""
    triggers = build_cron_triggers(expression, end=_PROBE_TO)
    return _next_wall_match(triggers, _PROBE_FROM) is not None


def cron_gap_within(expression: str, seconds: float) -> timedelta | None:
    """A gap between two consecutive wall-clock matches of at most `seconds`, if there is one.
    Cron sets are products of their fields, so the shortest gap shows within the first
    matches (the first hour, day or year the fields repeat over); 1,500 are looked at."""
    if seconds < 60:
        return None  # cron's resolution is a minute
    triggers = build_cron_triggers(expression, end=_PROBE_TO)
    previous = _next_wall_match(triggers, _PROBE_FROM)
    for _ in range(_GAP_SAMPLES):
        if previous is None:
            return None
        following = _next_wall_match(triggers, previous + timedelta(seconds=1))
        if following is not None and (following - previous).total_seconds() <= seconds:
            return following - previous
        previous = following
    return None


def _next_wall_match(triggers: list[CronTrigger], wall: datetime) -> datetime | None:
    """The first wall time >= `wall` (naive) matched by any trigger."""
    matches = [t.get_next_fire_time(None, wall.replace(tzinfo=UTC)) for t in triggers]
    found = [m for m in matches if m is not None]
    return _naive(min(found)) if found else None


def _naive(dt: datetime) -> datetime:
    return dt.replace(tzinfo=None)


def resolve_wall_time(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant a naive wall time stands for in `zone`, by the gap/fold rule above."""
    first = wall.replace(tzinfo=zone, fold=0)
    first_utc = first.astimezone(UTC)
    if _naive(first_utc.astimezone(zone)) == wall:
        return first_utc  # exists (once, or twice and this is the first occurrence)
    # In a gap: the transition lies between the two readings of the wall time.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = first_utc
    if low > high:
        low, high = high, low
    offset_before = (low - timedelta(seconds=1)).astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == offset_before:
            low = middle
        else:
            high = middle
    return high.replace(microsecond=0)


def _next_cron(schedule: CronSchedule, after: datetime) -> datetime:
    zone = ZoneInfo(schedule.timezone)
    triggers = build_cron_triggers(schedule.expression)
    wall = _naive(after.astimezone(zone)).replace(microsecond=0) + timedelta(seconds=1)
    for _ in range(_MAX_STEPS):
        candidate = _next_wall_match(triggers, wall)
        if candidate is None:
            break
        instant = resolve_wall_time(candidate, zone)
        if instant > after:
            return instant
        wall = candidate + timedelta(seconds=1)
    raise ValueError(f"cron expression {schedule.expression!r} never fires")


def _next_interval(schedule: IntervalSchedule, after: datetime) -> datetime:
    step_us = round(schedule.every_s * 1_000_000)
    elapsed_us = (after - INTERVAL_ANCHOR) // timedelta(microseconds=1)
    return INTERVAL_ANCHOR + timedelta(microseconds=(elapsed_us // step_us + 1) * step_us)


def next_fire_after(schedule: Schedule, after: datetime) -> datetime:
    """The first slot strictly after `after` (aware), in UTC."""
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    if isinstance(schedule, CronSchedule):
        return _next_cron(schedule, after)
    return _next_interval(schedule, after)


def latest_slot(schedule: Schedule, now: datetime, lookback: timedelta) -> datetime | None:
    """The newest slot in (now - lookback, now], or None: which slot a firing belongs to."""
    slot = None
    candidate = next_fire_after(schedule, now - lookback)
    while candidate <= now:
        slot = candidate
        candidate = next_fire_after(schedule, candidate)
    return slot


def upcoming(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    """The next `count` slots, fewer when the calendar ends first (the year 9999)."""
    times: list[datetime] = []
    cursor = after
    for _ in range(count):
        try:
            cursor = next_fire_after(schedule, cursor)
        except OverflowError:
            break
        times.append(cursor)
    return times


def dst_note(schedule: Schedule, instant: datetime) -> str | None:
    """For `plan`: whether a cron fire time is a DST special case in the job's zone. "gap" when
    the wall time it stands for was skipped (spring forward: it runs at the first valid instant),
    "fold" when its wall time happens twice (fall back: it runs at the first occurrence only)."""
    if not isinstance(schedule, CronSchedule):
        return None
    zone = ZoneInfo(schedule.timezone)
    wall = _naive(instant.astimezone(zone))
    if (
        wall.replace(tzinfo=zone, fold=0).utcoffset()
        != wall.replace(tzinfo=zone, fold=1).utcoffset()
    ):
        return "fold: this wall time happens twice; it runs at the first occurrence only"
    before = (instant - timedelta(seconds=1)).astimezone(zone)
    after = instant.astimezone(zone)
    if after.utcoffset() == before.utcoffset():
        return None
    skipped_from = _naive(before) + timedelta(seconds=1)  # the first wall time that never happened
    if skipped_from >= wall:
        return None  # a backward change: no wall time skipped
    candidate = _next_wall_match(build_cron_triggers(schedule.expression), skipped_from)
    if candidate is not None and candidate < wall:
        return (
            f"gap: {candidate:%H:%M} does not exist on {candidate:%Y-%m-%d} (clocks go forward); "
            "it runs at the first valid instant after"
        )
    return None
