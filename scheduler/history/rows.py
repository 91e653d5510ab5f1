"""Row shapes both stores share (no SQLAlchemy): an operation's timeline as stored JSON, UTC."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from scheduler.domain import (
    FINAL_OPERATION_STATES,
    CancelRequest,
    InventorySnapshot,
    OperationEvent,
    OperationRecord,
    OperationState,
    Run,
    RunStatus,
    RunTrigger,
    SiteAction,
    Task,
    TaskStatus,
)

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


def run_from(row: Any) -> Run:
    """A run from its row: a SQL result row, or the in-memory store's row (same names)."""
    return Run(
        run_id=row.id,
        job_id=row.job_id,
        trigger=RunTrigger(row.trigger),
        scheduled_for=row.scheduled_for,
        started_at=row.started_at,
        finished_at=row.finished_at,
        status=RunStatus(row.status),
        tasks_total=row.tasks_total,
        tasks_failed=row.tasks_failed,
        error=row.error,
        started_by=row.started_by,
        targets=tuple(row.targets or ()),
        owner_token=row.owner_token,
        cancel=cancel_from(row),
        requested_by=row.requested_by,
    )


def cancel_from(row: Any) -> CancelRequest | None:
    """The cancel asked of a run, from its row's (or a heartbeat's RETURNING) columns."""
    if row.cancel_requested_at is None:
        return None
    return CancelRequest(
        utc(row.cancel_requested_at), row.cancel_requested_by or "?", row.cancel_reason
    )


def task_from(
    row: Any, ops: tuple[OperationRecord, ...] = (), fresh: Callable[[Any], Any] = lambda v: v
) -> Task:
    """A task from its row; `fresh` copies its JSON fields where the row is kept in memory."""
    return Task(
        task_id=row.id,
        run_id=row.run_id,
        site=row.site,
        environment=row.environment,
        action=row.action,
        status=TaskStatus(row.status),
        operation_id=row.operation_id,
        operation_status=row.operation_status,
        message=row.message,
        started_at=row.started_at,
        finished_at=row.finished_at,
        attempts=row.attempts,
        site_id=row.site_id,
        environment_id=row.environment_id,
        operations=ops,
        versions_before=fresh(row.versions_before),
        versions_after=fresh(row.versions_after),
        result=fresh(row.result),
    )


def operation_from(row: Any) -> OperationRecord:
    return OperationRecord(
        operation_id=row.operation_id,
        action=row.action,
        state=OperationState(row.state),
        started_at=row.started_at,
        finished_at=row.finished_at,
        polls=row.polls,
        message=row.message,
        events=events_from_json(row.events),
    )


TASK_STATUS_OF = {status.value: status for status in TaskStatus}


def site_action_from(row: Any) -> SiteAction:
    """`row`: site_actions' columns in the table's order (SiteAction's). Unpacked by position,
    the status by lookup: `sites` maps ten thousand of these for a fleet of a thousand sites,
    and a Row's attribute access costs more than the rest of the mapping."""
    site, environment, action, run_id, status, finished_at, message, *last = row
    return SiteAction(
        site, environment, action, run_id, TASK_STATUS_OF[status], finished_at, message, *last
    )


def snapshot_from(row: Any) -> InventorySnapshot:
    return InventorySnapshot(
        site=row.site,
        environment=row.environment,
        taken_at=utc(row.taken_at),
        php_version=row.php_version,
        wordpress_version=row.wordpress_version,
        plugins=tuple(row.plugins or ()),
        themes=tuple(row.themes or ()),
        backups=tuple(row.backups or ()),
        run_id=row.run_id,
    )
