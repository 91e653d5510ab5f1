"""The JSON documents of `sites`, `history`, `show` and `history governor`, from the store."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from scheduler import render
from scheduler.errors import NotFoundError
from scheduler.fleetquery import SitePage, SiteQuery
from scheduler.history import HistoryStore, RunFilter
from scheduler.ports import QuarantineEntry
from scheduler.rollout import WaveRecord

PER_PAGE = 100  # sites a page of `sites --page` and of the dashboard's fleet
MAX_PER_PAGE = 200  # a page of the dashboard stays under 300 ms (README: Performance)
QUARANTINE_FIELDS = (
    "kind", "name", "version", "reason", "added_by", "added_at", "site", "environment",
    "run_id", "task_id", "rollbacks", "released_at",
)  # fmt: skip


def sites_document(store: HistoryStore, site: str | None = None) -> list[dict[str, Any]]:
    """`sites --format json`: one object per site (render.sites_json), each update on offer
    whose version is quarantined saying why it is held back. NotFoundError for a `site` history
    does not know."""
    if site is None:
        return fleet_document(store, SiteQuery())[0]
    # One site: its rows by key, without working out which sites the fleet has (store.sites).
    entries = store.queries.site_actions(site)
    inventory = store.catalogue.latest_inventory(site)
    if not entries and not inventory:
        raise NotFoundError(f"no history for site {site!r}")
    rows = render.sites_json(entries, inventory)
    mark_held(rows, {(e.kind, e.name, e.version): e.why() for e in store.quarantine.entries()})
    return rows


def fleet_document(store: HistoryStore, where: SiteQuery) -> tuple[list[dict[str, Any]], SitePage]:
    """`sites --format json` for the sites `where` keeps (a page of them, when it says so), and
    the read it comes from (how many sites of each status it keeps)."""
    page = store.sites.site_page(where)
    rows = render.sites_json(page.actions, page.inventory)
    mark_held(rows, {(e.kind, e.name, e.version): e.why() for e in store.quarantine.entries()})
    return rows, page


def site_query(
    search: str | None = None,
    status: str | None = None,
    page: int | None = None,
    per_page: int = PER_PAGE,
    *,
    only: frozenset[str] | None = None,
    search_also: frozenset[str] = frozenset(),
) -> SiteQuery:
    """What `sites` and the fleet page ask: `page` (from 1) of `per_page` sites, or every site
    without a page; `only` and `search_also` as SiteQuery takes them."""
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    offset, limit = (0, None) if page is None else ((max(page, 1) - 1) * per_page, per_page)
    return SiteQuery(
        search=search or None,
        status=status or None,
        offset=offset,
        limit=limit,
        only=only,
        search_also=search_also,
    )


def mark_held(rows: list[dict[str, Any]], held: Mapping[tuple[str, Any, Any], str]) -> None:
    """An update on offer whose version is quarantined says why it is held back (`quarantined`
    on the inventory's item): `held` is (kind, name, version) -> why."""
    for row in rows:
        for snapshot in row["inventory"]:
            for kind in ("plugins", "themes"):
                for item in snapshot[kind]:
                    why = held.get((kind, item.get("name"), item.get("update_version")))
                    if why is not None:
                        item["quarantined"] = why


def runs_document(store: HistoryStore, where: RunFilter) -> list[dict[str, Any]]:
    """`history --format json`: the runs, newest first."""
    return [render.run_json(r) for r in store.queries.list_runs(where)]


def show_document(store: HistoryStore, run_id: int) -> dict[str, Any]:
    """`show RUN_ID --format json`: the run, its rollout's waves, the versions it quarantined
    and its tasks with each operation's timeline. NotFoundError for an unknown run."""
    run = store.queries.get_run(run_id)
    if run is None:
        raise NotFoundError(f"no run {run_id}")
    held = [e for e in store.quarantine.entries(released=True) if e.run_id == run.run_id]
    body = render.run_json(run)
    body["waves"] = [wave_json(w) for w in store.queries.run_waves(run.run_id)]
    body["quarantined"] = [entry_json(e) for e in held]
    tasks = store.tasks.run_tasks(run.run_id)
    body["tasks"] = [render.task_json(t, with_operations=True) for t in tasks]
    return body


def governor_document(
    store: HistoryStore, since: datetime | None, limit: int
) -> list[dict[str, Any]]:
    """`history governor --format json`: 429s, pauses, ledger outages and long waits."""
    return [render.governor_event_json(e) for e in store.events.governor_events(since, limit)]


def wave_json(wave: WaveRecord) -> dict[str, Any]:
    """A wave of the run's rollout, as `show --format json` gives it."""
    return {
        "wave": wave.index,
        "name": wave.name,
        "status": wave.status,
        "targets": wave.targets,
        "done": wave.done,
        "failed": wave.failed,
        "rolled_back": wave.rolled_back,
        "started_at": render.utc_iso(wave.started_at),
        "ended_at": render.utc_iso(wave.ended_at),
    }


def entry_json(entry: QuarantineEntry) -> dict[str, Any]:
    """A quarantined version, as `quarantine list --format json` gives it."""
    body: dict[str, Any] = {name: getattr(entry, name) for name in QUARANTINE_FIELDS}
    body["added_at"] = render.utc_iso(entry.added_at)
    body["released_at"] = render.utc_iso(entry.released_at)
    body["why"] = entry.why()
    return body


REQUEST_MINUTE_FIELDS = ("minute", "scope", "requests")


def requests_document(store: HistoryStore, since: datetime) -> list[dict[str, Any]]:
    """`history requests --format json`: requests sent per key (its fingerprint) and minute,
    oldest first."""
    return [
        {"minute": render.utc_iso(row.minute), "scope": row.scope, "requests": row.requests}
        for row in store.requests.request_minutes(since)
    ]
