"""The fleet read in memory (the SQL twin is scheduler.history.fleet)."""

from __future__ import annotations

from scheduler.domain import SiteAction
from scheduler.fleetquery import STATUSES, SitePage, SiteQuery, site_status
from scheduler.history.memory.records import newest_per_environment, snapshot_copy
from scheduler.history.memory.state import MemoryState


class MemorySiteReads:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    def site_page(self, where: SiteQuery) -> SitePage:
        with self._s.lock:
            actions: dict[str, list[SiteAction]] = {}
            for key, found in sorted(self._s.site_actions.items()):
                actions.setdefault(key[0], []).append(found)
            newest = newest_per_environment(self._s.inventory.values())
            environments: dict[str, set[str]] = {}
            for site, environment in [*newest, *(k[:2] for k in self._s.site_actions)]:
                environments.setdefault(site, set()).add(environment)
            counts = dict.fromkeys(STATUSES, 0)
            kept = []
            for site in sorted(environments):
                status = site_status(a.last_status.value for a in actions.get(site, []))
                if _keeps(where, site, environments[site], status):
                    counts[status] += 1
                    kept.append(site)
            end = None if where.limit is None else where.offset + where.limit
            page = set(kept[where.offset : end])
            return SitePage(
                counts,
                [a for site in sorted(page) for a in actions.get(site, [])],
                [snapshot_copy(newest[key].snapshot) for key in sorted(newest) if key[0] in page],
            )


def _keeps(where: SiteQuery, site: str, environments: set[str], status: str) -> bool:
    if where.only is not None and site not in where.only:
        return False
    if where.status is not None and status != where.status:
        return False
    if where.search is None:
        return True
    text = where.search.casefold()
    names = [site, *environments]
    return site in where.search_also or any(text in name.casefold() for name in names)
