"""A client report as values, and its JSON (`report --format json`; the fields are a contract,
documented in the README's "Client reports"). Times are aware UTC datetimes here and ISO 8601
UTC strings in JSON; days and weeks are local dates of the report's zone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from scheduler.branding import ReportBranding
from scheduler.reporting import Period

FORMAT = 1  # the JSON's "format": raised when a field changes meaning or goes


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Update:
    environment: str
    kind: str  # plugins | themes
    item: str
    before: str | None
    after: str | None
    at: datetime
    run_id: int
    task_id: int


@dataclass(frozen=True)
class BackupTaken:
    environment: str
    at: datetime
    reason: str  # scheduled (a `backup` task) | before update (a safe update's safety backup)
    backup_id: int | None  # Kinsta's id, when the task looked it up
    run_id: int
    task_id: int


@dataclass(frozen=True)
class Verification:
    """A safe update's checks of the site right after it (before any restore)."""

    environment: str
    at: datetime
    ok: bool
    checks_passed: int
    checks_total: int
    problems: tuple[str, ...]
    run_id: int
    task_id: int


@dataclass(frozen=True)
class Rollback:
    environment: str
    at: datetime
    reason: str
    restored_backup: int | None
    quarantined: tuple[str, ...]  # "name version", no update takes them
    run_id: int
    task_id: int


@dataclass(frozen=True)
class HeldBack:
    """A release an update did not take, and why (the latest time it was held back)."""

    environment: str
    kind: str
    item: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class Failure:
    environment: str
    action: str
    at: datetime
    message: str
    run_id: int
    task_id: int


@dataclass(frozen=True)
class Versions:
    """An environment's PHP and WordPress at the period's start and end (inventory snapshots)."""

    environment: str
    php_start: str | None
    php_end: str | None
    wordpress_start: str | None
    wordpress_end: str | None
    start_at: datetime
    end_at: datetime
    backups_kept: int  # the backups Kinsta listed at the end


@dataclass
class SiteReport:
    site: str
    updates: list[Update] = field(default_factory=list)
    backups: list[BackupTaken] = field(default_factory=list)
    backups_pruned: int = 0
    verifications: list[Verification] = field(default_factory=list)
    rollbacks: list[Rollback] = field(default_factory=list)
    held_back: list[HeldBack] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    versions: list[Versions] = field(default_factory=list)
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)  # action -> status -> n

    @property
    def checks(self) -> tuple[int, int]:
        """(passed, total) of every verification check."""
        return (
            sum(v.checks_passed for v in self.verifications),
            sum(v.checks_total for v in self.verifications),
        )


@dataclass(frozen=True)
class DayCount:
    day: date
    tasks: int
    operations: int  # Kinsta operations the tasks started
    requests: int  # requests sent to Kinsta with the budget's keys (recorded per minute)
    rate_limited: int  # Kinsta's 429s that day, of the budget's keys (every site of theirs)


@dataclass(frozen=True)
class BudgetScope:
    """Whose request budget a report counts. Kinsta's limit is per API key, and requests are
    recorded per key, not per site: the budget is a company's (its key's), or every key's, for
    all the sites of those keys, even when the report shows only some of them (`narrowed`)."""

    companies: tuple[str, ...] | None = None  # None: every key history recorded
    narrowed: bool = False  # the report covers only some sites (--site, --label)

    def label(self) -> str:
        """What the counts are, said plainly: "requests per day, all sites of company acme"."""
        if self.companies is None:
            whose = "every API key"
        else:
            plural = "companies" if len(self.companies) > 1 else "company"
            whose = f"{plural} {', '.join(self.companies)}"
        return f"requests per day, {'all sites of ' if self.narrowed else ''}{whose}"


@dataclass
class Report:
    branding: ReportBranding
    period: Period
    generated_at: datetime
    filters: dict[str, Any]
    sites: list[SiteReport]
    weeks: list[tuple[date, int]]  # Monday -> updates that week
    days: list[DayCount]
    budget: BudgetScope = BudgetScope()

    def outcomes(self) -> dict[str, dict[str, int]]:
        found: dict[str, dict[str, int]] = {}
        for site in self.sites:
            for action, counts in site.outcomes.items():
                mine = found.setdefault(action, {})
                for status, n in counts.items():
                    mine[status] = mine.get(status, 0) + n
        return dict(sorted(found.items()))

    def checks(self) -> tuple[int, int]:
        pairs = [s.checks for s in self.sites]
        return sum(p for p, _ in pairs), sum(t for _, t in pairs)


def share(passed: int, total: int) -> float | None:
    return round(passed / total, 4) if total else None
