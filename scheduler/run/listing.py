"""The company's site list, shared by the runs that start together.

Every run resolves its targets from the live site list (one GET /sites with environments). Jobs
due at the same minute in one process would each send that request a moment apart; here the
first asks and the others, within FRESH_S, take its answer (one waiting while another asks).
A site added in MyKinsta is picked up by the next run after that."""

from __future__ import annotations

import threading
from collections.abc import Callable

from scheduler.clock import Clock
from scheduler.kinsta.models import Site

FRESH_S = 15.0  # a listing this recent serves another run (jobs due at the same minute)


class SiteListing:
    def __init__(
        self, fetch: Callable[[], list[Site]], clock: Clock, fresh_s: float = FRESH_S
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._fresh_s = fresh_s
        self._lock = threading.Lock()  # held while one run asks: the others wait for its answer
        self._sites: list[Site] | None = None
        self._at = 0.0

    def __call__(self) -> list[Site]:
        with self._lock:
            now = self._clock.monotonic()
            if self._sites is None or now - self._at > self._fresh_s:
                self._sites = self._fetch()  # an error leaves the last answer's age unchanged
                self._at = self._clock.monotonic()
            return list(self._sites)

    def last(self) -> list[Site]:
        """The last answer, however old (none yet: []); asks nothing."""
        return list(self._sites or [])
