"""The daemon's APScheduler 3.11 wiring: the only module that imports APScheduler (besides the
cron field parser in schedules.py).

- A BackgroundScheduler in UTC with an in-memory job store rebuilt from jobs.yaml: the file is the
  source of truth; everything that must survive a restart lives in our own tables.
- SlotTrigger fires each slot at its slot plus its jitter (slots.py); SlotExecutor hands each
  firing the fire times it stands for (`fired=`), so the daemon accounts for every one.
- Runs use the default executor (MAX_PARALLEL_RUNS threads); the daemon's own duties (recovery,
  catch-up, housekeeping, writing queued rows) have their own threads, never behind the runs.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from scheduler import schedules, slots
from scheduler.domain import IntervalSchedule, Schedule

from .overlap import instances

log = structlog.get_logger("scheduler.daemon")

MAX_PARALLEL_RUNS = 20
DUTIES_WAIT_S = 10.0  # how long shutdown waits for the daemon's own duties under way
INTERNAL_THREADS = 5  # recovery, catch-up, housekeeping, flush, pauses: never behind the runs


class SlotTrigger(BaseTrigger):  # type: ignore[misc]
    """APScheduler trigger over a job's slots: each fires at its slot plus the slot's jitter
    (slots.py). The next fire time follows from the previous fire time's slot, never from the
    clock, so a late firing loses no slot."""

    def __init__(self, job_id: str, schedule: Schedule) -> None:
        self.job_id = job_id
        self.schedule = schedule

    def first(self, since: datetime) -> datetime:
        """The first fire time at or after `since`; ValueError if the schedule never fires."""
        slot = slots.first_slot_firing_from(self.job_id, self.schedule, since)
        return slots.fire_time(self.job_id, self.schedule, slot)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        try:
            if previous_fire_time is None:
                return self.first(now)
            slot = slots.slot_of(self.schedule, previous_fire_time) or previous_fire_time
            following = schedules.next_fire_after(self.schedule, slot)
            return slots.fire_time(self.job_id, self.schedule, following)
        except ValueError as exc:  # validation rejects such schedules; never crash the loop
            log.error("schedule.no_next_fire", job_id=self.job_id, error=str(exc))
            return None

    def __str__(self) -> str:
        return f"slot[{self.schedule}]"


class SlotExecutor(ThreadPoolExecutor):  # type: ignore[misc]
    """Runs a job's function with the fire times the firing stands for (`fired=`), so the
    daemon accounts for each (APScheduler's own run_job would drop misfires and coalesced
    times without a word)."""

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        def done(future: concurrent.futures.Future[None]) -> None:
            exc = future.exception()
            if exc is not None:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, [])

        future = self._pool.submit(job.func, *job.args, fired=list(run_times))
        future.add_done_callback(done)


def first_fire(job_id: str, schedule: Schedule, since: datetime) -> datetime:
    """A job's first fire time at or after `since`; ValueError if its schedule never fires."""
    return SlotTrigger(job_id, schedule).first(since)


Fire = Callable[..., None]  # (job_id, fired=[fire times]) for a firing of a jobs.yaml job


class Timetable:
    """The BackgroundScheduler behind the daemon: jobs.yaml jobs on SlotTriggers, one-shot slot
    runs, and the daemon's duties on their own threads. `not_run(job_id, fire_times)` hears of
    firings APScheduler refused because the job's previous firing still runs (on the
    scheduler's own thread: it must never wait)."""

    def __init__(self, not_run: Callable[[str, list[datetime]], None]) -> None:
        self._not_run = not_run
        self.scheduler = BackgroundScheduler(
            timezone="UTC",
            executors={
                "default": SlotExecutor(max_workers=MAX_PARALLEL_RUNS),
                "internal": ThreadPoolExecutor(max_workers=INTERNAL_THREADS),
            },
            # Every fire time reaches the executor (no coalescing, no misfire check there):
            # the daemon accounts for each with its own clock.
            job_defaults={"coalesce": False, "max_instances": 1, "misfire_grace_time": None},
        )
        self.scheduler.add_listener(self.job_not_submitted, EVENT_JOB_MAX_INSTANCES)
        self._duties = threading.Condition()
        self._duties_running = 0

    def job_not_submitted(self, event: JobSubmissionEvent) -> None:
        fired = getattr(event, "scheduled_run_times", None) or [event.scheduled_run_time]
        self._not_run(event.job_id, list(fired))

    # --- jobs ---------------------------------------------------------------------------------

    def schedule(
        self, job_id: str, schedule: Schedule, first: datetime, fire: Fire, overlap: str = "skip"
    ) -> None:
        """Schedule (or reschedule) a jobs.yaml job from its first fire time on; its overlap
        policy says how many of its firings may be under way at once."""
        self.scheduler.add_job(
            fire,
            trigger=SlotTrigger(job_id, schedule),
            id=job_id,
            name=job_id,
            args=[job_id],
            next_run_time=first,
            replace_existing=True,
            max_instances=instances(overlap),
        )

    def run_soon(self, job_id: str, func: Callable[..., None], args: list[Any]) -> None:
        """Run `func(*args)` once, now, on a run thread (a catch-up, a slot kept by an edit)."""
        self.scheduler.add_job(func, args=args, id=job_id, replace_existing=True)

    def add_duty(
        self,
        job_id: str,
        duty: Callable[[], object],
        first: datetime,
        every_s: float | None,
        *,
        instances: int = 1,
    ) -> None:
        """One of the daemon's own duties, from `first` on, every `every_s` (None: once)."""
        trigger = SlotTrigger(job_id, IntervalSchedule(every_s=every_s)) if every_s else None

        def counted() -> None:
            with self._duties:
                self._duties_running += 1
            try:
                duty()
            finally:
                with self._duties:
                    self._duties_running -= 1
                    self._duties.notify_all()

        self.scheduler.add_job(
            counted,
            trigger=trigger,
            id=job_id,
            next_run_time=first,
            executor="internal",
            coalesce=True,
            max_instances=instances,
            replace_existing=True,
        )

    def remove(self, job_id: str) -> None:
        if self.scheduler.get_job(job_id) is not None:
            self.scheduler.remove_job(job_id)

    def ids(self) -> list[str]:
        return [job.id for job in self.scheduler.get_jobs()]

    def schedule_of(self, job_id: str) -> Schedule | None:
        """The schedule a job is scheduled on (None: not scheduled, or not on a SlotTrigger)."""
        job = self.scheduler.get_job(job_id)
        trigger = getattr(job, "trigger", None)
        return trigger.schedule if isinstance(trigger, SlotTrigger) else None

    def next_fire(self, job_id: str) -> datetime | None:
        job = self.scheduler.get_job(job_id)
        return None if job is None else job.next_run_time

    def next_fire_times(self) -> dict[str, str]:
        return {
            job.id: job.next_run_time.isoformat() if job.next_run_time else "paused"
            for job in self.scheduler.get_jobs()
        }

    # --- the loop -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return bool(self.scheduler.running)

    def start(self, *, paused: bool) -> None:
        self.scheduler.start(paused=paused)

    def resume(self) -> None:
        self.scheduler.resume()

    def pause(self) -> None:
        self.scheduler.pause()

    def shutdown(self, timeout_s: float = DUTIES_WAIT_S) -> None:
        """Stop; wait up to `timeout_s` for duties under way (a flush, a gap check, a prune),
        so that none still uses the history when the caller closes it. Runs are the daemon's
        to wait for (it drains them first)."""
        self.scheduler.shutdown(wait=False)
        with self._duties:
            self._duties.wait_for(lambda: self._duties_running == 0, timeout=timeout_s)
