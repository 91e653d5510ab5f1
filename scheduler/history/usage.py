"""Requests per key and minute in SQL (scheduler.usage), and the writer that moves the
governors' counts into it off the request path."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime

import structlog
from sqlalchemy import delete, select

from scheduler.errors import StoreError
from scheduler.history.sql import Database, retried
from scheduler.history.tables import request_minutes
from scheduler.usage import RequestCounter, RequestMinute

log = structlog.get_logger("scheduler.history.usage")

FLUSH_S = 10.0  # counts reach history this often (the chart is per minute)


class SqlRequestLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    @retried
    def add_request_minutes(self, counts: Sequence[RequestMinute]) -> None:
        with self.db.tx() as tx:
            for row in counts:
                statement = self.db.upsert(request_minutes).values(
                    scope=row.scope, minute=row.minute, requests=row.requests
                )
                tx.execute(
                    statement.on_conflict_do_update(
                        index_elements=["scope", "minute"],
                        set_={"requests": request_minutes.c.requests + row.requests},
                    )
                )

    def request_minutes(self, since: datetime) -> list[RequestMinute]:
        query = (
            select(request_minutes)
            .where(request_minutes.c.minute >= since)
            .order_by(request_minutes.c.minute, request_minutes.c.scope)
        )
        with self.db.tx() as tx:
            return [RequestMinute(r.scope, r.minute, int(r.requests)) for r in tx.execute(query)]

    def prune_request_minutes(self, older_than: datetime) -> None:
        with self.db.tx() as tx:
            tx.execute(delete(request_minutes).where(request_minutes.c.minute < older_than))


class UsageWriter:
    """Drains a RequestCounter into history every `flush_s` from its own thread; what a write
    could not store is kept for the next (counts are small: a few rows a minute per key)."""

    def __init__(
        self,
        counter: RequestCounter,
        write: Callable[[Sequence[RequestMinute]], None],
        *,
        flush_s: float = FLUSH_S,
    ) -> None:
        self.counter = counter
        self._write = write
        self._flush_s = flush_s
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="request-minutes", daemon=True)
        self._thread.start()

    def flush(self) -> None:
        counts = self.counter.drain()
        if not counts:
            return
        try:
            self._write(counts)
        except StoreError as exc:
            log.warning("usage.not_recorded", minutes=len(counts), error=str(exc))
            self.counter.give_back(counts)

    def _run(self) -> None:
        while not self._closed.wait(self._flush_s):
            self.flush()

    def close(self, timeout_s: float = 5.0) -> None:
        self._closed.set()
        self._thread.join(timeout_s)
        self.flush()
