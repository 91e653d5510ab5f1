"""Whether a slot that fired is held (scheduler.pauses says why: disabled in jobs.yaml, paused
by an operator, inside a blackout). The pause book is read at each firing, so a pause written
by any process is obeyed by every replica from its next firing, with no restart. The pauses
in force are also read every PAUSES_EVERY_S (a duty of the daemon), for /metrics, which must
answer without waiting for the database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from scheduler import pauses
from scheduler.clock import Clock
from scheduler.domain import Config, Job
from scheduler.errors import StoreError
from scheduler.history import HistoryStore
from scheduler.pauses import JobPause

log = structlog.get_logger("scheduler.daemon")

PAUSES_EVERY_S = 5.0
SOURCE_OPERATOR = "pause"  # `pause JOB`
SOURCE_FILE = "jobs.yaml"  # enabled: false


class Holds:
    def __init__(self, store: HistoryStore, clock: Clock, config: Callable[[], Config]) -> None:
        self._store = store
        self._clock = clock
        self._config = config
        self._seen: list[JobPause] = []

    def reason(self, job: Job, slot: datetime) -> str | None:
        """Why `slot` of `job` does not run (None: it runs). StoreError when the pause book
        cannot be read."""
        now = self._clock.now()
        pause = self._store.pauses.paused(job.id, now) if job.enabled else None
        return pauses.held_because(job, self._config().blackouts, slot, now, pause)

    def refresh(self) -> None:
        """Read the pauses in force (a duty: a failure is logged, the last ones kept)."""
        try:
            self._seen = self._store.pauses.pauses(self._clock.now())
        except StoreError as exc:
            log.warning("pauses.unreadable", error=str(exc))

    def paused_jobs(self) -> dict[str, tuple[str, datetime | None]]:
        """Per paused job of the configuration: where the pause comes from (`pause`, or
        `jobs.yaml` for `enabled: false`) and until when (None: no end)."""
        now, config = self._clock.now(), self._config()
        found: dict[str, tuple[str, datetime | None]] = {
            p.job_id: (SOURCE_OPERATOR, p.until)
            for p in self._seen
            if p.active(now) and config.job(p.job_id) is not None
        }
        found.update({j.id: (SOURCE_FILE, None) for j in config.jobs if not j.enabled})
        return found
