"""The reads of client reports in memory (scheduler.reporting.ReportReads), as the SQL store
answers them."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from scheduler.history.memory.records import best_per_environment, snapshot_copy
from scheduler.history.memory.state import MemoryState, TaskRow, aware, copied
from scheduler.reporting import ENDED, RATE_LIMITED, InventoryEdge, PeriodTask


class MemoryReportReads:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    def period_tasks(
        self, since: datetime, until: datetime, sites: Collection[str] | None = None
    ) -> list[PeriodTask]:
        since, until = aware(since), aware(until)
        wanted = None if sites is None else set(sites)
        with self._s.lock:
            ops: dict[int, int] = {}
            for op in self._s.operations.values():
                ops[op.task_id] = ops.get(op.task_id, 0) + 1
            found = [
                self._task(t, ops.get(t.id, 0))
                for t in self._s.tasks.values()
                if since <= self._s.runs[t.run_id].scheduled_for < until
                and t.status in ENDED
                and (wanted is None or t.site in wanted)
            ]
        return sorted(found, key=lambda t: (t.at, t.task_id))

    def _task(self, row: TaskRow, operations: int) -> PeriodTask:
        run = self._s.runs[row.run_id]
        return PeriodTask(
            task_id=row.id,
            run_id=row.run_id,
            job_id=run.job_id,
            site=row.site,
            environment=row.environment,
            action=row.action,
            status=row.status,
            at=row.finished_at or row.started_at or run.scheduled_for,
            message=row.message,
            versions_before=copied(row.versions_before),
            versions_after=copied(row.versions_after),
            result=copied(row.result),
            operations=operations,
        )

    def inventory_edges(
        self, since: datetime, until: datetime, sites: Collection[str] | None = None
    ) -> list[InventoryEdge]:
        since, until = aware(since), aware(until)
        wanted = None if sites is None else set(sites)
        with self._s.lock:
            rows = [
                r for r in self._s.inventory.values() if wanted is None or r.snapshot.site in wanted
            ]
            last = best_per_environment(rows, lambda at: at < until, newest=True)
            first = best_per_environment(rows, lambda at: at <= since, newest=True)
            inside = best_per_environment(rows, lambda at: since < at < until, newest=False)
        return [
            InventoryEdge(
                key[0],
                key[1],
                snapshot_copy((first.get(key) or inside[key]).snapshot),
                snapshot_copy(row.snapshot),
            )
            for key, row in sorted(last.items())
        ]

    def requests_by_hour(
        self, since: datetime, until: datetime, scopes: Collection[str] | None = None
    ) -> dict[datetime, int]:
        since, until = aware(since), aware(until)
        wanted = None if scopes is None else set(scopes)
        hours: dict[datetime, int] = {}
        with self._s.lock:
            for (scope, minute), requests in self._s.request_minutes.items():
                if since <= minute < until and (wanted is None or scope in wanted):
                    hour = minute.replace(minute=0, second=0, microsecond=0)
                    hours[hour] = hours.get(hour, 0) + requests
        return hours

    def rate_limited_by_minute(
        self, since: datetime, until: datetime, scopes: Collection[str] | None = None
    ) -> dict[datetime, int]:
        since, until = aware(since), aware(until)
        wanted = None if scopes is None else set(scopes)
        minutes: dict[datetime, int] = {}
        with self._s.lock:
            for event in self._s.governor_events.values():
                if (
                    event.kind == RATE_LIMITED
                    and since <= event.at < until
                    and (wanted is None or event.scope in wanted)
                ):
                    minute = event.at.astimezone(UTC).replace(second=0, microsecond=0)
                    minutes[minute] = minutes.get(minute, 0) + 1
        return minutes

    def known_sites(self) -> set[str]:
        with self._s.lock:
            acted = {site for site, _, _ in self._s.site_actions}
            return acted | {r.snapshot.site for r in self._s.inventory.values()}
