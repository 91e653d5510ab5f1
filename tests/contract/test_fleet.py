"""The fleet read (store.sites): which sites a query keeps, their counts by status, and one
page of them with each action's latest outcome and each environment's latest inventory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler.domain import InventorySnapshot, RunTrigger, Target, TaskStatus
from scheduler.fleetquery import SiteQuery
from scheduler.history import HistoryStore, PlannedTask

T0 = datetime(2026, 11, 1, 2, 30, tzinfo=UTC)


def _target(site: str, environment: str = "live") -> Target:
    return Target(f"id-{site}", site, f"e-{site}-{environment}", environment)


def _finish(
    store: HistoryStore, target: Target, action: str, status: TaskStatus, at: datetime
) -> None:
    run = store.runs.claim_run(f"job-{at:%H%M%S}", RunTrigger.MANUAL, at, at, started_by="t")
    assert run is not None
    (task,) = store.runs.plan_tasks(run.run_id, [PlannedTask(target, action)])
    store.tasks.finish_task(task, status, at, status.value)


def _snapshot(target: Target, at: datetime, php: str) -> InventorySnapshot:
    return InventorySnapshot(
        site=target.site_name, environment=target.environment_name, taken_at=at,
        php_version=php, wordpress_version="6.6", plugins=(), themes=(), backups=(),
    )  # fmt: skip


def _fleet(store: HistoryStore) -> None:
    """alpha: ok (live, staging); beta: failed (staging rolled back); gamma_1: ok; delta:
    inventory only (unknown), two snapshots."""
    _finish(store, _target("alpha"), "backup", TaskStatus.SUCCEEDED, T0)
    _finish(
        store,
        _target("alpha", "staging"),
        "backup",
        TaskStatus.SUCCEEDED,
        T0 + timedelta(seconds=1),
    )
    _finish(store, _target("beta"), "backup", TaskStatus.SUCCEEDED, T0 + timedelta(seconds=2))
    _finish(
        store,
        _target("beta", "staging"),
        "update_plugins",
        TaskStatus.ROLLED_BACK,
        T0 + timedelta(seconds=3),
    )
    _finish(
        store, _target("gamma_1"), "clear_cache", TaskStatus.SUCCEEDED, T0 + timedelta(seconds=4)
    )
    delta = _target("delta", "shop")
    store.catalogue.record_inventory(None, None, delta, _snapshot(delta, T0, "8.1"))
    store.catalogue.record_inventory(
        None, None, delta, _snapshot(delta, T0 + timedelta(hours=1), "8.3")
    )
    store.catalogue.record_inventory(None, None, _target("alpha"), _snapshot(_target("alpha"), T0, "8.2"))  # fmt: skip


def _sites(store: HistoryStore, where: SiteQuery) -> list[str]:
    page = store.sites.site_page(where)
    return sorted({a.site for a in page.actions} | {s.site for s in page.inventory})


def test_every_site_with_its_counts_outcomes_and_latest_inventory(store: HistoryStore) -> None:
    _fleet(store)
    page = store.sites.site_page(SiteQuery())
    assert page.counts == {"failed": 1, "ok": 2, "unknown": 1} and page.total == 4
    assert [(a.site, a.environment, a.action) for a in page.actions] == [
        ("alpha", "live", "backup"), ("alpha", "staging", "backup"), ("beta", "live", "backup"),
        ("beta", "staging", "update_plugins"), ("gamma_1", "live", "clear_cache"),
    ]  # fmt: skip
    assert [(s.site, s.environment, s.php_version) for s in page.inventory] == [
        ("alpha", "live", "8.2"),
        ("delta", "shop", "8.3"),
    ]
    assert page.actions == store.queries.site_actions()


def test_status_search_and_sites_filter_where_the_rows_are(store: HistoryStore) -> None:
    _fleet(store)
    assert _sites(store, SiteQuery(status="failed")) == ["beta"]
    assert _sites(store, SiteQuery(status="unknown")) == ["delta"]
    assert _sites(store, SiteQuery(search="STAG")) == ["alpha", "beta"]  # an environment's name
    assert _sites(store, SiteQuery(search="shop")) == ["delta"]  # an inventory's environment
    assert _sites(store, SiteQuery(search="a_1")) == ["gamma_1"]  # _ is no wildcard
    assert _sites(store, SiteQuery(search="%")) == []
    assert _sites(store, SiteQuery(search="zzz", search_also=frozenset({"beta"}))) == ["beta"]
    found = store.sites.site_page(SiteQuery(status="ok", only=frozenset({"alpha", "beta"})))
    assert found.counts == {"failed": 0, "ok": 1, "unknown": 0}
    assert {a.site for a in found.actions} == {"alpha"}


def test_a_page_reads_only_its_sites_and_counts_them_all(store: HistoryStore) -> None:
    _fleet(store)
    second = store.sites.site_page(SiteQuery(offset=2, limit=2))
    assert second.total == 4
    assert _sites(store, SiteQuery(offset=2, limit=2)) == ["delta", "gamma_1"]
    assert _sites(store, SiteQuery(offset=1)) == ["beta", "delta", "gamma_1"]
    assert _sites(store, SiteQuery(offset=8, limit=2)) == []
