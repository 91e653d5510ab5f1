"""What a slot does when a run of its job is still going (jobs.yaml `overlap:`, Temporal's
vocabulary): `skip` it (recorded `skipped`, the default), `buffer_one` (run once right after
the running run ends; a further slot meanwhile is skipped), `allow` (run beside it: environment
locks still serialise changes to one environment), `cancel_previous` (ask the running run to
stop, as `cancel` does: it starts no new target, finishes what is in flight and ends
`cancelled`; then this slot runs). Every decision but a skip (whose row says it) is a daemon
event (`history daemon`, kind `overlap`). The running run may be another process's: the
history database says which runs are going."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from scheduler.clock import Clock
from scheduler.domain import Job, Run
from scheduler.history import HistoryStore

SKIP, BUFFER_ONE, ALLOW, CANCEL_PREVIOUS = "skip", "buffer_one", "allow", "cancel_previous"
OVERLAPS = (SKIP, BUFFER_ONE, ALLOW, CANCEL_PREVIOUS)
WAIT_POLL_S = 0.5  # how often a waiting slot asks whether the running run ended
ALLOWED_AT_ONCE = 10  # `allow`: the most firings of one job under way in one daemon


def instances(overlap: str) -> int:
    """How many firings of a job the daemon's scheduler lets in at once: one running and one
    waiting for it (buffer_one, cancel_previous), or several (allow)."""
    return {SKIP: 1, BUFFER_ONE: 2, CANCEL_PREVIOUS: 2}.get(overlap, ALLOWED_AT_ONCE)


def refused(overlap: str) -> str:
    """Why a firing the scheduler did not let in (see `instances`) is recorded `skipped`."""
    return {
        SKIP: "the previous run was still running",
        BUFFER_ONE: "a slot of this job was already waiting for the running run "
        "(overlap: buffer_one keeps one)",
        CANCEL_PREVIOUS: "a slot of this job was already waiting for the cancelled run to end",
    }.get(overlap, f"{ALLOWED_AT_ONCE} runs of this job were already under way (overlap: allow)")


class Overlaps:
    """Decides for a slot whose job has a run going (`busy`); True: run the slot now."""

    def __init__(
        self,
        store: HistoryStore,
        clock: Clock,
        *,
        alive_after: Callable[[], datetime],
        decided: Callable[[str, str], None],
        stop: threading.Event,
    ) -> None:
        self._store = store
        self._clock = clock
        self._alive_after = alive_after
        self._decided = decided
        self._stop = stop

    def go(self, job: Job, slot: datetime, busy: Run) -> str | None:
        """None: run the slot now (after waiting, for buffer_one and cancel_previous); else
        why it is skipped."""
        where = f"job {job.id}, slot {slot.isoformat()}"
        if job.overlap == SKIP:
            return f"run {busy.run_id} of this job (by {busy.started_by}) was still running"
        if job.overlap == ALLOW:
            self._decided("overlap", f"{where}: runs beside run {busy.run_id} (overlap: allow)")
            return None
        if job.overlap == CANCEL_PREVIOUS:
            self._store.runs.request_cancel(
                busy.run_id,
                self._clock.now(),
                by=f"overlap: cancel_previous of job {job.id}",
                reason=f"slot {slot.isoformat()} is due",
            )
            self._decided("overlap", f"{where}: cancelled run {busy.run_id}, then runs")
        else:
            self._decided("overlap", f"{where}: waits for run {busy.run_id} (overlap: buffer_one)")
        if not self._wait_until_idle(job):
            return f"the daemon stopped while this slot waited for run {busy.run_id} to end"
        return None

    def _wait_until_idle(self, job: Job) -> bool:
        """Wait until no run of the job is going (any process); False when stopping first."""
        while not self._stop.is_set():
            if self._store.runs.running_run(job.id, self._alive_after()) is None:
                return True
            self._clock.sleep(WAIT_POLL_S, self._stop)
        return False
