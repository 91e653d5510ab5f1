"""The quarantine port's contract, in memory, on a real SQLite file and on the real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler.history import HistoryStore
from scheduler.ports import QUARANTINED_BY_OPERATOR, QuarantineEntry

T0 = datetime(2026, 11, 1, 3, 10, tzinfo=UTC)


def rolled_back(
    name: str = "elementor",
    version: str = "3.2.0",
    *,
    kind: str = "plugins",
    site: str = "acme",
    at: datetime = T0,
    run_id: int = 7,
) -> QuarantineEntry:
    return QuarantineEntry(
        kind=kind,
        name=name,
        version=version,
        reason="acme.example.com/ answered 500, expected 200",
        added_at=at,
        site=site,
        environment="live",
        run_id=run_id,
        task_id=42,
    )


def test_a_quarantined_version_is_held_with_its_evidence(store: HistoryStore) -> None:
    stored = store.quarantine.add(rolled_back())
    assert stored == rolled_back() and stored.active and stored.rollbacks == 1
    held = store.quarantine.held("plugins", [("elementor", "3.2.0"), ("akismet", "5.1")])
    assert held == {("elementor", "3.2.0"): stored}
    assert held[("elementor", "3.2.0")].added_at.tzinfo is UTC


def test_only_that_kind_name_and_version_is_held(store: HistoryStore) -> None:
    store.quarantine.add(rolled_back())
    assert store.quarantine.held("plugins", [("elementor", "3.2.1")]) == {}  # a newer one
    assert store.quarantine.held("themes", [("elementor", "3.2.0")]) == {}
    assert store.quarantine.held("plugins", []) == {}


def test_a_second_rollback_keeps_the_first_evidence_and_counts(store: HistoryStore) -> None:
    store.quarantine.add(rolled_back())
    again = store.quarantine.add(rolled_back(site="bakery", at=T0 + timedelta(hours=1), run_id=8))
    assert (again.site, again.run_id, again.added_at, again.rollbacks) == ("acme", 7, T0, 2)
    operator = replace_by_operator(rolled_back())
    assert store.quarantine.add(operator).rollbacks == 2  # an operator's add counts no rollback


def replace_by_operator(entry: QuarantineEntry) -> QuarantineEntry:
    return QuarantineEntry(
        kind=entry.kind,
        name=entry.name,
        version=entry.version,
        reason="vendor says it breaks multisite",
        added_at=entry.added_at,
        added_by=QUARANTINED_BY_OPERATOR,
        rollbacks=0,
    )


def test_release_by_name_or_by_version(store: HistoryStore) -> None:
    store.quarantine.add(rolled_back(version="3.2.0"))
    store.quarantine.add(rolled_back(version="3.3.0"))
    store.quarantine.add(rolled_back(kind="themes", name="astra", version="4.7"))
    later = T0 + timedelta(days=1)
    one = store.quarantine.release("elementor", "3.3.0", later)
    assert [(e.version, e.released_at) for e in one] == [("3.3.0", later)]
    assert store.quarantine.held("plugins", [("elementor", "3.3.0")]) == {}
    rest = store.quarantine.release("elementor", None, later)
    assert [e.version for e in rest] == ["3.2.0"]
    assert store.quarantine.release("elementor", None, later) == []
    assert [e.name for e in store.quarantine.entries()] == ["astra"]
    every = store.quarantine.entries(released=True)
    assert [(e.kind, e.name, e.version, e.active) for e in every] == [
        ("plugins", "elementor", "3.2.0", False),
        ("plugins", "elementor", "3.3.0", False),
        ("themes", "astra", "4.7", True),
    ]


def test_a_released_version_quarantined_again_takes_the_new_evidence(store: HistoryStore) -> None:
    store.quarantine.add(rolled_back())
    store.quarantine.add(rolled_back(site="bakery"))
    store.quarantine.release("elementor", None, T0 + timedelta(hours=1))
    later = T0 + timedelta(days=2)
    again = store.quarantine.add(rolled_back(site="harbor", at=later, run_id=9))
    assert (again.site, again.run_id, again.added_at, again.rollbacks) == ("harbor", 9, later, 1)
    assert again.active and store.quarantine.held("plugins", [("elementor", "3.2.0")])


def test_times_are_stored_in_utc(store: HistoryStore) -> None:
    local = T0.astimezone(ZoneInfo("America/New_York"))
    stored = store.quarantine.add(rolled_back(at=local))
    assert stored.added_at == T0 and stored.added_at.tzinfo is UTC
    (released,) = store.quarantine.release("elementor", "3.2.0", local)
    assert released.released_at == T0 and released.released_at.tzinfo is UTC
