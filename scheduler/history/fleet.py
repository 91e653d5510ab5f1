"""The fleet read in SQL: filter, count and page the sites where the rows are, then read each
action's latest outcome and each environment's latest inventory for the page's sites only (the
memory twin is scheduler.history.memory.fleet).

A site is known from site_actions or inventory; its status comes from site_actions (any
failure: failed; an outcome: ok; none: unknown). The latest snapshot of an environment is found
per (site, environment) through ix_inventory_site_environment_taken_at (an index seek each)
instead of ranking every snapshot."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Select,
    Subquery,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    union,
)

from scheduler.fleetquery import FAILURES, STATUSES, SitePage, SiteQuery
from scheduler.history.rows import site_action_from, snapshot_from
from scheduler.history.sql import Database
from scheduler.history.tables import inventory, site_actions


class SqlSiteReads:
    def __init__(self, db: Database) -> None:
        self.db = db

    def site_page(self, where: SiteQuery) -> SitePage:
        kept = _kept(where)
        with self.db.tx() as tx:
            found = tx.execute(select(kept).order_by(kept.c.site)).all()
            counts = dict.fromkeys(STATUSES, 0)
            for row in found:
                counts[row.status] += 1
            end = None if where.limit is None else where.offset + where.limit
            page = _page_sites(where, kept, [row.site for row in found[where.offset : end]])
            actions = select(site_actions).order_by(
                site_actions.c.site, site_actions.c.environment, site_actions.c.action
            )
            if page is not None:
                actions = actions.where(site_actions.c.site.in_(page))
            found_actions = [site_action_from(r) for r in tx.execute(actions).all()]
            snapshots = [snapshot_from(r) for r in tx.execute(_latest_inventory(page)).all()]
        return SitePage(counts, found_actions, snapshots)


def _page_sites(where: SiteQuery, kept: Subquery, sites: list[str]) -> Any:
    """What names the page's sites to the reads that follow: None for every site, the kept ones'
    query when the page is all of them (no list of thousands of parameters), else the names."""
    if where.offset or where.limit is not None:
        return sites
    if where == SiteQuery():
        return None
    return select(kept.c.site)


def _kept(where: SiteQuery) -> Subquery:
    """(site, status) of every site `where` keeps."""
    known = union(select(site_actions.c.site), select(inventory.c.site).distinct()).subquery(
        "known"
    )
    failing = func.max(case((site_actions.c.last_status.in_(FAILURES), 1), else_=0))
    worst = (
        select(site_actions.c.site, failing.label("failing"))
        .group_by(site_actions.c.site)
        .subquery("worst")
    )
    status = case(
        (worst.c.failing == 1, literal("failed")),
        (worst.c.failing == 0, literal("ok")),
        else_=literal("unknown"),
    )
    rows = select(known.c.site, status.label("status")).select_from(
        known.outerjoin(worst, worst.c.site == known.c.site)
    )
    if where.only is not None:
        rows = rows.where(known.c.site.in_(sorted(where.only)))
    if where.search is not None:
        rows = rows.where(_search(known.c.site, where))
    sites = rows.subquery("sites")
    if where.status is None:
        return sites
    return select(sites).where(sites.c.status == where.status).subquery("kept")


def _search(site: Any, where: SiteQuery) -> Any:
    """The site's name or an environment's has the text (any case, % and _ taken literally),
    or the caller matched the site elsewhere."""
    text = where.search or ""
    matches = [
        site.icontains(text, autoescape=True),
        exists().where(
            site_actions.c.site == site,
            site_actions.c.environment.icontains(text, autoescape=True),
        ),
        exists().where(
            inventory.c.site == site, inventory.c.environment.icontains(text, autoescape=True)
        ),
    ]
    if where.search_also:
        matches.append(site.in_(sorted(where.search_also)))
    return or_(*matches)


def _latest_inventory(page: Any) -> Select[Any]:
    """The newest snapshot of each environment of the page's sites (`page` as _page_sites
    gives it), by site and environment."""
    pairs_query = select(inventory.c.site, inventory.c.environment).distinct()
    if page is not None:
        pairs_query = pairs_query.where(inventory.c.site.in_(page))
    pairs = pairs_query.subquery("pairs")
    newer = inventory.alias("newer")
    newest_id = (
        select(newer.c.id)
        .where(newer.c.site == pairs.c.site, newer.c.environment == pairs.c.environment)
        .order_by(newer.c.taken_at.desc(), newer.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(inventory)
        .where(inventory.c.id.in_(select(newest_id).select_from(pairs)))
        .order_by(inventory.c.site, inventory.c.environment)
    )
