"""The pause book's contract, in memory, on a real SQLite file and on the real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler.history import HistoryStore
from scheduler.pauses import JobPause

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def pause(
    job_id: str = "nightly",
    *,
    at: datetime = T0,
    until: datetime | None = None,
    reason: str | None = "deploy freeze",
    by: str = "ops@bastion",
) -> JobPause:
    return JobPause(job_id, at, by, until, reason)


def test_a_paused_job_is_paused_until_resumed(store: HistoryStore) -> None:
    assert store.pauses.pause(pause()) is None
    found = store.pauses.paused("nightly", T0 + timedelta(days=30))
    assert found == pause() and found.paused_at.tzinfo is UTC
    assert store.pauses.paused("weekly", T0) is None
    assert store.pauses.resume("nightly", T0 + timedelta(hours=1)) == pause()
    assert store.pauses.paused("nightly", T0 + timedelta(hours=1)) is None
    assert store.pauses.resume("nightly", T0 + timedelta(hours=1)) is None  # nothing to lift


def test_a_pause_with_an_end_lifts_itself(store: HistoryStore) -> None:
    until = T0 + timedelta(hours=2)
    store.pauses.pause(pause(until=until))
    assert store.pauses.paused("nightly", until - timedelta(microseconds=1)) == pause(until=until)
    assert store.pauses.paused("nightly", until) is None
    assert store.pauses.pauses(until) == []
    assert store.pauses.resume("nightly", until) is None  # expired: removed, not reported
    assert store.pauses.paused("nightly", T0) is None  # the row went with it


def test_pausing_again_replaces_the_pause(store: HistoryStore) -> None:
    first = pause(until=T0 + timedelta(hours=1))
    store.pauses.pause(first)
    second = pause(at=T0 + timedelta(minutes=30), until=None, reason=None, by="dev@laptop")
    assert store.pauses.pause(second) == first
    assert store.pauses.paused("nightly", T0 + timedelta(days=1)) == second
    third = pause(at=T0 + timedelta(days=2), until=T0 + timedelta(days=3))
    assert store.pauses.pause(third) == second
    fourth = pause(at=T0 + timedelta(days=4))
    assert store.pauses.pause(fourth) is None  # the one it replaced had expired


def test_every_pause_in_force_by_job_id(store: HistoryStore) -> None:
    store.pauses.pause(pause("weekly"))
    store.pauses.pause(pause("hourly", until=T0 + timedelta(hours=1)))
    store.pauses.pause(pause("daily", until=T0 + timedelta(days=1)))
    later = T0 + timedelta(hours=2)
    assert [p.job_id for p in store.pauses.pauses(T0)] == ["daily", "hourly", "weekly"]
    assert [p.job_id for p in store.pauses.pauses(later)] == ["daily", "weekly"]


def test_times_are_stored_in_utc(store: HistoryStore) -> None:
    zone = ZoneInfo("America/New_York")
    until = T0 + timedelta(days=1)
    store.pauses.pause(pause(at=T0.astimezone(zone), until=until.astimezone(zone)))
    (found,) = store.pauses.pauses(T0.astimezone(zone))
    assert (found.paused_at, found.until) == (T0, until)
    assert found.paused_at.tzinfo is UTC and found.until is not None and found.until.tzinfo is UTC
