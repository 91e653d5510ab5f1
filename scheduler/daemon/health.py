"""The daemon's health for /healthz: the scheduler loop beats, and the database answers.

The database is pinged on a thread of its own at most every DB_CHECK_EVERY_S (so scrapes never
hammer it), and the answer is cached; a ping not answered within DB_ANSWER_S (a locked SQLite
file, an unreachable PostgreSQL) makes the check fail at once, whatever the database does.
"""

from __future__ import annotations

import threading

from scheduler.clock import Clock
from scheduler.errors import StoreError
from scheduler.history import HistoryStore

DB_CHECK_EVERY_S = 5.0
DB_ANSWER_S = 2.0  # /healthz says 503 when the database has not answered a ping in this long


class LoopBeat:
    """The main loop beats each turn; it is alive while the last beat is recent."""

    def __init__(self, clock: Clock, stale_after_s: float) -> None:
        self._clock = clock
        self._stale_after_s = stale_after_s
        self.at = clock.monotonic()

    def beat(self) -> None:
        self.at = self._clock.monotonic()

    def alive(self) -> bool:
        return self._clock.monotonic() - self.at < self._stale_after_s


class DatabasePing:
    """A cached, bounded database ping: `problem()` answers within DB_ANSWER_S."""

    def __init__(self, store: HistoryStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self.checked_at = -1e9  # monotonic; the first check pings
        self._error: str | None = None
        self._started: float | None = None  # a ping in progress, since (monotonic)
        self._done = threading.Event()

    def problem(self) -> str | None:
        """Why the database is not healthy, or None."""
        with self._lock:
            now = self._clock.monotonic()
            if self._started is None and now - self.checked_at > DB_CHECK_EVERY_S:
                self._started = now
                self._done.clear()
                threading.Thread(target=self._ping, daemon=True).start()
            started = self._started
        if started is not None:
            self._done.wait(max(0.0, started + DB_ANSWER_S - self._clock.monotonic()))
        with self._lock:
            if self._started is not None:
                waited = self._clock.monotonic() - self._started
                if waited >= DB_ANSWER_S:
                    return f"no answer to a ping for {waited:.0f}s"
            return self._error

    def _ping(self) -> None:
        try:
            self._store.maintenance.ping()
            error = None
        except StoreError as exc:
            error = str(exc)
        except Exception as exc:  # never leave a ping "in progress" for ever
            error = f"{exc.__class__.__name__}: {exc}"
        with self._lock:
            self._error, self.checked_at = error, self._clock.monotonic()
            self._started = None
            self._done.set()


def verdict(loop_running: bool, db_problem: str | None, waiting_rows: int) -> tuple[bool, str]:
    """(healthy, why) from what was checked (pure)."""
    problems = []
    if not loop_running:
        problems.append("the scheduler loop is not running")
    if db_problem is not None:
        problems.append(f"the history database is unreachable: {db_problem}")
    note = f"; {waiting_rows} row(s) wait for the database" if waiting_rows else ""
    return (not problems, ("; ".join(problems) or "ok") + note)
