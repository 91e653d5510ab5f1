"""The event log in SQL (governor and daemon events, notifications: three tables behind one
repository), and the EventWriter that feeds it the governor's events.

EventWriter: the rate governor's events reach history from a background thread, never from
the request path. The governor only puts an event on a queue (no database round trip while a
request holds its permit); the writer drains the queue about once a second and writes each batch
in one transaction, merging a batch's `long_wait` events per key into one row (under pressure
most requests wait long: one row per request told nothing more). If the database refuses a
batch it is logged and dropped (these are informational), and a full queue drops new events,
counting them, rather than slow a request."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Row, Table, insert, select

from scheduler.clock import Clock
from scheduler.domain import DaemonEvent, GovernorEvent, NotificationRecord
from scheduler.errors import StoreError
from scheduler.history.sql import Database, retried
from scheduler.history.tables import daemon_events, governor_events, notifications

log = structlog.get_logger("scheduler.history.events")

FLUSH_S = 1.0
MAX_QUEUED = 10_000
MERGED = "long_wait"


def merge(batch: Sequence[GovernorEvent]) -> list[GovernorEvent]:
    """One `long_wait` row per key for a batch (the first's time, the longest wait); every
    other event as it came."""
    kept: list[GovernorEvent] = []
    waits: dict[str, list[GovernorEvent]] = {}
    for event in batch:
        if event.kind == MERGED:
            waits.setdefault(event.scope, []).append(event)
        else:
            kept.append(event)
    for scope, seen in waits.items():
        longest = max(seen, key=lambda e: e.seconds or 0.0)
        detail = longest.detail
        if len(seen) > 1:
            shortest = min(e.seconds or 0.0 for e in seen)
            detail = (
                f"{len(seen)} requests waited {shortest:.0f}-{longest.seconds or 0.0:.0f}s; "
                f"longest: {longest.detail}"
            )
        kept.append(GovernorEvent(seen[0].at, scope, MERGED, longest.seconds, detail))
    return sorted(kept, key=lambda e: e.at)


class EventWriter:
    """An EventSink for RateGovernor(on_event=...) that writes in the background."""

    def __init__(
        self,
        write: Callable[[Sequence[GovernorEvent]], None],
        clock: Clock,
        *,
        flush_s: float = FLUSH_S,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self._write = write
        self._clock = clock
        self._flush_s = flush_s
        self._queue: queue.Queue[GovernorEvent] = queue.Queue(max_queued)
        self._closed = threading.Event()
        self.dropped = 0
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="governor-events", daemon=True)
        self._thread.start()

    def __call__(self, scope: str, kind: str, seconds: float | None, detail: str) -> None:
        """Queue an event; never blocks and never raises."""
        try:
            self._queue.put_nowait(GovernorEvent(self._clock.now(), scope, kind, seconds, detail))
        except queue.Full:
            self.dropped += 1

    def _take(self) -> list[GovernorEvent]:
        """The next batch: what arrives within `flush_s` of the first event."""
        try:
            first = self._queue.get(timeout=self._flush_s)
        except queue.Empty:
            return []
        batch = [first]
        if not self._closed.is_set():
            self._closed.wait(self._flush_s)  # let a burst gather into one transaction
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                return batch

    def _run(self) -> None:
        while not (self._closed.is_set() and self._queue.empty()):
            batch = self._take()
            if not batch:
                continue
            rows = merge(batch)
            try:
                self._write(rows)
                self.written += len(rows)
            except StoreError as exc:
                log.warning("governor.events_not_recorded", events=len(rows), error=str(exc))

    def close(self, timeout_s: float = 5.0) -> None:
        """Write what is queued (for up to `timeout_s`), then stop."""
        self._closed.set()
        self._thread.join(timeout_s)
        if self.dropped:
            log.warning("governor.events_dropped", events=self.dropped)


EVENT_TABLES = (governor_events, daemon_events, notifications)  # pruned by age alone


class SqlEventLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record_governor_event(
        self, scope: str, kind: str, seconds: float | None, detail: str, now: datetime
    ) -> None:
        self.record_governor_events([GovernorEvent(now, scope, kind, seconds, detail)])

    def record_governor_events(self, events: Sequence[GovernorEvent]) -> None:
        if not events:
            return
        with self.db.tx() as tx:
            tx.execute(insert(governor_events), [asdict(e) for e in events])

    def record_daemon_event(self, owner: str, kind: str, detail: str | None, now: datetime) -> None:
        with self.db.tx() as tx:
            tx.execute(insert(daemon_events).values(at=now, owner=owner, kind=kind, detail=detail))

    @retried
    def record_notification(self, delivery: NotificationRecord) -> None:
        with self.db.tx() as tx:
            tx.execute(insert(notifications).values({**asdict(delivery), "ok": int(delivery.ok)}))

    def _newest(
        self, table: Table, since: datetime | None, limit: int, until: datetime | None = None
    ) -> list[Row[Any]]:
        query = select(table).order_by(table.c.at.desc(), table.c.id.desc())
        if since is not None:
            query = query.where(table.c.at >= since)
        if until is not None:
            query = query.where(table.c.at <= until)
        with self.db.tx() as tx:
            return list(tx.execute(query.limit(limit)).all())

    def governor_events(
        self, since: datetime | None = None, limit: int = 200, *, until: datetime | None = None
    ) -> list[GovernorEvent]:
        rows = self._newest(governor_events, since, limit, until)
        return [GovernorEvent(r.at, r.scope, r.kind, r.seconds, r.detail) for r in rows]

    def daemon_events(self, since: datetime | None = None, limit: int = 200) -> list[DaemonEvent]:
        rows = self._newest(daemon_events, since, limit)
        return [DaemonEvent(r.at, r.owner, r.kind, r.detail) for r in rows]

    def notifications(
        self, since: datetime | None = None, limit: int = 200
    ) -> list[NotificationRecord]:
        return [
            NotificationRecord(
                at=r.at,
                job_id=r.job_id,
                run_id=r.run_id,
                kind=r.kind,
                channel=r.channel,
                destination=r.destination,
                ok=bool(r.ok),
                detail=r.detail,
            )
            for r in self._newest(notifications, since, limit)
        ]
