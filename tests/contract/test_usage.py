"""Requests per key and minute: the contract, in memory, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler.history import HistoryStore
from scheduler.usage import RequestMinute

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def test_counts_of_one_minute_add_up(store: HistoryStore) -> None:
    store.requests.add_request_minutes(
        [RequestMinute("key-a", T0, 3), RequestMinute("key-b", T0, 1)]
    )
    store.requests.add_request_minutes([RequestMinute("key-a", T0, 4)])  # another process
    store.requests.add_request_minutes([RequestMinute("key-a", T0 + timedelta(minutes=1), 2)])
    assert store.requests.request_minutes(T0) == [
        RequestMinute("key-a", T0, 7),
        RequestMinute("key-b", T0, 1),
        RequestMinute("key-a", T0 + timedelta(minutes=1), 2),
    ]
    found = store.requests.request_minutes(T0 + timedelta(seconds=30))
    assert [(r.minute, r.requests) for r in found] == [(T0 + timedelta(minutes=1), 2)]
    assert found[0].minute.tzinfo is UTC


def test_a_minute_in_another_zone_is_the_same_minute(store: HistoryStore) -> None:
    paris = T0.astimezone(ZoneInfo("Europe/Paris"))
    store.requests.add_request_minutes(
        [RequestMinute("key", T0, 1), RequestMinute("key", paris, 1)]
    )
    assert store.requests.request_minutes(T0 - timedelta(hours=1)) == [RequestMinute("key", T0, 2)]


def test_prune_removes_old_minutes(store: HistoryStore) -> None:
    old, new = T0 - timedelta(days=40), T0 - timedelta(days=1)
    store.requests.add_request_minutes([RequestMinute("key", old, 5), RequestMinute("key", new, 6)])
    store.maintenance.prune(T0 - timedelta(days=30), keep_last=0, dry_run=True)
    assert len(store.requests.request_minutes(old)) == 2
    store.maintenance.prune(T0 - timedelta(days=30), keep_last=0)
    assert store.requests.request_minutes(old) == [RequestMinute("key", new, 6)]
