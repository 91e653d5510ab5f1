"""Time as a dependency: loops read an injected Clock; decisions take `now` as an argument."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        """Wait; return True early if `cancel` was set."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        if seconds <= 0:
            return cancel.is_set() if cancel else False
        if cancel is None:
            time.sleep(seconds)
            return False
        return cancel.wait(seconds)
