"""What happened, as frozen events on one small synchronous in-process bus.

The daemon, the runner and the rate governor only publish; what follows from an event (metrics,
notifications, the history event log, trigger's progress display) subscribes. `publish` calls
each subscriber in the publisher's thread, in the order they subscribed, and never raises: a
subscriber that fails is logged and the next one still runs (a notification or a metric must
never break a run, a request or the daemon).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import structlog

from scheduler.domain import Job, NotificationRecord, Run, Task
from scheduler.errors import StoreError

log = structlog.get_logger("scheduler.events")


@dataclass(frozen=True)
class Event:
    """The base of every event; subscribing to it hears them all."""


@dataclass(frozen=True)
class RunStarted(Event):
    """A claimed run begins (its heartbeat beating): before its targets are resolved."""

    job: Job
    run: Run


@dataclass(frozen=True)
class RunFinished(Event):
    """A run was recorded with its final status (`job`: None when jobs.yaml no longer has it)."""

    job: Job | None
    run: Run
    tasks: tuple[Task, ...]


@dataclass(frozen=True)
class SlotsMissed(Event):
    """Slots of a job that did not run (downtime, a full backlog), with the reason."""

    job_id: str
    slots: tuple[datetime, ...]
    reason: str


@dataclass(frozen=True)
class TargetFinished(Event):
    """A target's pipeline ended inside a run: what trigger's progress display shows."""

    targets_total: int
    targets_done: int
    target: str
    failed: bool


@dataclass(frozen=True)
class GovernorActed(Event):
    """The rate governor did something an operator may ask about later: rate_limited,
    key_shared, ledger_unavailable, long_wait. `scope` is the API key's fingerprint."""

    scope: str
    kind: str
    seconds: float | None
    detail: str


@dataclass(frozen=True)
class DaemonActed(Event):
    """started, stopped, config_reloaded, config_rejected, config_missing."""

    at: datetime
    owner: str
    kind: str
    detail: str | None


@dataclass(frozen=True)
class NotificationDelivered(Event):
    """One attempt to deliver a notification, and whether it arrived (`record.ok`)."""

    record: NotificationRecord


E = TypeVar("E", bound=Event)
Subscriber = Callable[[Any], None]


class Bus:
    """Synchronous publish/subscribe by event type (an event's base classes included)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[type[Event], tuple[Subscriber, ...]] = {}

    def subscribe(self, kind: type[E], subscriber: Callable[[E], None]) -> Callable[[], None]:
        """Call `subscriber` with every event of `kind`; returns what unsubscribes it."""
        with self._lock:
            self._subscribers[kind] = (*self._subscribers.get(kind, ()), subscriber)

        def unsubscribe() -> None:
            with self._lock:
                kept = [s for s in self._subscribers.get(kind, ()) if s is not subscriber]
                self._subscribers[kind] = tuple(kept)

        return unsubscribe

    def subscribers(self, event: Event) -> Sequence[Subscriber]:
        with self._lock:
            return [s for kind in type(event).__mro__ for s in self._subscribers.get(kind, ())]

    def publish(self, event: Event) -> None:
        """Tell every subscriber; never raises. A failure is logged with the run or job the
        event is about."""
        for subscriber in self.subscribers(event):
            try:
                subscriber(event)
            except StoreError as exc:  # the database is away: expected, no traceback
                log.warning("event.subscriber_failed", **_about(event), error=str(exc))
            except Exception:
                log.exception("event.subscriber_failed", **_about(event))


def _about(event: Event) -> dict[str, object]:
    """What a log line says of an event: its type, and its run and job when it has them."""
    about: dict[str, object] = {"published": type(event).__name__}
    run = getattr(event, "run", None)
    if isinstance(run, Run):
        about.update(run_id=run.run_id, job_id=run.job_id)
    elif isinstance(job_id := getattr(event, "job_id", None), str):
        about["job_id"] = job_id
    return about
