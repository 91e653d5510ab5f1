"""Why a slot that fired does not run, and the pause book's port.

A slot of a job is held (recorded `skipped` with the reason, never claimed) when
- the job is disabled in jobs.yaml (`enabled: false`),
- an operator paused it (`pause JOB`): the pause lives in the history database (`PauseBook`,
  implemented in scheduler.history and scheduler.history.memory), which every replica reads
  at each firing, so all of them obey it from their next firing; a pause with an end lifts
  itself once that moment has passed,
- or the slot lies in a blackout (scheduler.blackouts): the job's own, then the file's.

Pure: the moments are arguments. A pause is judged at `now` (the firing), a blackout at the
slot (the un-jittered fire time), so every replica decides a slot alike.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from scheduler import schedules
from scheduler.blackouts import Blackout, FixedBlackout, RecurringBlackout
from scheduler.domain import CronSchedule, Job
from scheduler.values import parse_duration

DISABLED = "disabled in jobs.yaml (enabled: false)"
_AHEAD = re.compile(r"^\s*[0-9]+(?:\.[0-9]+)?\s*(?:ms|s|m|h|d|w)\s*$")


def iso(moment: datetime) -> str:
    """An instant as operators read it in messages: UTC, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class JobPause:
    """An operator's pause of a job: who (user@host), when, until when (None: until resumed)
    and why."""

    job_id: str
    paused_at: datetime
    by: str
    until: datetime | None = None
    reason: str | None = None

    def active(self, now: datetime) -> bool:
        return self.until is None or now < self.until

    def why(self) -> str:
        """The reason a held slot records: "paused by ops@bastion at ... until ...: freeze"."""
        until = f" until {iso(self.until)}" if self.until is not None else ""
        reason = f": {self.reason}" if self.reason else ""
        return f"paused by {self.by} at {iso(self.paused_at)}{until}{reason}"


class PauseBook(Protocol):
    """One pause per job at most, shared by every process on the database."""

    def pause(self, pause: JobPause) -> JobPause | None:
        """Pause a job, replacing the pause it had; return the one replaced (None: none, or
        only one that had expired)."""

    def resume(self, job_id: str, now: datetime) -> JobPause | None:
        """Lift the job's pause; return it when it was in force at `now` (None: the job was
        not paused, or its pause had expired, which is removed all the same)."""

    def paused(self, job_id: str, now: datetime) -> JobPause | None:
        """The job's pause in force at `now`, if any."""

    def pauses(self, now: datetime) -> list[JobPause]:
        """Every pause in force at `now`, by job id."""


def _opened(window: RecurringBlackout, instant: datetime) -> bool:
    """Whether a recurring window is open at `instant`: it opened in (instant - duration,
    instant]."""
    after = instant - timedelta(seconds=window.duration_s)
    try:
        opened = schedules.next_fire_after(CronSchedule(window.cron, window.timezone), after)
    except (ValueError, OverflowError):  # never fires (refused by validation), or year 9999
        return False
    return opened <= instant


def blackout_at(blackouts: Sequence[Blackout], instant: datetime) -> Blackout | None:
    """The first of `blackouts` that `instant` lies in, if any."""
    for blackout in blackouts:
        if isinstance(blackout, FixedBlackout):
            if blackout.start <= instant < blackout.end:
                return blackout
        elif _opened(blackout, instant):
            return blackout
    return None


def held_because(
    job: Job,
    blackouts: Sequence[Blackout],
    slot: datetime,
    now: datetime,
    pause: JobPause | None,
) -> str | None:
    """Why `slot` of `job` does not run (None: it runs). `blackouts`: the file's; the job's
    own are looked at first. `pause`: the job's, as the pause book has it."""
    if job.enabled and pause is not None and pause.active(now):
        return pause.why()
    return held_by_file(job, blackouts, slot)


def held_by_file(job: Job, blackouts: Sequence[Blackout], slot: datetime) -> str | None:
    """Why jobs.yaml alone holds `slot` (the job disabled, or the slot inside a blackout),
    whenever it is asked: a slot missed or lost inside a blackout would not have run anyway,
    so it is recorded `skipped` with this reason rather than `missed` (no missed-slot alert
    for a freeze)."""
    if not job.enabled:
        return DISABLED
    found = blackout_at((*job.blackouts, *blackouts), slot)
    return f"blackout: {found.name}" if found is not None else None


def pause_until(text: str, now: datetime) -> datetime:
    """`pause --until`: a duration from now (90m, 2h, 3d) or an ISO date/time (in this host's
    zone unless it names one), in UTC. ValueError when it cannot be read or is not after now."""
    try:
        if _AHEAD.match(text):
            return _after(now, now + timedelta(seconds=parse_duration(text)), text)
        parsed = datetime.fromisoformat(text.strip())
        until = (parsed if parsed.tzinfo is not None else parsed.astimezone()).astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"{text[:60]!r} is out of range") from exc
    except ValueError as exc:
        if _AHEAD.match(text):
            raise  # the duration's own message (too long)
        raise ValueError(
            f"cannot read {text[:60]!r}: give a duration such as 2h or 3d, or an ISO date/time "
            "such as 2026-12-01T08:00"
        ) from exc
    return _after(now, until, text)


def _after(now: datetime, until: datetime, text: str) -> datetime:
    if until <= now:
        raise ValueError(f"{text[:60]!r} is in the past ({iso(until)}; it is now {iso(now)})")
    return until
