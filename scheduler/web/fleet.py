"""The fleet page's view logic, pure: the page's query as the store's SiteQuery (labels and
companies come from the daemon's site list, so they become sets of sites), and `sites --format
json`'s rows summed up per site (status, pending and held-back updates, last backup, last
failure) and laid out as a matrix: a row per environment, a column per action. The store
filters and pages (scheduler.fleetquery)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from scheduler.fleetquery import SiteQuery, site_status
from scheduler.httpd import number
from scheduler.views.documents import MAX_PER_PAGE, PER_PAGE, site_query

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
    page: int | None = None  # from 1; None: the first
    per_page: int = PER_PAGE

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> FleetFilter:
        def value(name: str) -> str | None:
            text = (query.get(name) or "").strip()
            return text or None

        def positive(name: str) -> int | None:
            return number(value(name)) or None

        return cls(
            value("label"),
            value("company"),
            value("status"),
            value("q"),
            positive("page"),
            min(positive("per_page") or PER_PAGE, MAX_PER_PAGE),
        )

    def site_query(self, facts: Mapping[str, SiteFact], *, page: int | None) -> SiteQuery:
        """The store's question: the label and company filters narrow to the sites the facts
        give them, and the search also finds a site by a label or its company."""
        only = None
        if self.label is not None or self.company is not None:
            only = frozenset(site for site, fact in facts.items() if self._narrows_to(fact))
        search_also: frozenset[str] = frozenset()
        if self.search is not None:
            text = self.search.casefold()
            search_also = frozenset(
                site
                for site, fact in facts.items()
                if any(text in word.casefold() for word in (*fact.labels, fact.company or ""))
            )
        return site_query(
            self.search, self.status, page, self.per_page, only=only, search_also=search_also
        )

    def _narrows_to(self, fact: SiteFact) -> bool:
        if self.company is not None and (fact.company or "").casefold() != self.company.casefold():
            return False
        labels = {label.casefold() for label in fact.labels}
        return self.label is None or self.label.casefold() in labels

    def link(self, page: int) -> str:
        """The fleet page's address for `page` with these filters."""
        query = {"q": self.search, "label": self.label, "company": self.company}
        query |= {"status": self.status, "page": str(page)}
        if self.per_page != PER_PAGE:
            query["per_page"] = str(self.per_page)
        return "/?" + urlencode({k: v for k, v in query.items() if v})


@dataclass(frozen=True)
class Pages:
    """Where a page of the fleet is among all of them."""

    number: int
    count: int
    first: int  # the first site's position on this page, from 1 (0: no site)
    last: int

    @classmethod
    def of(cls, page: int, per_page: int, total: int) -> Pages:
        count = max(math.ceil(total / per_page), 1)
        first = (page - 1) * per_page + 1 if total else 0
        return cls(page, count, min(first, total), min(page * per_page, total))

    def around(self, reach: int = 3) -> list[int]:
        """The page numbers to link: the first, the last, and those within `reach`."""
        near = range(max(self.number - reach, 1), min(self.number + reach, self.count) + 1)
        return sorted({1, self.count, *near})


@dataclass(frozen=True)
class HeldBack:
    """A version an update holds back on one environment, and why."""

    environment: str
    kind: str  # plugin | theme
    name: str
    version: str | None
    update_version: str | None
    why: str

    @property
    def short(self) -> str:
        return f"{self.name} {self.version} → {self.update_version}"

    def __str__(self) -> str:
        return (
            f"{self.environment}: {self.kind} {self.name} {self.version} -> "
            f"{self.update_version}: {self.why}"
        )


@dataclass
class SiteSummary:
    site: str
    status: str  # failed | ok | unknown
    company: str | None
    labels: tuple[str, ...]
    environments: list[str]
    actions: list[dict[str, Any]]  # sites_json's, newest outcome per (environment, action)
    pending: int = 0
    held_back: list[HeldBack] = field(default_factory=list)
    last_backup_at: str | None = None
    last_failure_at: str | None = None
    last_failure: str | None = None
    latest_run_id: int | None = None
    # environment -> action -> that action's newest outcome there (an object of `actions`)
    cells: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @property
    def failure_headline(self) -> str:
        """The last failure's first clause, short enough for one line of the table."""
        return headline(self.last_failure or "")


def headline(message: str, width: int = 70) -> str:
    """A message's first clause (up to the first ";" or line end), cut to `width`."""
    first = message.split(";", 1)[0].split("\n", 1)[0].strip()
    return first if len(first) <= width else first[: width - 1].rstrip() + "…"


def action_columns(summaries: list[SiteSummary]) -> list[str]:
    """The fleet matrix's columns: every action the page's sites have run, by name."""
    return sorted({action for s in summaries for cells in s.cells.values() for action in cells})


def status_of(row: Mapping[str, Any]) -> str:
    """A site's status from each action's latest outcome (scheduler.fleetquery.site_status)."""
    return site_status(a["last_status"] for a in row["actions"])


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
        cells={environment: {} for environment in row["environments"]},
    )
    for action in row["actions"]:
        summary.cells.setdefault(action["environment"], {})[action["action"]] = action
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
                        HeldBack(
                            snapshot["environment"],
                            kind[:-1],
                            item["name"],
                            item.get("version"),
                            item.get("update_version"),
                            item["quarantined"],
                        )
                    )
    summary.last_backup_at = max(backups, key=_instant, default=None)
    runs = [a for a in row["actions"] if a["last_finished_at"]]
    latest = max(runs, key=lambda a: _instant(a["last_finished_at"]), default=None)
    summary.latest_run_id = latest["last_run_id"] if latest else None
    return summary


def page_headers(where: FleetFilter, pages: Pages, total: int) -> dict[str, str]:
    """The JSON twin's paging in headers, so that the document stays `sites --format json`'s:
    how many sites the filters keep, and the previous and next pages' twins."""
    headers = {"X-Total-Count": str(total)}
    near = [(pages.number - 1, "prev"), (pages.number + 1, "next")]
    links = [
        f'<{where.link(n)}&format=json>; rel="{rel}"' for n, rel in near if 1 <= n <= pages.count
    ]
    if links:
        headers["Link"] = ", ".join(links)
    return headers


def choices(facts: Mapping[str, SiteFact]) -> tuple[list[str], list[str]]:
    """The labels and companies the filters offer."""
    labels = sorted({label for fact in facts.values() for label in fact.labels}, key=str.casefold)
    companies = sorted({fact.company for fact in facts.values() if fact.company})
    return labels, companies


def _instant(value: str) -> str:
    """ISO times in UTC with Z compare as text; sites_json and inventory write them so, but a
    backup's created_at carries +00:00."""
    return value.replace("+00:00", "Z")
