"""The event bus: synchronous, in subscription order, by type (bases included), and publish
never raises; history's event log as a subscriber."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import structlog

from scheduler.domain import NotificationRecord
from scheduler.errors import StoreError
from scheduler.eventlog import EventLog
from scheduler.events import (
    Bus,
    DaemonActed,
    Event,
    GovernorActed,
    NotificationDelivered,
    SlotsMissed,
    TargetFinished,
)

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
MISSED = SlotsMissed("backup", (T0,), "the daemon was down")


def test_subscribers_hear_their_events_in_order() -> None:
    bus, heard = Bus(), list[tuple[str, Event]]()
    bus.subscribe(SlotsMissed, lambda e: heard.append(("first", e)))
    bus.subscribe(Event, lambda e: heard.append(("every", e)))
    bus.subscribe(SlotsMissed, lambda e: heard.append(("second", e)))
    bus.subscribe(TargetFinished, lambda e: heard.append(("other", e)))
    bus.publish(MISSED)
    assert heard == [("first", MISSED), ("second", MISSED), ("every", MISSED)]


def test_a_failing_subscriber_is_logged_and_the_rest_still_hear() -> None:
    bus, heard = Bus(), list[SlotsMissed]()

    def broken(event: SlotsMissed) -> None:
        raise RuntimeError("boom")

    def away(event: SlotsMissed) -> None:
        raise StoreError("database unreachable")

    bus.subscribe(SlotsMissed, broken)
    bus.subscribe(SlotsMissed, away)
    bus.subscribe(SlotsMissed, heard.append)
    with structlog.testing.capture_logs() as logs:
        bus.publish(MISSED)  # never raises
    assert heard == [MISSED]
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("event.subscriber_failed", "error"),
        ("event.subscriber_failed", "warning"),
    ]
    assert all(e["job_id"] == "backup" and e["published"] == "SlotsMissed" for e in logs)


def test_unsubscribe_stops_delivery() -> None:
    bus, heard = Bus(), list[SlotsMissed]()
    unsubscribe = bus.subscribe(SlotsMissed, heard.append)
    bus.publish(MISSED)
    unsubscribe()
    bus.publish(MISSED)
    assert heard == [MISSED]


def test_events_are_frozen() -> None:
    with pytest.raises(AttributeError):
        MISSED.reason = "changed"  # type: ignore[misc]


class Records:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.notifications: list[NotificationRecord] = []
        self.daemon: list[tuple[str, str, str | None, datetime]] = []

    def record_notification(self, delivery: NotificationRecord) -> None:
        if self.fail:
            raise StoreError("database unreachable")
        self.notifications.append(delivery)

    def record_daemon_event(self, owner: str, kind: str, detail: str | None, now: datetime) -> None:
        if self.fail:
            raise StoreError("database unreachable")
        self.daemon.append((owner, kind, detail, now))


def test_the_event_log_records_what_the_bus_carries() -> None:
    bus, records, governor = Bus(), Records(), []
    EventLog(records, lambda *args: governor.append(args)).subscribe(bus)
    record = NotificationRecord(T0, "backup", 7, "failure", "slack", "https://hooks", True)
    bus.publish(NotificationDelivered(record))
    bus.publish(DaemonActed(T0, "host:1", "started", None))
    bus.publish(GovernorActed("abc", "rate_limited", 60.0, "Kinsta answered 429"))
    assert records.notifications == [record]
    assert records.daemon == [("host:1", "started", None, T0)]
    assert governor == [("abc", "rate_limited", 60.0, "Kinsta answered 429")]


def test_the_event_log_warns_when_history_is_away() -> None:
    bus = Bus()
    EventLog(Records(fail=True), lambda *args: None).subscribe(bus)
    record = NotificationRecord(T0, "backup", 7, "failure", "slack", "https://hooks", True)
    with structlog.testing.capture_logs() as logs:
        bus.publish(NotificationDelivered(record))
        bus.publish(DaemonActed(T0, "host:1", "started", None))
    assert [e["event"] for e in logs] == ["notification.not_recorded", "daemon.event_not_recorded"]
