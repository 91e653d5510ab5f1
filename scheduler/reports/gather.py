"""A client report assembled from history: four reads for every site at once (the period's
tasks, the inventory at the period's edges, requests per hour and the governor's 429s per
minute, of the selected companies' keys), then plain assembly, so a report of a thousand sites
costs what one of a few does plus the rows it shows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from scheduler.branding import ReportBranding
from scheduler.domain import TaskStatus
from scheduler.history.store import HistoryStore
from scheduler.reporting import InventoryEdge, Period, PeriodTask, monday
from scheduler.reports import extract
from scheduler.reports.model import (
    BudgetScope,
    DayCount,
    HeldBack,
    Report,
    SiteReport,
    Versions,
)


@dataclass(frozen=True)
class Selection:
    """Which sites a report covers: `sites` by name (None: every site with something in the
    period), `jobs` only tasks of these jobs (a company's; None: any job); `keys` the request
    budget of these keys only (the fingerprints of `companies`' keys; None: every key)."""

    sites: tuple[str, ...] | None = None
    jobs: frozenset[str] | None = None
    filters: dict[str, Any] = field(default_factory=dict)  # as asked, for the record
    keys: frozenset[str] | None = None
    companies: tuple[str, ...] | None = None

    def budget(self) -> BudgetScope:
        return BudgetScope(self.companies, narrowed=self.sites is not None)


def gather(
    store: HistoryStore,
    period: Period,
    selection: Selection,
    branding: ReportBranding,
    now: datetime,
) -> Report:
    reads = store.reports
    tasks = reads.period_tasks(period.start, period.end, selection.sites)
    if selection.jobs is not None:
        tasks = [t for t in tasks if t.job_id in selection.jobs]
    names: Collection[str] | None = selection.sites
    if names is None and selection.jobs is not None:
        names = {t.site for t in tasks}
    edges = reads.inventory_edges(period.start, period.end, names)
    if names is None:
        names = {t.site for t in tasks} | {e.site for e in edges}
    sites = {name: SiteReport(name) for name in sorted(set(names))}
    for task in tasks:
        _add(sites[task.site], task)
    for edge in edges:
        if edge.site in sites:
            sites[edge.site].versions.append(_versions(edge))
    for site in sites.values():
        site.held_back = _still_held(site)
    requests, limited = _budget(store, period, selection.keys)
    return Report(
        branding=branding,
        period=period,
        generated_at=now,
        filters=selection.filters,
        sites=list(sites.values()),
        weeks=_weeks(period, sites.values()),
        days=_days(period, tasks, requests, limited),
        budget=selection.budget(),
    )


# Actions whose tasks say more than their outcome (and a failure's message).
TELLING = frozenset({*extract.UPDATE_ACTIONS, "backup", "prune_backups", "restore_backup"})


def _add(site: SiteReport, task: PeriodTask) -> None:
    counts = site.outcomes.setdefault(task.action, {})
    counts[task.status.value] = counts.get(task.status.value, 0) + 1
    failure = extract.failure_of(task)
    if failure is not None:
        site.failures.append(failure)
    if task.action not in TELLING and task.status is not TaskStatus.ROLLED_BACK:
        return
    site.updates.extend(extract.updates_of(task))
    site.backups.extend(extract.backups_of(task))
    site.backups_pruned += extract.pruned_of(task)
    site.held_back.extend(extract.held_of(task))
    verification = extract.verification_of(task)
    if verification is not None:
        site.verifications.append(verification)
    rollback = extract.rollback_of(task)
    if rollback is not None:
        site.rollbacks.append(rollback)


def _still_held(site: SiteReport) -> list[HeldBack]:
    """Each item's latest reason, unless a later update of it went through."""
    latest: dict[tuple[str, str, str], HeldBack] = {}
    for held in site.held_back:  # oldest first
        latest[held.environment, held.kind, held.item] = held
    updated = {(u.environment, u.kind, u.item): u.at for u in site.updates}
    return [
        held for key, held in sorted(latest.items()) if key not in updated or updated[key] < held.at
    ]


def _versions(edge: InventoryEdge) -> Versions:
    first, last = edge.first, edge.last
    return Versions(
        environment=edge.environment,
        php_start=first.php_version,
        php_end=last.php_version,
        wordpress_start=first.wordpress_version,
        wordpress_end=last.wordpress_version,
        start_at=first.taken_at,
        end_at=last.taken_at,
        backups_kept=len(last.backups),
    )


def _budget(
    store: HistoryStore, period: Period, keys: frozenset[str] | None
) -> tuple[Counter[date], Counter[date]]:
    """Requests and 429s per local day of the period, of `keys` (None: every key)."""
    reads, start, end = store.reports, period.start, period.end
    requests: Counter[date] = Counter()
    for hour, n in reads.requests_by_hour(start, end, keys).items():
        requests[period.local_day(hour)] += n
    limited: Counter[date] = Counter()
    for minute, n in reads.rate_limited_by_minute(start, end, keys).items():
        limited[period.local_day(minute)] += n
    return requests, limited


def _weeks(period: Period, sites: Iterable[SiteReport]) -> list[tuple[date, int]]:
    counted = Counter(monday(period.local_day(u.at)) for site in sites for u in site.updates)
    return [(first, counted.get(first, 0)) for first in period.weeks()]


def _days(
    period: Period, tasks: list[PeriodTask], requests: Counter[date], limited: Counter[date]
) -> list[DayCount]:
    per_task: Counter[date] = Counter()
    per_op: Counter[date] = Counter()
    for task in tasks:
        day = period.local_day(task.at)
        per_task[day] += 1
        per_op[day] += task.operations
    return [
        DayCount(day, per_task[day], per_op[day], requests[day], limited[day])
        for day in period.days()
    ]
