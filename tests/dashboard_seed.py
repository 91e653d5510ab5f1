"""A small history for the dashboard's tests: three sites, two jobs, a failed and a rolled-back
task, a running run, an inventory with updates on offer (one quarantined), governor events,
requests per minute and a pause, all placed relative to `now`."""

from __future__ import annotations

from datetime import datetime, timedelta

from scheduler.domain import (
    InventorySnapshot,
    OperationEvent,
    OperationState,
    RunStatus,
    RunTrigger,
    Target,
    TaskStatus,
)
from scheduler.history import HistoryStore
from scheduler.pauses import JobPause
from scheduler.ports import PlannedTask, QuarantineEntry
from scheduler.usage import RequestMinute

SITES = [
    Target("s1", "alpha", "e1", "live"),
    Target("s1", "alpha", "e2", "staging"),
    Target("s2", "beta", "e3", "live"),
    Target("s3", "gamma", "e4", "live"),
]
JOBS_YAML = """version: 1
database: {url}
kinsta:
  rate_limits: {{per_minute: 120}}
blackouts:
  - name: freeze
    from: "2030-12-20T00:00"
    to: "2030-12-27T00:00"
    timezone: Europe/Amsterdam
jobs:
  - id: nightly
    schedule: {{cron: "30 2 * * *", timezone: Europe/Amsterdam}}
    targets: {{environment: all}}
    actions: [backup, clear_cache]
  - id: hourly
    schedule: {{every: 1h}}
    targets: {{environment: live}}
    actions: [inventory]
"""


def _run(
    store: HistoryStore, job: str, at: datetime, outcomes: list[tuple[Target, str, TaskStatus]]
) -> int:
    run = store.runs.claim_run(job, RunTrigger.SCHEDULE, at, at, started_by="seed:1")
    assert run is not None
    ids = store.runs.plan_tasks(run.run_id, [PlannedTask(t, a) for t, a, _ in outcomes])
    for n, (task_id, (target, action, status)) in enumerate(zip(ids, outcomes, strict=True)):
        if status is TaskStatus.PENDING:
            continue
        store.tasks.start_task(task_id, at)
        row = store.tasks.start_operation(
            task_id, f"{action}:{target.environment_id}-{n}", action, at
        )
        end = at + timedelta(seconds=5 + n)
        store.tasks.operation_event(
            row,
            OperationEvent(at + timedelta(seconds=2), OperationState.IN_PROGRESS, 202, "busy"),
            1,
        )
        final = (
            OperationState.SUCCEEDED if status is TaskStatus.SUCCEEDED else OperationState.FAILED
        )
        store.tasks.operation_event(row, OperationEvent(end, final, 200, "done"), 2)
        message = None if status is TaskStatus.SUCCEEDED else "site answered 500 after update"
        store.tasks.finish_task(task_id, status, end, message)
    return run.run_id


def seed(store: HistoryStore, now: datetime) -> dict[str, int]:
    """Fill `store`; the run ids by name."""
    alpha, alpha_staging, beta, gamma = SITES
    day = timedelta(days=1)
    ok, failed = TaskStatus.SUCCEEDED, TaskStatus.FAILED
    old = _run(store, "nightly", now - 3 * day, [(alpha, "backup", ok), (beta, "backup", ok)])
    store.runs.finish_run(old, RunStatus.SUCCEEDED, now - 3 * day + timedelta(minutes=1), None)
    bad = _run(
        store,
        "nightly",
        now - day,
        [(alpha, "backup", ok), (alpha_staging, "clear_cache", ok), (beta, "clear_cache", failed)],
    )
    store.runs.finish_run(
        bad, RunStatus.FAILED, now - day + timedelta(minutes=1), "1 task(s) failed"
    )
    hourly = _run(store, "hourly", now - timedelta(hours=2), [(gamma, "inventory", ok)])
    store.runs.finish_run(
        hourly, RunStatus.SUCCEEDED, now - timedelta(hours=2) + timedelta(seconds=30), None
    )
    running = _run(
        store,
        "hourly",
        now - timedelta(minutes=5),
        [(alpha, "inventory", ok), (beta, "inventory", TaskStatus.PENDING)],
    )
    store.catalogue.record_inventory(
        None,
        hourly,
        gamma,
        InventorySnapshot(
            "gamma",
            "live",
            now - timedelta(hours=2),
            "8.3",
            "6.7",
            (
                {"name": "akismet", "version": "5.3", "update_version": "5.3.1"},
                {"name": "astra-pro", "version": "4.6", "update_version": "4.7"},
            ),
            (),
            (
                {
                    "id": "b1",
                    "type": "manual",
                    "note": None,
                    "created_at": (now - timedelta(hours=3)).isoformat(),
                },
            ),
        ),
    )
    store.quarantine.add(
        QuarantineEntry(
            "plugins",
            "astra-pro",
            "4.7",
            "home page title changed",
            now - 2 * day,
            site="beta",
            environment="live",
            run_id=bad,
        )
    )
    store.events.record_governor_event(
        "fp-default", "rate_limited", 12.0, "Kinsta answered 429", now - day + timedelta(seconds=20)
    )
    store.events.record_governor_event(
        "fp-default", "long_wait", 40.0, "GET /sites waited", now - timedelta(hours=1)
    )
    minute = now.replace(second=0, microsecond=0)
    store.requests.add_request_minutes(
        [RequestMinute("fp-default", minute - timedelta(minutes=m), 10 + m) for m in range(1, 30)]
    )
    store.pauses.pause(
        JobPause("hourly", now - timedelta(hours=1), "ops@bastion", now + day, "migration")
    )
    return {"old": old, "bad": bad, "hourly": hourly, "running": running}
