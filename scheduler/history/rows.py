"""Row shapes both stores share (no SQLAlchemy): an operation's timeline as stored JSON, UTC."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from scheduler.domain import FINAL_OPERATION_STATES, OperationEvent, OperationState, TaskStatus

FINAL_STATE_VALUES = tuple(sorted(s.value for s in FINAL_OPERATION_STATES))


def utc(value: datetime) -> datetime:
    """Aware in UTC; naive values (SQLite hands them back so) are UTC already."""
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def event_json(event: OperationEvent) -> dict[str, Any]:
    body: dict[str, Any] = {
        "at": event.at.isoformat(),
        "state": event.state.value,
        "http_status": event.http_status,
        "message": event.message,
    }
    if event.waited_s is not None:
        body["waited_s"] = round(event.waited_s, 3)
    if event.late:
        body["late"] = True
    return body


def events_from_json(stored: Iterable[Mapping[str, Any]] | None) -> tuple[OperationEvent, ...]:
    return tuple(
        OperationEvent(
            at=datetime.fromisoformat(e["at"]),
            state=OperationState(e["state"]),
            http_status=e.get("http_status"),
            message=e.get("message"),
            waited_s=e.get("waited_s"),
            late=bool(e.get("late", False)),
        )
        for e in (stored or [])
    )


def latest_outcome(
    run_id: int, status: TaskStatus, now: datetime, message: str | None
) -> dict[str, Any]:
    """The site_actions columns a finished task sets (the failure or success ones by status)."""
    latest: dict[str, Any] = {
        "last_run_id": run_id,
        "last_status": status.value,
        "last_finished_at": now,
        "last_message": message,
    }
    if status is TaskStatus.SUCCEEDED:
        latest["last_success_at"] = now
    if status.is_failure:
        latest.update(last_failure_at=now, last_failure_message=message)
    return latest
