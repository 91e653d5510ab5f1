"""The fleet read: which sites a question keeps (a search, a status, a set of sites), how many,
and one page of them with each action's latest outcome and each environment's latest
inventory. The store answers it in one transaction, filtering and paging where the data is, so
`sites` and the dashboard's fleet page read only the sites they show (SQL in
scheduler.history.fleet, memory in scheduler.history.memory.fleet)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from scheduler.domain import InventorySnapshot, SiteAction

FAILURES = ("failed", "rolled_back", "interrupted")  # a latest outcome that makes a site failed
STATUSES = ("failed", "ok", "unknown")  # a site's status, what the status filter takes


def site_status(outcomes: Iterable[str]) -> str:
    """A site's status from each action's latest outcome: any failure makes it failed; no
    outcome yet (history knows it from an inventory only), unknown."""
    seen = set(outcomes)
    if seen & set(FAILURES):
        return "failed"
    return "ok" if seen else "unknown"


@dataclass(frozen=True)
class SiteQuery:
    """Which sites, and which page of them (by site name). `search`: text in the site's or one
    of its environments' names, any case, or the site is one of `search_also` (what the caller
    matched elsewhere, e.g. by label). `only`: just these sites (None: any). `limit` None: all
    from `offset` on."""

    search: str | None = None
    search_also: frozenset[str] = frozenset()
    status: str | None = None
    only: frozenset[str] | None = None
    offset: int = 0
    limit: int | None = None


@dataclass(frozen=True)
class SitePage:
    """The sites a query keeps: how many of each status, and the page's rows, by site."""

    counts: Mapping[str, int]  # status -> sites kept (every status in STATUSES)
    actions: list[SiteAction] = field(default_factory=list)  # by site, environment, action
    inventory: list[InventorySnapshot] = field(default_factory=list)  # by site, environment

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class SiteReads(Protocol):
    """The fleet read (`store.sites`)."""

    def site_page(self, where: SiteQuery) -> SitePage:
        """The sites history knows (from site_actions or inventory) that `where` keeps."""
