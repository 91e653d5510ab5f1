"""How long an operation took, from its recorded sightings (history/store.operation_duration_s)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from scheduler.durations import operation_duration_s

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def sighting(state: str, after_s: float, waited_s: float | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"at": (T0 + timedelta(seconds=after_s)).isoformat(), "state": state}
    if waited_s is not None:
        event["waited_s"] = waited_s
    return event


def estimate(*events: dict[str, Any]) -> float | None:
    done = next(e for e in events if e["state"] == "succeeded")
    return operation_duration_s(T0, datetime.fromisoformat(done["at"]), list(events))


def test_a_prompt_done_sighting_is_the_duration() -> None:
    assert estimate(sighting("pending", 0), sighting("succeeded", 4.2, waited_s=0.0)) == 4.2


def test_time_spent_waiting_for_rate_budget_does_not_count() -> None:
    assert estimate(sighting("succeeded", 10.0, waited_s=6.0)) == 4.0


def test_never_shorter_than_the_last_running_sighting() -> None:
    late = estimate(sighting("in_progress", 3.0), sighting("succeeded", 9.0, waited_s=8.0))
    assert late == 3.0


def test_old_records_without_waits_use_the_done_sighting() -> None:
    assert estimate(sighting("in_progress", 1.0), sighting("succeeded", 2.5)) == 2.5
