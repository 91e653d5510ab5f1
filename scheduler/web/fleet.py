"""The fleet page's view logic, pure: `sites --format json`'s rows summed up per site (status,
pending and held-back updates, last backup, last failure) and filtered by the page's query."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FAILURES = ("failed", "rolled_back", "interrupted")
STATUSES = ("failed", "ok", "unknown")  # what the status filter offers
BACKUP_ACTIONS = ("backup",)


@dataclass(frozen=True)
class SiteFact:
    """What history does not hold about a site: its company and labels (from the daemon's last
    site list, when it has one)."""

    company: str | None = None
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class FleetFilter:
    label: str | None = None
    company: str | None = None
    status: str | None = None
    search: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> FleetFilter:
        def value(name: str) -> str | None:
            text = (query.get(name) or "").strip()
            return text or None

        return cls(value("label"), value("company"), value("status"), value("q"))

    def keeps(self, row: Mapping[str, Any], fact: SiteFact, status: str) -> bool:
        if self.status is not None and status != self.status:
            return False
        if self.company is not None and (fact.company or "").casefold() != self.company.casefold():
            return False
        labels = {label.casefold() for label in fact.labels}
        if self.label is not None and self.label.casefold() not in labels:
            return False
        if self.search is not None:
            words = [row["site"], *row["environments"], *fact.labels, fact.company or ""]
            return any(self.search.casefold() in word.casefold() for word in words)
        return True


@dataclass
class SiteSummary:
    site: str
    status: str  # failed | ok | unknown
    company: str | None
    labels: tuple[str, ...]
    environments: list[str]
    actions: list[dict[str, Any]]  # sites_json's, newest outcome per (environment, action)
    pending: int = 0
    held_back: list[str] = field(default_factory=list)  # "plugin x 1.2 -> 1.3: why"
    last_backup_at: str | None = None
    last_failure_at: str | None = None
    last_failure: str | None = None
    latest_run_id: int | None = None


def status_of(row: Mapping[str, Any]) -> str:
    """A site's status from each action's latest outcome (a finished task's): any failure
    makes it failed; no outcome yet, unknown."""
    outcomes = {a["last_status"] for a in row["actions"]}
    if outcomes & set(FAILURES):
        return "failed"
    return "ok" if outcomes else "unknown"


def summarise(row: Mapping[str, Any], fact: SiteFact) -> SiteSummary:
    """One fleet row from one object of `sites --format json`."""
    summary = SiteSummary(
        site=row["site"],
        status=status_of(row),
        company=fact.company,
        labels=fact.labels,
        environments=list(row["environments"]),
        actions=list(row["actions"]),
        last_failure_at=row["last_failure_at"],
        last_failure=row["last_failure"],
    )
    backups = [
        a["last_success_at"]
        for a in row["actions"]
        if a["action"] in BACKUP_ACTIONS and a["last_success_at"]
    ]
    for snapshot in row["inventory"]:
        summary.pending += snapshot["pending_updates"] or 0
        backups += [b["created_at"] for b in snapshot["backups"][:1] if b.get("created_at")]
        for kind in ("plugins", "themes"):
            for item in snapshot[kind]:
                if item.get("quarantined"):
                    summary.held_back.append(
                        f"{snapshot['environment']}: {kind[:-1]} {item['name']} "
                        f"{item.get('version')} -> {item.get('update_version')}: "
                        f"{item['quarantined']}"
                    )
    summary.last_backup_at = max(backups, key=_instant, default=None)
    runs = [a for a in row["actions"] if a["last_finished_at"]]
    latest = max(runs, key=lambda a: _instant(a["last_finished_at"]), default=None)
    summary.latest_run_id = latest["last_run_id"] if latest else None
    return summary


def fleet(
    rows: Sequence[Mapping[str, Any]], facts: Mapping[str, SiteFact], where: FleetFilter
) -> tuple[list[SiteSummary], list[Mapping[str, Any]]]:
    """(the summaries the page shows, the rows of `sites --format json` they come from)."""
    shown, kept = [], []
    for row in rows:
        fact = facts.get(row["site"], SiteFact())
        if where.keeps(row, fact, status_of(row)):
            shown.append(summarise(row, fact))
            kept.append(row)
    return shown, kept


def choices(facts: Mapping[str, SiteFact]) -> tuple[list[str], list[str]]:
    """The labels and companies the filters offer."""
    labels = sorted({label for fact in facts.values() for label in fact.labels}, key=str.casefold)
    companies = sorted({fact.company for fact in facts.values() if fact.company})
    return labels, companies


def _instant(value: str) -> str:
    """ISO times in UTC with Z compare as text; sites_json and inventory write them so, but a
    backup's created_at carries +00:00."""
    return value.replace("+00:00", "Z")
