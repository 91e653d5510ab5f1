"""The rate governor's events leave the request path (issue 11 item 24): a request that waited
long only queues its event; a background writer records the queue, merging long waits."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.bootstrap import open_services
from scheduler.clock import SystemClock
from scheduler.config import parse
from scheduler.domain import GovernorEvent
from scheduler.history import sql_store
from scheduler.history.events import EventWriter, SqlEventLog, merge

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_long_waits_are_recorded_off_the_request_path_and_merged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writers: list[str] = []
    for name in ("record_governor_event", "record_governor_events"):
        original = getattr(SqlEventLog, name)

        def spy(self: SqlEventLog, *args: object, _original: object = original) -> None:
            writers.append(threading.current_thread().name)
            _original(self, *args)  # type: ignore[operator]

        monkeypatch.setattr(SqlEventLog, name, spy)
    text = f"""version: 1
database: sqlite:///{tmp_path / "history.db"}
kinsta:
  rate_limits: {{per_minute: 2, window: 0.4s}}
sandbox: {{sites: 1, seed: 1}}
jobs: []
"""
    services = open_services(
        parse(text, str(tmp_path / "jobs.yaml"), {}), sandbox=True, upgrade_sqlite=True
    )
    (client,) = services.clients.values()
    (governor,) = services.governors.values()

    def burst() -> None:
        for _ in range(3):
            client.validate()

    threads = [threading.Thread(target=burst, name=f"request-{i}") for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert governor.total_wait_s > 2  # 12 requests at 2 per 0.4 s: most waited long
    services.close()
    assert writers and set(writers) == {"governor-events"}  # never a request's own thread
    events = sql_store(services.store.engine).events.governor_events()
    assert 1 <= len(events) <= 4 and all(e.kind == "long_wait" for e in events)
    assert any("requests waited" in (e.detail or "") for e in events)  # merged


def test_merge_keeps_every_other_event_and_one_long_wait_per_key() -> None:
    at = [T0 + timedelta(seconds=i) for i in range(5)]
    batch = [
        GovernorEvent(at[0], "a", "long_wait", 31.0, "GET /sites waited for company:a"),
        GovernorEvent(at[1], "a", "rate_limited", 60.0, "Kinsta answered 429"),
        GovernorEvent(at[2], "a", "long_wait", 45.0, "POST /sites waited for creation:a"),
        GovernorEvent(at[3], "b", "long_wait", 33.0, "GET /validate waited for company:b"),
    ]
    assert merge(batch) == [
        GovernorEvent(
            at[0],
            "a",
            "long_wait",
            45.0,
            "2 requests waited 31-45s; longest: POST /sites waited for creation:a",
        ),
        batch[1],
        batch[3],
    ]


def test_a_failing_database_loses_events_not_requests() -> None:
    from scheduler.errors import StoreError

    def refuse(events: Sequence[GovernorEvent]) -> None:
        raise StoreError("database is locked", transient=True)

    writer = EventWriter(refuse, SystemClock(), flush_s=0.01)
    writer("a", "ledger_unavailable", None, "the ledger is unreachable")  # returns at once
    writer.close()
    assert writer.written == 0
