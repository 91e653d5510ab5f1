"""The dashboard's pure view logic: fleet rows, filters and pages, run strips, requests per
minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.fleetquery import SiteQuery
from scheduler.web.budget import hours_from, usage
from scheduler.web.fleet import (
    FleetFilter,
    Pages,
    SiteFact,
    action_columns,
    headline,
    status_of,
    summarise,
)
from scheduler.web.timeline import day_ticks, days_from, lanes, progress

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def _action(env: str, action: str, status: str, at: str, run_id: int = 1) -> dict[str, Any]:
    return {"environment": env, "action": action, "last_status": status,
            "last_finished_at": at, "last_run_id": run_id,
            "last_success_at": at if status == "succeeded" else None}  # fmt: skip


def _row(site: str, *actions: dict[str, Any], inventory: list[Any] | None = None) -> dict[str, Any]:
    return {"site": site, "environments": sorted({a["environment"] for a in actions}),
            "actions": list(actions), "inventory": inventory or [],
            "last_failure_at": None, "last_failure": None}  # fmt: skip


def test_any_failure_makes_a_site_failed() -> None:
    ok = _action("live", "backup", "succeeded", "2026-11-26T02:00:00Z")
    assert status_of(_row("a", ok)) == "ok"
    assert (
        status_of(_row("a", ok, _action("live", "update_plugins", "rolled_back", "x"))) == "failed"
    )
    assert status_of(_row("a")) == "unknown"


def test_a_summary_sums_pending_updates_and_finds_the_last_backup_and_run() -> None:
    snapshot = {
        "environment": "live", "pending_updates": 2,
        "plugins": [{"name": "akismet", "version": "5.3", "update_version": "5.4",
                     "quarantined": "rolled back on beta/live"}],
        "themes": [], "backups": [{"created_at": "2026-11-26T05:00:00+00:00"}],
    }  # fmt: skip
    row = _row(
        "a",
        _action("live", "backup", "succeeded", "2026-11-26T02:00:00Z", run_id=7),
        _action("live", "clear_cache", "succeeded", "2026-11-26T09:00:00Z", run_id=9),
        inventory=[snapshot],
    )
    summary = summarise(row, SiteFact("acme", ("vip",)))
    assert (summary.pending, summary.latest_run_id) == (2, 9)
    assert summary.last_backup_at == "2026-11-26T05:00:00+00:00"
    assert [str(h) for h in summary.held_back] == [
        "live: plugin akismet 5.3 -> 5.4: rolled back on beta/live"
    ]
    assert summary.held_back[0].short == "akismet 5.3 → 5.4"


def test_a_site_becomes_a_row_per_environment_and_a_column_per_action() -> None:
    row = _row(
        "a",
        _action("live", "backup", "succeeded", "2026-11-26T02:00:00Z"),
        _action("staging", "clear_cache", "failed", "2026-11-26T03:00:00Z"),
    )
    other = _row("b", _action("live", "update_plugins", "succeeded", "2026-11-26T04:00:00Z"))
    summaries = [summarise(row, SiteFact()), summarise(other, SiteFact())]
    assert action_columns(summaries) == ["backup", "clear_cache", "update_plugins"]
    cells = summaries[0].cells
    assert list(cells) == ["live", "staging"]
    assert (set(cells["live"]), cells["staging"]["clear_cache"]["last_status"]) == (
        {"backup"},
        "failed",
    )


def test_a_failure_is_headlined_by_its_first_clause() -> None:
    message = "update_plugins on live: a.example/ answered 500; restored backup 7; quarantined x"
    assert headline(message) == "update_plugins on live: a.example/ answered 500"
    assert headline("x" * 100, width=10) == "x" * 9 + "…"


def test_labels_and_companies_become_sets_of_sites_for_the_store() -> None:
    facts = {"alpha": SiteFact("Acme", ("VIP",)), "beta": SiteFact("Acme", ()), "gamma": SiteFact()}
    where = FleetFilter.from_query({"company": "acme", "label": "vip", "status": "failed"})
    assert where.site_query(facts, page=None) == SiteQuery(
        status="failed", only=frozenset({"alpha"})
    )
    search = FleetFilter.from_query({"q": " acm ", "page": "3", "per_page": "20"})
    assert search.site_query(facts, page=3) == SiteQuery(
        search="acm", search_also=frozenset({"alpha", "beta"}), offset=40, limit=20
    )
    assert FleetFilter.from_query({"q": " ", "page": "x"}) == FleetFilter()


def test_pages_of_the_fleet_and_their_links() -> None:
    pages = Pages.of(5, 100, 1234)
    assert (pages.count, pages.first, pages.last) == (13, 401, 500)
    assert pages.around() == [1, 2, 3, 4, 5, 6, 7, 8, 13]
    assert Pages.of(1, 100, 0) == Pages(1, 1, 0, 0)
    where = FleetFilter(status="ok", search="a b", per_page=50)
    assert where.link(2) == "/?q=a+b&status=ok&page=2&per_page=50"


def test_runs_are_placed_on_their_jobs_strip() -> None:
    runs = [
        {"run_id": 1, "job_id": "b", "status": "failed", "scheduled_for": "2026-11-20T10:00:00Z"},
        {"run_id": 2, "job_id": "a", "status": "succeeded", "scheduled_for": "2026-11-26T22:00:00Z"},
        {"run_id": 3, "job_id": "a", "status": "running", "scheduled_for": "2026-11-27T10:00:00Z"},
    ]  # fmt: skip
    found = lanes(runs, NOW, 7)
    assert [lane.job_id for lane in found] == ["a", "b"]
    assert [m.left_pct for m in found[0].marks] == [92.86, 100.0]
    assert found[1].marks[0].left_pct == 0.0 and found[0].counts == {"succeeded": 1, "running": 1}
    assert [label for _, label in day_ticks(NOW, 2)] == ["Thu 26", "Fri 27"]


def test_progress_and_the_query_bounds() -> None:
    tasks = [{"status": s} for s in ("succeeded", "failed", "running", "pending", "skipped")]
    assert progress(tasks) == (3, 5)
    assert (days_from({}), days_from({"days": "400"}), days_from({"days": "-1"})) == (7, 31, 7)
    assert (hours_from({}), hours_from({"hours": "2"}), hours_from({"hours": "x"})) == (6, 2, 6)


def test_requests_per_minute_fill_each_minute_of_each_company() -> None:
    minute = NOW - timedelta(minutes=1)
    rows = [
        {"minute": minute.isoformat(), "scope": "fp1", "requests": 30},
        {"minute": (minute - timedelta(hours=3)).isoformat(), "scope": "fp1", "requests": 9},
        {"minute": minute.isoformat(), "scope": "fp9", "requests": 4},
    ]
    found = usage(rows, {"fp1": "acme", "fp2": "globex"}, NOW, 1)
    assert [(u.company, u.total, u.peak) for u in found] == [
        ("acme", 30, 30),
        ("fp9", 4, 4),
        ("globex", 0, 0),
    ]
    assert len(found[0].values) == 60 and found[0].labels[-1] == "10:00"
    assert found[0].values[-2] == 30


def test_a_page_size_over_the_cap_is_the_cap() -> None:
    assert FleetFilter.from_query({"per_page": "1000"}).per_page == 200
    assert FleetFilter.from_query({"per_page": "0", "page": "-2"}) == FleetFilter()


def test_day_ticks_fall_on_midnights_of_the_pages_zone_across_dst() -> None:
    """Amsterdam left summer time on 2026-10-25 (a 25-hour day): each tick is a local midnight."""
    zone = ZoneInfo("Europe/Amsterdam")
    now = datetime(2026, 10, 27, 12, 0, tzinfo=UTC)
    ticks = day_ticks(now, 3, zone)
    assert [label for _, label in ticks] == ["Sun 25", "Mon 26", "Tue 27"]
    start = now - timedelta(days=3)
    moments = [start + timedelta(seconds=left / 100 * 3 * 86400) for left, _ in ticks]
    # Within the rounding of a percentage of three days (26 s) of a local midnight.
    near = [(m + timedelta(minutes=1)).astimezone(zone) for m in moments]
    assert [(n.hour, n.minute < 2) for n in near] == [(0, True)] * 3
    assert [label for _, label in day_ticks(NOW, 2)] == ["Thu 26", "Fri 27"]  # UTC by default
