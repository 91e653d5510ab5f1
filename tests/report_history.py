"""A month of history for the report tests, written through the store's own ports (any store):
two sites in November 2026 (acme, bakery) and one task on each side of it.

acme/live:   a scheduled backup; a safe plugin update (akismet 5.0 -> 5.1, astra held back for
             min_age) verified 3/3; prune_backups deleted 2; PHP 8.1 -> 8.2, WordPress
             6.5.5 -> 6.6.2 between the snapshots of 28 Oct and 20 Nov.
bakery/live: a safe plugin update rolled back (elementor 3.2.0 quarantined, 1 of 3 checks
             passed), a failed clear_cache; a theme update (astra 4.6.0 -> 4.7.0).
Outside the month: a backup on 31 Oct 23:30 UTC and one on 1 Dec 00:30 UTC.
A 429 on 10 Nov 03:06 and on 1 Dec. Requests per minute (two keys): 10 Nov 03:05 and 03:40 (UTC), 30 Nov 23:59, 1 Dec 00:00."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from scheduler.domain import InventorySnapshot, RunTrigger, Target, TaskStatus
from scheduler.history import HistoryStore
from scheduler.ports import PlannedTask
from scheduler.usage import RequestMinute

NOV = datetime(2026, 11, 1, tzinfo=UTC)
ACME = Target("s-1", "acme", "e-1", "live")
BAKERY = Target("s-2", "bakery", "e-2", "live")

CHECKS_OK = [
    {"name": "status", "ok": True},
    {"name": "content", "ok": True},
    {"name": "php_fatals", "ok": True},
]
CHECKS_BAD = [
    {"name": "status", "ok": False},
    {"name": "content", "ok": False},
    {"name": "php_fatals", "ok": True},
]
ROLLED_BACK = (
    "bakery.example.com/ answered 500, expected 200; restored backup 77; quarantined "
    "elementor 3.2.0"
)


def _task(
    store: HistoryStore,
    target: Target,
    action: str,
    at: datetime,
    status: TaskStatus = TaskStatus.SUCCEEDED,
    *,
    job_id: str = "nightly",
    message: str = "ok",
    operations: int = 1,
    **recorded: Mapping[str, Any] | None,
) -> int:
    run = store.runs.claim_run(job_id, RunTrigger.MANUAL, at, at, started_by="test:1")
    assert run is not None
    (task_id,) = store.runs.plan_tasks(run.run_id, [PlannedTask(target, action)])
    store.tasks.start_task(task_id, at)
    for n in range(operations):
        store.tasks.start_operation(task_id, f"op-{task_id}-{n}", action, at)
    store.tasks.finish_task(task_id, status, at, message, **recorded)  # type: ignore[arg-type]
    return task_id


def _snapshot(store: HistoryStore, target: Target, at: datetime, php: str, wp: str) -> None:
    backups = tuple({"id": n, "type": "manual", "note": None, "created_at": ""} for n in range(3))
    snapshot = InventorySnapshot(target.site_name, "live", at, php, wp, (), (), backups)
    store.catalogue.record_inventory(None, None, target, snapshot)


def seed(store: HistoryStore) -> None:
    _task(store, ACME, "backup", datetime(2026, 10, 31, 23, 30, tzinfo=UTC))
    _task(store, ACME, "backup", datetime(2026, 11, 3, 3, 0, tzinfo=UTC),
          result={"backup": {"id": 501, "type": "manual"}})  # fmt: skip
    _task(
        store, ACME, "update_plugins", datetime(2026, 11, 10, 3, 5, tzinfo=UTC),
        message="updated 1 plugin: akismet 5.0 -> 5.1; site verified",
        versions_before={"plugins": {"akismet": "5.0"}},
        versions_after={"plugins": {"akismet": "5.1"}},
        result={"backup": {"id": 502}, "verify": {"ok": True, "problems": [], "checks": CHECKS_OK},
                "held_back": {"astra": "4.7.0 on offer for 2.0 h, soaking until 72.0 h (min_age)",
                              "woocommerce": "excluded"}},
    )  # fmt: skip
    _task(store, ACME, "prune_backups", datetime(2026, 11, 10, 3, 9, tzinfo=UTC), operations=2,
          result={"kept": [1, 2, 3], "deleted": [{"id": 7}, {"id": 8}]})  # fmt: skip
    _task(
        store, BAKERY, "update_plugins", datetime(2026, 11, 17, 3, 5, tzinfo=UTC),
        TaskStatus.ROLLED_BACK, message=ROLLED_BACK,
        versions_before={"plugins": {"elementor": "3.1.0"}},
        versions_after={"plugins": {"elementor": "3.1.0"}},
        result={"backup": {"id": 77}, "rolled_back_to": 77,
                "quarantined": [{"name": "elementor", "version": "3.2.0"}],
                "verify": {"ok": False, "problems": ["bakery.example.com/ answered 500"],
                           "checks": CHECKS_BAD}},
    )  # fmt: skip
    _task(store, BAKERY, "clear_cache", datetime(2026, 11, 17, 3, 20, tzinfo=UTC),
          TaskStatus.FAILED, message="Kinsta API: 500 Internal Server Error")  # fmt: skip
    _task(
        store, BAKERY, "update_themes", datetime(2026, 11, 24, 3, 0, tzinfo=UTC),
        job_id="weekly", versions_before={"themes": {"astra": "4.6.0"}},
        versions_after={"themes": {"astra": "4.7.0"}}, result={"updated": ["astra"]},
    )  # fmt: skip
    _task(store, ACME, "backup", datetime(2026, 12, 1, 0, 30, tzinfo=UTC))
    _snapshot(store, ACME, datetime(2026, 10, 28, tzinfo=UTC), "8.1", "6.5.5")
    _snapshot(store, ACME, datetime(2026, 11, 20, tzinfo=UTC), "8.2", "6.6.2")
    _snapshot(store, ACME, datetime(2026, 12, 2, tzinfo=UTC), "8.3", "6.7")
    _snapshot(store, BAKERY, datetime(2026, 11, 5, tzinfo=UTC), "8.3", "6.6.1")
    store.requests.add_request_minutes([
        RequestMinute("key-a", datetime(2026, 11, 10, 3, 5, tzinfo=UTC), 40),
        RequestMinute("key-b", datetime(2026, 11, 10, 3, 5, tzinfo=UTC), 2),
        RequestMinute("key-a", datetime(2026, 11, 10, 3, 40, tzinfo=UTC), 8),
        RequestMinute("key-a", datetime(2026, 11, 30, 23, 59, tzinfo=UTC), 5),
        RequestMinute("key-a", datetime(2026, 12, 1, 0, 0, tzinfo=UTC), 7),
    ])  # fmt: skip
    for at in (datetime(2026, 11, 10, 3, 6, tzinfo=UTC), datetime(2026, 12, 1, 1, tzinfo=UTC)):
        store.events.record_governor_event("key-a", "rate_limited", 30.0, "Kinsta answered 429", at)
    store.events.record_governor_event("key-a", "long_wait", 90.0, "queued", NOV)
