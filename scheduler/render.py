"""History as tables, JSON and CSV. Tables show the user's local zone; JSON and CSV show UTC."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

from rich.console import Console
from rich.table import Table

from scheduler.domain import (
    CancelRequest,
    DaemonEvent,
    GovernorEvent,
    InventorySnapshot,
    NotificationRecord,
    OperationRecord,
    Run,
    RunStatus,
    SiteAction,
    Task,
)

RUN_FIELDS = (
    "run_id", "job_id", "trigger", "scheduled_for", "started_at", "finished_at", "status",
    "tasks_total", "tasks_failed", "error", "started_by", "requested_by",
)  # fmt: skip
TASK_FIELDS = (
    "run_id", "site", "environment", "action", "status", "operation_id", "operation_status",
    "message", "started_at", "finished_at", "attempts", "changes",
)  # fmt: skip


def utc_iso(value: datetime | None) -> str | None:
    if not value:
        return None
    if value.tzinfo is not UTC:  # the stores hand back UTC already (`sites`: 30,000 a fleet)
        value = value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def local(value: datetime | None, zone: tzinfo | None = None) -> str:
    if value is None:
        return ""
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def run_json(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "job_id": run.job_id,
        "trigger": run.trigger.value,
        "scheduled_for": utc_iso(run.scheduled_for),
        "started_at": utc_iso(run.started_at),
        "finished_at": utc_iso(run.finished_at),
        "status": run.status.value,
        "tasks_total": run.tasks_total,
        "tasks_failed": run.tasks_failed,
        "error": run.error,
        "started_by": run.started_by,
        "requested_by": run.requested_by,
        "targets": list(run.targets),
        "cancel": cancel_json(run.cancel),
    }


def cancel_json(request: CancelRequest | None) -> dict[str, Any] | None:
    """A cancel asked of a run (`cancel RUN_ID`): when, by whom (user@host), why."""
    if request is None:
        return None
    return {
        "requested_at": utc_iso(request.at),
        "requested_by": request.by,
        "reason": request.reason,
    }


def operation_json(op: OperationRecord) -> dict[str, Any]:
    return {
        "operation_id": op.operation_id,
        "action": op.action,
        "state": op.state.value,
        "started_at": utc_iso(op.started_at),
        "finished_at": utc_iso(op.finished_at),
        "polls": op.polls,
        "message": op.message,
        "timeline": [
            {
                "at": utc_iso(e.at),
                "state": e.state.value,
                "http_status": e.http_status,
                "message": e.message,
            }
            for e in op.events
        ],
    }


def task_json(task: Task, *, with_operations: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task_id": task.task_id,
        "run_id": task.run_id,
        "site": task.site,
        "environment": task.environment,
        "action": task.action,
        "status": task.status.value,
        "operation_id": task.operation_id,
        "operation_status": task.operation_status,
        "message": task.message,
        "started_at": utc_iso(task.started_at),
        "finished_at": utc_iso(task.finished_at),
        "attempts": task.attempts,
        "changes": changes(task),
        "versions_before": task.versions_before,
        "versions_after": task.versions_after,
        "result": task.result,
    }
    if with_operations:
        body["operations"] = [operation_json(op) for op in task.operations]
    return body


def changes(task: Task) -> str:
    """What a task changed, compactly: "akismet 5.3 -> 5.3.1, astra 4.6 -> 4.7"."""
    before, after = task.versions_before or {}, task.versions_after or {}
    moves = []
    for kind, items in before.items():
        for name, old in items.items():
            new = (after.get(kind) or {}).get(name)
            moves.append(f"{name} {old} -> {new}" if new != old else f"{name} {old} (unchanged)")
    return ", ".join(moves)


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2)


def to_csv(rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _duration(start: datetime | None, end: datetime | None) -> str:
    if not start or not end:
        return ""
    return f"{(end - start).total_seconds():.1f}s"


def runs_table(runs: Sequence[Run], console: Console) -> None:
    table = Table(title=f"{len(runs)} run(s)", title_justify="left")
    for column in (
        "run",
        "job",
        "trigger",
        "scheduled for",
        "status",
        "tasks",
        "failed",
        "took",
        "error",
    ):
        table.add_column(column, no_wrap=column not in ("error",))
    for run in runs:
        table.add_row(
            str(run.run_id),
            run.job_id,
            run.trigger.value + (f"\n{run.requested_by}" if run.requested_by else ""),
            local(run.scheduled_for),
            run.status.value,
            str(run.tasks_total),
            str(run.tasks_failed),
            _duration(run.started_at, run.finished_at),
            run.error or "",
        )
    console.print(table)


def tasks_table(tasks: Sequence[Task], console: Console, title: str) -> None:
    table = Table(title=title, title_justify="left")
    for column in (
        "run",
        "site",
        "env",
        "action",
        "status",
        "operation",
        "op status",
        "took",
        "message",
    ):
        table.add_column(column, no_wrap=column not in ("message", "operation"))
    show_changes = any(t.versions_before for t in tasks)
    if show_changes:
        table.add_column("versions")
    for task in tasks:
        table.add_row(
            str(task.run_id),
            task.site,
            task.environment,
            task.action,
            task.status.value,
            task.operation_id or "",
            task.operation_status or "",
            _duration(task.started_at, task.finished_at),
            task.message or "",
            *([changes(task).replace(", ", "\n")] if show_changes else []),
        )
    console.print(table)


def run_detail(run: Run, tasks: Sequence[Task], console: Console) -> None:
    console.print(
        f"run {run.run_id}  job {run.job_id}  "
        f"trigger {run.trigger.value}  status {run.status.value}\n"
        f"scheduled for {local(run.scheduled_for)}  started {local(run.started_at)}  "
        f"finished {local(run.finished_at)}  by {run.started_by or '-'}"
        + (f"\nrequested by {run.requested_by}" if run.requested_by else "")
    )
    if run.error:
        stopped = run.status in (RunStatus.CANCELLED, RunStatus.HALTED)
        console.print(f"{'reason' if stopped else 'error'}: {run.error}")
    if run.cancel and run.finished_at is None:
        asked = f"{run.cancel.by} at {local(run.cancel.at)}"
        console.print(
            f"cancel requested by {asked}" + (f": {run.cancel.reason}" if run.cancel.reason else "")
        )
    tasks_table(tasks, console, f"{len(tasks)} task(s), {run.tasks_failed} failed")
    for task in tasks:
        for op in task.operations:
            steps = "  ->  ".join(f"{local(e.at)} {e.state.value}" for e in op.events)
            console.print(
                f"  {task.site}/{task.environment} {op.operation_id} ({op.polls} polls): {steps}"
            )


GOVERNOR_FIELDS = ("at", "scope", "kind", "seconds", "detail")


def governor_event_json(event: GovernorEvent) -> dict[str, Any]:
    seconds = round(event.seconds, 3) if event.seconds is not None else None
    return {
        "at": utc_iso(event.at),
        "scope": event.scope,
        "kind": event.kind,
        "seconds": seconds,
        "detail": event.detail,
    }


def governor_table(events: Sequence[GovernorEvent], console: Console) -> None:
    table = Table(title=f"{len(events)} governor event(s)", title_justify="left")
    for column in ("at", "key", "kind", "seconds", "detail"):
        table.add_column(column, no_wrap=column != "detail")
    for e in events:
        seconds = f"{e.seconds:.1f}" if e.seconds is not None else ""
        table.add_row(local(e.at), e.scope, e.kind, seconds, e.detail or "")
    console.print(table)


DAEMON_EVENT_FIELDS = ("at", "owner", "kind", "detail")


def daemon_event_json(event: DaemonEvent) -> dict[str, Any]:
    return {
        "at": utc_iso(event.at),
        "owner": event.owner,
        "kind": event.kind,
        "detail": event.detail,
    }


def daemon_events_table(events: Sequence[DaemonEvent], console: Console) -> None:
    table = Table(title=f"{len(events)} daemon event(s)", title_justify="left")
    for column in ("at", "daemon", "kind", "detail"):
        table.add_column(column, no_wrap=column != "detail")
    for e in events:
        table.add_row(local(e.at), e.owner or "", e.kind, e.detail or "")
    console.print(table)


NOTIFICATION_FIELDS = ("at", "job_id", "run_id", "kind", "channel", "destination", "ok", "detail")


def notification_json(record: NotificationRecord) -> dict[str, Any]:
    return {
        "at": utc_iso(record.at),
        "job_id": record.job_id,
        "run_id": record.run_id,
        "kind": record.kind,
        "channel": record.channel,
        "destination": record.destination,
        "ok": record.ok,
        "detail": record.detail,
    }


def notifications_table(records: Sequence[NotificationRecord], console: Console) -> None:
    table = Table(title=f"{len(records)} notification(s)", title_justify="left")
    for column in ("at", "job", "run", "kind", "channel", "to", "delivered", "detail"):
        table.add_column(column, no_wrap=column != "detail")
    for r in records:
        table.add_row(
            local(r.at),
            r.job_id or "",
            str(r.run_id or ""),
            r.kind,
            r.channel,
            r.destination or "",
            "yes" if r.ok else "NO",
            r.detail or "",
        )
    console.print(table)


SITE_ACTION_FIELDS = (
    "site", "environment", "action", "last_status", "last_finished_at", "last_run_id",
    "last_message", "last_success_at", "last_failure_at", "last_failure_message",
)  # fmt: skip


def site_action_json(entry: SiteAction) -> dict[str, Any]:
    return {
        "site": entry.site,
        "environment": entry.environment,
        "action": entry.action,
        "last_status": entry.last_status.value,
        "last_finished_at": utc_iso(entry.last_finished_at),
        "last_run_id": entry.last_run_id,
        "last_message": entry.last_message,
        "last_success_at": utc_iso(entry.last_success_at),
        "last_failure_at": utc_iso(entry.last_failure_at),
        "last_failure_message": entry.last_failure_message,
    }


def inventory_json(snapshot: InventorySnapshot) -> dict[str, Any]:
    return {
        "environment": snapshot.environment,
        "taken_at": utc_iso(snapshot.taken_at),
        "run_id": snapshot.run_id,
        "php_version": snapshot.php_version,
        "wordpress_version": snapshot.wordpress_version,
        "pending_updates": snapshot.pending_updates,
        "plugins": [dict(p) for p in snapshot.plugins],
        "themes": [dict(t) for t in snapshot.themes],
        "backups": [dict(b) for b in snapshot.backups],
    }


def sites_json(
    entries: Sequence[SiteAction], inventory: Sequence[InventorySnapshot] = ()
) -> list[dict[str, Any]]:
    """One object per site: its latest success and failure, each action's latest outcome, and
    each environment's latest inventory (PHP, WordPress, plugin and theme versions)."""
    by_site: dict[str, list[SiteAction]] = {}
    snapshots: dict[str, list[InventorySnapshot]] = {}
    for snapshot in inventory:
        snapshots.setdefault(snapshot.site, []).append(snapshot)
        by_site.setdefault(snapshot.site, [])
    for entry in entries:
        by_site.setdefault(entry.site, []).append(entry)
    out = []
    for site, actions in sorted(by_site.items()):
        successes = [a.last_success_at for a in actions if a.last_success_at]
        failures = [a for a in actions if a.last_failure_at]
        worst = max(failures, key=lambda a: a.last_failure_at or a.last_finished_at, default=None)
        failure = (
            f"{worst.action} on {worst.environment}: {worst.last_failure_message}"
            if worst
            else None
        )
        out.append({
            "site": site,
            "environments": sorted(
                {a.environment for a in actions}
                | {s.environment for s in snapshots.get(site, [])}
            ),
            "last_success_at": utc_iso(max(successes)) if successes else None,
            "last_failure_at": utc_iso(worst.last_failure_at) if worst else None,
            "last_failure": failure,
            "actions": [site_action_json(a) for a in actions],
            "inventory": [inventory_json(s) for s in snapshots.get(site, [])],
        })  # fmt: skip
    return out


def sites_table(rows: Sequence[dict[str, Any]], console: Console) -> None:
    table = Table(title=f"{len(rows)} site(s)", title_justify="left")
    for column in (
        "site",
        "environments",
        "installed (latest inventory)",
        "last run per action",
        "last success",
        "last failure",
    ):
        table.add_column(column, no_wrap=column in ("site", "last success"))
    for row in rows:
        latest = "\n".join(
            f"{a['action']} ({a['environment']}): {a['last_status']} "
            f"{_local_iso(a['last_finished_at'])}"
            for a in row["actions"]
        )
        failure = (
            f"{_local_iso(row['last_failure_at'])} {row['last_failure']}"
            if row["last_failure_at"]
            else ""
        )
        installed = "\n".join(_installed(entry) for entry in row["inventory"])
        table.add_row(
            row["site"],
            ", ".join(row["environments"]),
            installed,
            latest,
            _local_iso(row["last_success_at"]),
            failure,
        )
    console.print(table)


def _installed(entry: dict[str, Any]) -> str:
    """One environment's latest inventory, in a few lines."""
    items = [
        f"{item['name']} {item['version']}"
        + (f" (-> {item['update_version']})" if item.get("update_version") else "")
        + (" held back: quarantined" if item.get("quarantined") else "")
        for item in (*entry["plugins"], *entry["themes"])
    ]
    return (
        f"{entry['environment']}: PHP {entry['php_version'] or '?'}, "
        f"WordPress {entry['wordpress_version'] or '?'}, {entry['pending_updates']} update(s) "
        f"pending, as of {_local_iso(entry['taken_at'])}\n  " + "\n  ".join(items)
    )


def _local_iso(value: str | None) -> str:
    return local(datetime.fromisoformat(value)) if value else ""
