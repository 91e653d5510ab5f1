"""Job pauses in memory, as the SQL store keeps them."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from scheduler.history.memory.state import MemoryState, aware, maybe
from scheduler.pauses import JobPause


class MemoryPauseBook:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    def pause(self, pause: JobPause) -> JobPause | None:
        pause = replace(pause, paused_at=aware(pause.paused_at), until=maybe(pause.until))
        with self._s.lock:
            before = self._s.pauses.get(pause.job_id)
            self._s.pauses[pause.job_id] = pause
        return before if before is not None and before.active(pause.paused_at) else None

    def resume(self, job_id: str, now: datetime) -> JobPause | None:
        with self._s.lock:
            before = self._s.pauses.pop(job_id, None)
        return before if before is not None and before.active(aware(now)) else None

    def paused(self, job_id: str, now: datetime) -> JobPause | None:
        with self._s.lock:
            found = self._s.pauses.get(job_id)
        return found if found is not None and found.active(aware(now)) else None

    def pauses(self, now: datetime) -> list[JobPause]:
        with self._s.lock:
            return [p for _, p in sorted(self._s.pauses.items()) if p.active(aware(now))]
