"""Time as a dependency: loops read an injected Clock; decisions take `now` as an argument."""

from __future__ import annotations

import threading
import time
import weakref
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


class CancelScope(threading.Event):
    """An Event that also sets every scope made from it with `child()`: the process's shutdown
    stops every run at once, while one run's scope (set when another process adopted it) stops
    only that run's waits. Anything that takes a threading.Event can wait on a scope."""

    def __init__(self) -> None:
        super().__init__()
        self._children: weakref.WeakSet[CancelScope] = weakref.WeakSet()
        self._children_lock = threading.Lock()

    def child(self) -> CancelScope:
        scope = CancelScope()
        with self._children_lock:
            self._children.add(scope)
            if self.is_set():
                scope.set()
        return scope

    def set(self) -> None:
        super().set()
        with self._children_lock:
            children = list(self._children)
        for child in children:
            child.set()
