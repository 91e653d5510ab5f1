"""The client reports' reads (scheduler.reporting.ReportReads), in memory, on a real SQLite file
and on the real PostgreSQL: the same answers from each."""

from __future__ import annotations

from datetime import UTC, datetime

from scheduler.domain import RunTrigger, Target, TaskStatus
from scheduler.history import HistoryStore
from scheduler.ports import PlannedTask
from tests.report_history import NOV, seed

DEC = datetime(2026, 12, 1, tzinfo=UTC)


def test_the_period_tasks_are_those_of_its_runs_oldest_first(store: HistoryStore) -> None:
    seed(store)
    found = store.reports.period_tasks(NOV, DEC)
    assert [(t.site, t.action) for t in found] == [
        ("acme", "backup"),
        ("acme", "update_plugins"),
        ("acme", "prune_backups"),
        ("bakery", "update_plugins"),
        ("bakery", "clear_cache"),
        ("bakery", "update_themes"),
    ]
    assert [t.operations for t in found] == [1, 1, 2, 1, 1, 1]
    assert {t.job_id for t in found} == {"nightly", "weekly"}
    assert all(t.at.tzinfo is UTC and NOV <= t.at < DEC for t in found)


def test_a_period_task_carries_what_its_action_recorded(store: HistoryStore) -> None:
    seed(store)
    update = next(t for t in store.reports.period_tasks(NOV, DEC) if t.action == "update_plugins")
    assert update.status is TaskStatus.SUCCEEDED
    assert update.versions_before == {"plugins": {"akismet": "5.0"}}
    assert update.versions_after == {"plugins": {"akismet": "5.1"}}
    assert update.result is not None and update.result["verify"]["ok"] is True
    assert update.at == datetime(2026, 11, 10, 3, 5, tzinfo=UTC)


def test_period_tasks_of_some_sites(store: HistoryStore) -> None:
    seed(store)
    found = store.reports.period_tasks(NOV, DEC, ["bakery", "nowhere"])
    assert {t.site for t in found} == {"bakery"} and len(found) == 3
    assert store.reports.period_tasks(NOV, DEC, []) == []


def test_unfinished_tasks_are_not_reported(store: HistoryStore) -> None:
    seed(store)
    run = store.runs.claim_run("nightly", RunTrigger.MANUAL, NOV, NOV, started_by="t")
    assert run is not None
    store.runs.plan_tasks(run.run_id, [PlannedTask(Target("s", "acme", "e", "live"), "backup")])
    assert len(store.reports.period_tasks(NOV, DEC)) == 6


def test_inventory_at_the_edges_of_the_period(store: HistoryStore) -> None:
    seed(store)
    edges = {e.site: e for e in store.reports.inventory_edges(NOV, DEC)}
    acme, bakery = edges["acme"], edges["bakery"]
    assert (acme.first.php_version, acme.first.wordpress_version) == ("8.1", "6.5.5")
    assert (acme.last.php_version, acme.last.wordpress_version) == ("8.2", "6.6.2")
    # No snapshot before the period: its first inside it.
    assert bakery.first.taken_at == bakery.last.taken_at == datetime(2026, 11, 5, tzinfo=UTC)
    assert len(acme.last.backups) == 3 and acme.environment == "live"
    assert [e.site for e in store.reports.inventory_edges(NOV, DEC, ["bakery"])] == ["bakery"]


def test_no_snapshot_before_the_end_no_edge(store: HistoryStore) -> None:
    seed(store)
    before = datetime(2026, 10, 1, tzinfo=UTC)
    assert store.reports.inventory_edges(before, datetime(2026, 10, 20, tzinfo=UTC)) == []


def test_requests_by_hour_of_every_key(store: HistoryStore) -> None:
    seed(store)
    assert store.reports.requests_by_hour(NOV, DEC) == {
        datetime(2026, 11, 10, 3, tzinfo=UTC): 50,
        datetime(2026, 11, 30, 23, tzinfo=UTC): 5,
    }
    assert store.reports.requests_by_hour(DEC, datetime(2027, 1, 1, tzinfo=UTC)) == {DEC: 7}


def test_requests_by_hour_of_some_keys(store: HistoryStore) -> None:
    seed(store)
    assert store.reports.requests_by_hour(NOV, DEC, ["key-b"]) == {
        datetime(2026, 11, 10, 3, tzinfo=UTC): 2
    }
    assert store.reports.requests_by_hour(NOV, DEC, ["key-a", "key-b"]) == (
        store.reports.requests_by_hour(NOV, DEC)
    )
    assert store.reports.requests_by_hour(NOV, DEC, []) == {}


def test_rate_limited_by_minute_in_exactly_the_window(store: HistoryStore) -> None:
    seed(store)  # 429s at 10 Nov 03:06 and 1 Dec 01:00 (key-a); a long_wait on 1 Nov
    at = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
    store.events.record_governor_event("key-b", "rate_limited", 1.0, "429", at)
    store.events.record_governor_event("key-b", "rate_limited", 1.0, "429", at.replace(second=0))
    assert store.reports.rate_limited_by_minute(NOV, DEC) == {
        datetime(2026, 11, 10, 3, 6, tzinfo=UTC): 1,
        datetime(2026, 11, 30, 23, 59, tzinfo=UTC): 2,
    }
    assert store.reports.rate_limited_by_minute(NOV, DEC, ["key-a"]) == {
        datetime(2026, 11, 10, 3, 6, tzinfo=UTC): 1
    }
    assert store.reports.rate_limited_by_minute(DEC, datetime(2027, 1, 1, tzinfo=UTC)) == {
        datetime(2026, 12, 1, 1, tzinfo=UTC): 1
    }


def test_known_sites(store: HistoryStore) -> None:
    assert store.reports.known_sites() == set()
    seed(store)
    assert store.reports.known_sites() == {"acme", "bakery"}
