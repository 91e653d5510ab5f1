"""EventLog, Catalogue, the read side and maintenance in memory."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from scheduler.domain import (
    DaemonEvent,
    GovernorEvent,
    InventorySnapshot,
    NotificationRecord,
    OperationState,
    Run,
    RunStatus,
    SiteAction,
    Target,
    Task,
)
from scheduler.durations import operation_duration_s, typical_duration_s, typical_polls
from scheduler.history.memory.state import (
    InventoryRow,
    MemoryState,
    OperationRow,
    aware,
    copied,
    maybe,
)
from scheduler.history.memory.usage import MemoryRequestLog
from scheduler.ports import PruneResult, RunFilter, TaskFilter
from scheduler.rollout import WaveRecord

E = TypeVar("E", GovernorEvent, DaemonEvent, NotificationRecord)
V = TypeVar("V")


def _newest(
    rows: dict[int, E], since: datetime | None, limit: int, until: datetime | None = None
) -> list[E]:
    since, until = maybe(since), maybe(until)
    found = [
        (i, e)
        for i, e in rows.items()
        if (since is None or e.at >= since) and (until is None or e.at <= until)
    ]
    found.sort(key=lambda pair: (pair[1].at, pair[0]), reverse=True)
    return [e for _, e in found[:limit]]


class MemoryEventLog:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    def _append(self, table: str, rows: dict[int, E], event: E) -> None:
        with self._s.lock:
            rows[self._s.next_id(table)] = replace(event, at=aware(event.at))

    def record_governor_event(
        self, scope: str, kind: str, seconds: float | None, detail: str, now: datetime
    ) -> None:
        self.record_governor_events([GovernorEvent(now, scope, kind, seconds, detail)])

    def record_governor_events(self, events: Sequence[GovernorEvent]) -> None:
        with self._s.lock:
            for event in events:
                self._append("governor_events", self._s.governor_events, event)

    def record_daemon_event(self, owner: str, kind: str, detail: str | None, now: datetime) -> None:
        event = DaemonEvent(now, owner, kind, detail)
        self._append("daemon_events", self._s.daemon_events, event)

    def record_notification(self, delivery: NotificationRecord) -> None:
        self._append("notifications", self._s.notifications, delivery)

    def governor_events(
        self, since: datetime | None = None, limit: int = 200, *, until: datetime | None = None
    ) -> list[GovernorEvent]:
        with self._s.lock:
            return _newest(self._s.governor_events, since, limit, until)

    def daemon_events(self, since: datetime | None = None, limit: int = 200) -> list[DaemonEvent]:
        with self._s.lock:
            return _newest(self._s.daemon_events, since, limit)

    def notifications(
        self, since: datetime | None = None, limit: int = 200
    ) -> list[NotificationRecord]:
        with self._s.lock:
            return _newest(self._s.notifications, since, limit)


def snapshot_copy(snapshot: InventorySnapshot) -> InventorySnapshot:
    """What a read gives back of a kept snapshot: a copy its caller may change."""
    return replace(
        snapshot,
        plugins=tuple(copied([dict(p) for p in snapshot.plugins])),
        themes=tuple(copied([dict(t) for t in snapshot.themes])),
        backups=tuple(copied([dict(b) for b in snapshot.backups])),
    )


def newest_per_environment(rows: Iterable[InventoryRow]) -> dict[tuple[str, str], InventoryRow]:
    return best_per_environment(rows, lambda _at: True, newest=True)


def best_per_environment(
    rows: Iterable[InventoryRow], keep: Callable[[datetime], bool], *, newest: bool
) -> dict[tuple[str, str], InventoryRow]:
    """Per (site, environment), the newest (or oldest) of the rows whose time `keep` keeps;
    a tie on the time goes to the later (or earlier) row."""
    best: dict[tuple[str, str], InventoryRow] = {}
    for row in rows:
        if not keep(row.snapshot.taken_at):
            continue
        key = (row.snapshot.site, row.snapshot.environment)
        mine, theirs = (row.snapshot.taken_at, row.id), None
        if key in best:
            theirs = (best[key].snapshot.taken_at, best[key].id)
        if theirs is None or (mine > theirs if newest else mine < theirs):
            best[key] = row
    return best


class MemoryCatalogue:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    def note_available(
        self, kind: str, offered: Iterable[tuple[str, str]], now: datetime
    ) -> dict[tuple[str, str], datetime]:
        now = aware(now)
        with self._s.lock:
            seen = self._s.item_versions
            return {(n, v): seen.setdefault((kind, n, v), now) for n, v in sorted(set(offered))}

    def record_inventory(
        self, task_id: int | None, run_id: int | None, target: Target, snapshot: InventorySnapshot
    ) -> None:
        stored = replace(
            snapshot_copy(snapshot),
            site=target.site_name,
            environment=target.environment_name,
            taken_at=aware(snapshot.taken_at),
            run_id=run_id,
        )
        with self._s.lock:
            row_id = self._s.next_id("inventory")
            self._s.inventory[row_id] = InventoryRow(row_id, task_id, stored)

    def latest_inventory(self, site: str | None = None) -> list[InventorySnapshot]:
        with self._s.lock:
            rows = [
                r for r in self._s.inventory.values() if site is None or r.snapshot.site == site
            ]
            newest = newest_per_environment(rows)
            return [snapshot_copy(newest[key].snapshot) for key in sorted(newest)]

    def prune_inventory(self, older_than: datetime) -> None:
        """Snapshots older than the cutoff go, except each environment's newest."""
        with self._s.lock:
            kept = {r.id for r in newest_per_environment(self._s.inventory.values()).values()}
            for row in list(self._s.inventory.values()):
                if row.id not in kept and row.snapshot.taken_at < older_than:
                    del self._s.inventory[row.id]


class MemoryHistoryQueries:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    def get_run(self, run_id: int) -> Run | None:
        with self._s.lock:
            row = self._s.runs.get(run_id)
            return row.domain() if row else None

    def run_waves(self, run_id: int) -> list[WaveRecord]:
        with self._s.lock:
            return [w for _, w in sorted(self._s.waves.get(run_id, {}).items())]

    def _in_period(
        self, scheduled_for: datetime, since: datetime | None, until: datetime | None
    ) -> bool:
        since, until = maybe(since), maybe(until)
        return (since is None or scheduled_for >= since) and (
            until is None or scheduled_for < until
        )

    def list_runs(self, where: RunFilter) -> list[Run]:
        with self._s.lock:
            sites = {(t.run_id, t.site) for t in self._s.tasks.values()}
            found = [
                r
                for r in self._s.runs.values()
                if (not where.job_id or r.job_id == where.job_id)
                and (not where.status or r.status.value == where.status)
                and (not where.site or (r.id, where.site) in sites)
                and self._in_period(r.scheduled_for, where.since, where.until)
            ]
            found.sort(key=lambda r: (r.scheduled_for, r.id), reverse=True)
            return [r.domain() for r in found[: where.limit]]

    def list_tasks(self, where: TaskFilter) -> list[Task]:
        with self._s.lock:
            runs = self._s.runs
            found = [
                t
                for t in self._s.tasks.values()
                if t.run_id in runs
                and all(
                    value is None or value == have
                    for value, have in (
                        (where.run_id, t.run_id),
                        (where.job_id, runs[t.run_id].job_id),
                        (where.site, t.site),
                        (where.action, t.action),
                        (where.status, t.status.value),
                    )
                )
                and self._in_period(runs[t.run_id].scheduled_for, where.since, where.until)
            ]
            found.sort(key=lambda t: t.position)
            if where.run_id is None:
                found.sort(key=lambda t: runs[t.run_id].scheduled_for, reverse=True)
            return [t.domain() for t in found[: where.limit]]

    def site_actions(self, site: str | None = None) -> list[SiteAction]:
        with self._s.lock:
            return [
                found
                for key, found in sorted(self._s.site_actions.items())
                if site is None or key[0] == site
            ]

    def _learned(
        self,
        actions: Sequence[str],
        samples: int,
        summary: Callable[[list[OperationRow]], float | None],
    ) -> dict[str, float]:
        """Per action, `summary` of its last `samples` successful operations (newest first),
        where it tells something."""
        found: dict[str, float] = {}
        with self._s.lock:
            done = sorted(
                (
                    o
                    for o in self._s.operations.values()
                    if o.state is OperationState.SUCCEEDED and o.finished_at is not None
                ),
                key=lambda o: o.id,
                reverse=True,
            )
            for action in set(actions):
                typical = summary([o for o in done if o.action == action][:samples])
                if typical is not None:
                    found[action] = typical
        return found

    def typical_durations(self, actions: Sequence[str], *, samples: int = 50) -> dict[str, float]:
        return self._learned(
            actions,
            samples,
            lambda recent: typical_duration_s(
                operation_duration_s(o.started_at, o.finished_at, o.events)
                for o in recent
                if o.finished_at is not None
            ),
        )

    def typical_polls(self, actions: Sequence[str], *, samples: int = 50) -> dict[str, float]:
        return self._learned(
            actions, samples, lambda recent: typical_polls(o.polls for o in recent)
        )


def _before(rows: dict[int, E], older_than: datetime) -> set[int]:
    return {i for i, e in rows.items() if e.at < older_than}


def _drop(rows: dict[int, V], ids: Iterable[int]) -> None:
    for row_id in ids:
        del rows[row_id]


class MemoryMaintenance:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    def _doomed(self, older_than: datetime, keep_last: int) -> list[int]:
        by_job: dict[str, list[tuple[datetime, int, RunStatus]]] = {}
        for r in self._s.runs.values():
            by_job.setdefault(r.job_id, []).append((r.scheduled_for, r.id, r.status))
        return sorted(
            run_id
            for ranked in by_job.values()
            for rank, (slot, run_id, status) in enumerate(sorted(ranked, reverse=True), 1)
            if rank > keep_last and slot < older_than and status is not RunStatus.RUNNING
        )

    def prune(self, older_than: datetime, keep_last: int, *, dry_run: bool = False) -> PruneResult:
        older_than = aware(older_than)
        with self._s.lock:
            ids = set(self._doomed(older_than, keep_last))
            tasks = {t.id for t in self._s.tasks.values() if t.run_id in ids}
            ops = {o.id for o in self._s.operations.values() if o.task_id in tasks}
            old = _before(self._s.governor_events, older_than)
            old_daemon = _before(self._s.daemon_events, older_than)
            old_sent = _before(self._s.notifications, older_than)
            events = len(old) + len(old_daemon) + len(old_sent)
            counts = PruneResult(len(ids), len(tasks), len(ops), events)
            if dry_run:
                return counts
            MemoryCatalogue(self._s).prune_inventory(older_than)
            MemoryRequestLog(self._s).prune_request_minutes(older_than)
            _drop(self._s.governor_events, old)
            _drop(self._s.daemon_events, old_daemon)
            _drop(self._s.notifications, old_sent)
            _drop(self._s.operations, ops)
            _drop(self._s.tasks, tasks)
            _drop(self._s.runs, ids)
            for run_id in ids:
                self._s.waves.pop(run_id, None)
            return counts

    def optimize(self) -> None:
        return None

    def ping(self) -> None:
        return None
