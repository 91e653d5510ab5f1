"""History's event logs as a subscriber of the bus: notifications delivered (or not), what
daemons did, and the rate governor's events (handed to the background EventWriter, which
writes them off the request path). Recording is best effort: the log has it too."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import structlog

from scheduler.domain import NotificationRecord
from scheduler.errors import StoreError
from scheduler.events import Bus, DaemonActed, GovernorActed, NotificationDelivered

log = structlog.get_logger("scheduler.eventlog")

GovernorSink = Callable[[str, str, float | None, str], None]  # (scope, kind, seconds, detail)


class EventRecords(Protocol):
    def record_notification(self, delivery: NotificationRecord) -> None: ...

    def record_daemon_event(
        self, owner: str, kind: str, detail: str | None, now: datetime
    ) -> None: ...


class EventLog:
    def __init__(self, store: EventRecords, governor_events: GovernorSink) -> None:
        self._store = store
        self._governor_events = governor_events

    def subscribe(self, bus: Bus) -> None:
        bus.subscribe(NotificationDelivered, self.notification)
        bus.subscribe(DaemonActed, self.daemon)
        bus.subscribe(GovernorActed, self.governor)

    def notification(self, event: NotificationDelivered) -> None:
        record = event.record
        try:
            self._store.record_notification(record)
        except StoreError as exc:
            log.warning("notification.not_recorded", error=str(exc))

    def daemon(self, event: DaemonActed) -> None:
        owner, kind, detail, now = event.owner, event.kind, event.detail, event.at
        try:
            self._store.record_daemon_event(owner, kind, detail, now)
        except StoreError as exc:
            log.warning("daemon.event_not_recorded", kind=kind, error=str(exc))

    def governor(self, event: GovernorActed) -> None:
        """Queued for the background writer: never a database round trip here."""
        self._governor_events(event.scope, event.kind, event.seconds, event.detail)
