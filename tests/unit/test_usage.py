"""Requests per minute: the governor counts each request it grants, the counter sums them per
key and minute, the writer hands them to history and keeps what a failed write could not store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from scheduler.domain import RateLimits
from scheduler.errors import StoreError
from scheduler.history.usage import UsageWriter
from scheduler.kinsta.governor import RateGovernor, if_idle
from scheduler.usage import RequestCounter, RequestMinute
from tests.conftest import FakeClock

T0 = datetime(2026, 11, 1, 12, 0, 30, tzinfo=UTC)
MINUTE = T0.replace(second=0)


def test_the_governor_counts_each_granted_request_per_minute() -> None:
    clock = FakeClock(T0)
    counter = RequestCounter(clock.now)
    governor = RateGovernor(RateLimits(), clock, scope="abc", on_request=counter.count)
    for _ in range(3):
        with governor.permit("GET", "/sites"):
            pass
    clock.advance(60)
    with if_idle(), governor.permit("GET", "/operations/1"):
        pass
    assert counter.drain() == [
        RequestMinute("abc", MINUTE, 3),
        RequestMinute("abc", MINUTE + timedelta(minutes=1), 1),
    ]
    assert counter.drain() == []


def test_a_failed_write_keeps_the_counts_for_the_next() -> None:
    counter = RequestCounter(lambda: T0)
    written: list[RequestMinute] = []
    fail = [True]

    def write(rows: Sequence[RequestMinute]) -> None:
        if fail[0]:
            raise StoreError("database away")
        written.extend(rows)

    writer = UsageWriter(counter, write, flush_s=3600)
    counter.count("k")
    writer.flush()
    counter.count("k")
    fail[0] = False
    writer.close()
    assert written == [RequestMinute("k", MINUTE, 2)]
