"""A client report assembled from a history in memory (tests/report_history.py's November),
and the same report as JSON and as HTML with its charts."""

from __future__ import annotations

import importlib
import re
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from scheduler.branding import ReportBranding
from scheduler.errors import NotFoundError
from scheduler.history import memory_store
from scheduler.reporting import month_period
from scheduler.reports import Selection, gather, render_html, to_document
from scheduler.reports.html import CHART_TITLES
from scheduler.reports.selection import resolve_sites, selection, with_label
from tests.report_history import ROLLED_BACK, seed

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def report(selection: Selection | None = None, zone: str = "UTC") -> dict[str, Any]:
    store = memory_store()
    seed(store)
    period = month_period("2026-11", ZoneInfo(zone))
    built = gather(store, period, selection or Selection(), ReportBranding(), NOW)
    return to_document(built)


def site(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in doc["sites"] if s["site"] == name)


def test_the_fleet_summary() -> None:
    fleet = report()["fleet"]
    assert {k: fleet[k] for k in ("sites", "updates", "backups_taken", "backups_pruned")} == {
        "sites": 2, "updates": 2, "backups_taken": 3, "backups_pruned": 2,
    }  # fmt: skip
    assert (fleet["verifications"], fleet["verifications_passed"], fleet["rollbacks"]) == (2, 1, 1)
    assert (fleet["held_back"], fleet["failures"]) == (1, 1)
    assert fleet["uptime"] == {"checks_passed": 4, "checks_total": 6, "share": 0.6667}
    assert fleet["outcomes"]["update_plugins"] == {"succeeded": 1, "rolled_back": 1}
    assert fleet["outcomes"]["clear_cache"] == {"failed": 1}


def test_updates_with_versions_before_and_after() -> None:
    doc = report()
    (akismet,) = site(doc, "acme")["updates"]
    assert (akismet["item"], akismet["kind"], akismet["before"], akismet["after"]) == (
        "akismet", "plugins", "5.0", "5.1",
    )  # fmt: skip
    assert akismet["at"] == "2026-11-10T03:05:00Z" and akismet["environment"] == "live"
    # The rolled-back elementor is where it was: no update; the theme update is.
    assert [(u["item"], u["after"]) for u in site(doc, "bakery")["updates"]] == [("astra", "4.7.0")]


def test_backups_taken_pruned_and_kept() -> None:
    backups = site(report(), "acme")["backups"]
    assert [(b["reason"], b["backup_id"]) for b in backups["taken"]] == [
        ("scheduled", 501),
        ("before update", 502),
    ]
    assert (backups["pruned"], backups["kept"]) == (2, {"live": 3})


def test_verifications_rollbacks_and_releases_held_back() -> None:
    doc = report()
    acme, bakery = site(doc, "acme"), site(doc, "bakery")
    assert [(v["ok"], v["checks_passed"], v["checks_total"]) for v in acme["verifications"]] == [
        (True, 3, 3)
    ]
    assert bakery["verifications"][0]["problems"] == ["bakery.example.com/ answered 500"]
    (rollback,) = bakery["rollbacks"]
    assert rollback["reason"] == ROLLED_BACK
    assert (rollback["restored_backup"], rollback["quarantined"]) == (77, ["elementor 3.2.0"])
    (held,) = acme["held_back"]  # an item the job excludes is not a release held back
    assert (held["item"], held["kind"]) == ("astra", "plugins") and "min_age" in held["reason"]
    assert bakery["failures"][0]["message"] == "Kinsta API: 500 Internal Server Error"


def test_php_and_wordpress_at_the_start_and_end() -> None:
    (versions,) = site(report(), "acme")["versions"]
    assert versions["php"] == {"start": "8.1", "end": "8.2"}
    assert versions["wordpress"] == {"start": "6.5.5", "end": "6.6.2"}


def test_updates_per_week_and_work_per_day() -> None:
    fleet = report()["fleet"]
    assert [(w["week"], w["updates"]) for w in fleet["updates_per_week"]] == [
        ("2026-10-26", 0), ("2026-11-02", 0), ("2026-11-09", 1), ("2026-11-16", 0),
        ("2026-11-23", 1), ("2026-11-30", 0),
    ]  # fmt: skip
    days = {d["day"]: d for d in fleet["per_day"]}
    assert len(days) == 30
    ten = days["2026-11-10"]
    assert (ten["tasks"], ten["operations"], ten["requests"], ten["rate_limited"]) == (2, 3, 50, 1)
    assert days["2026-11-30"]["requests"] == 5


def test_days_are_local_to_the_zone() -> None:
    # 31 Oct 23:30 UTC is 1 November in Berlin: that backup is in the Berlin month.
    doc = report(zone="Europe/Berlin")
    assert len(site(doc, "acme")["backups"]["taken"]) == 3
    assert doc["period"]["start"] == "2026-10-31T23:00:00Z"


def test_some_sites_only_and_a_site_without_history() -> None:
    doc = report(Selection(sites=("bakery", "quiet")))
    assert [s["site"] for s in doc["sites"]] == ["bakery", "quiet"]
    assert site(doc, "quiet")["updates"] == [] and site(doc, "quiet")["versions"] == []


def test_a_company_is_the_work_of_its_jobs() -> None:
    doc = report(Selection(jobs=frozenset({"weekly"})))
    assert [s["site"] for s in doc["sites"]] == ["bakery"]
    assert doc["fleet"]["outcomes"] == {"update_themes": {"succeeded": 1}}


def budget_of(doc: dict[str, Any]) -> tuple[int, int]:
    days = doc["fleet"]["per_day"]
    return sum(d["requests"] for d in days), sum(d["rate_limited"] for d in days)


def test_a_company_report_counts_only_its_keys_budget() -> None:
    """key-a sent 53 requests in November and had one 429, key-b sent 2: a report of key-b's
    company shows its 2, not the agency's 55."""
    assert budget_of(report()) == (55, 1)
    doc = report(selection(None, frozenset({"weekly"}), {"company": "b"}, {"b": "key-b"}))
    assert budget_of(doc) == (2, 0)
    assert doc["fleet"]["budget"] == {
        "companies": ["b"], "narrowed_to_sites": False, "label": "requests per day, company b",
    }  # fmt: skip
    assert budget_of(report(selection(None, None, {}, {"a": "key-a"}))) == (53, 1)


def test_a_report_of_some_sites_says_its_budget_is_of_all_their_keys_sites() -> None:
    doc = report(Selection(sites=("bakery",)))
    assert doc["fleet"]["budget"] == {
        "companies": None,
        "narrowed_to_sites": True,
        "label": "requests per day, all sites of every API key",
    }
    doc = report(selection(("bakery",), None, {"company": "b"}, {"b": "key-b"}))
    assert doc["fleet"]["budget"]["label"] == "requests per day, all sites of company b"
    store = memory_store()
    seed(store)
    built = gather(
        store, month_period("2026-11", UTC), selection(("bakery",), None, {}, {"b": "key-b"}),
        ReportBranding(), NOW,
    )  # fmt: skip
    assert "<title>Request budget: requests per day, all sites of company b</title>" in (
        render_html(built)
    )


def test_every_429_of_a_past_month_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """However many governor events came after the period (once read newest first with a
    limit, the period's own could fall off the end)."""
    gathering = importlib.import_module("scheduler.reports.gather")  # the module, not gather()
    monkeypatch.setattr(gathering, "MAX_GOVERNOR_EVENTS", 3, raising=False)
    store = memory_store()
    seed(store)
    later = datetime(2027, 1, 5, tzinfo=UTC)
    for n in range(5):
        store.events.record_governor_event(
            "key-a", "rate_limited", 1.0, "429", later.replace(minute=n)
        )
    built = gather(store, month_period("2026-11", UTC), Selection(), ReportBranding(), NOW)
    assert budget_of(to_document(built))[1] == 1


def test_sites_by_name_or_pattern() -> None:
    known = {"acme", "bakery", "shop-1", "shop-2"}
    assert resolve_sites(("shop-*", "acme"), known) == ("acme", "shop-1", "shop-2")
    assert resolve_sites((), known) is None
    with pytest.raises(NotFoundError, match="did you mean 'bakery'"):
        resolve_sites(("bakry",), known)


def test_sites_by_label() -> None:
    labelled = {"acme": ["Clients"], "bakery": ["internal"], "shop": ["clients", "eu"]}
    assert with_label(None, "CLIENTS", labelled) == ("acme", "shop")
    assert with_label(("acme", "bakery"), "clients", labelled) == ("acme",)
    with pytest.raises(NotFoundError, match="no site carries it"):
        with_label(None, "vip", labelled)


def test_the_html_has_the_sites_versions_and_three_svg_charts() -> None:
    store = memory_store()
    seed(store)
    branding = ReportBranding("Acme <Agency>", None, "teal")
    built = gather(store, month_period("2026-11", UTC), Selection(), branding, NOW)
    html = render_html(built)
    assert html.count("<svg") == 3
    for title in CHART_TITLES:
        assert f"<title>{title}</title>" in html
    assert "Acme &lt;Agency&gt;" in html and "<Agency>" not in html
    assert "--accent: teal;" in html
    assert re.search(r"5\.0 → 5\.1", html) and "8.1" in html and "6.6.2" in html
    assert 'data-series="rolled_back"' in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")


def test_the_html_embeds_the_logo(tmp_path: Any) -> None:
    logo = tmp_path / "logo.svg"
    logo.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>')
    store = memory_store()
    built = gather(
        store, month_period("2026-11", UTC), Selection(), ReportBranding(logo=str(logo)), NOW
    )
    assert 'src="data:image/svg+xml;base64,' in render_html(built)


def test_an_empty_period_still_makes_a_report() -> None:
    store = memory_store()
    built = gather(store, month_period("2026-11", UTC), Selection(), ReportBranding(), NOW)
    doc = to_document(built)
    assert doc["sites"] == [] and doc["fleet"]["uptime"]["share"] is None
    assert render_html(built).count("<svg") == 3
    assert date.fromisoformat(doc["fleet"]["per_day"][0]["day"]) == date(2026, 11, 1)


def test_a_companys_budget_is_found_by_its_keys_fingerprint() -> None:
    """As the governor names its requests: the key's (the sandbox's with --sandbox)."""
    from scheduler.bootstrap import key_scopes, sandbox_options
    from scheduler.config import parse
    from scheduler.kinsta.governor import key_fingerprint

    two = "version: 1\nkinsta:\n  companies: [{name: a, api_key: ka}, {name: b}]\n"
    config = parse(two, "/nowhere/jobs.yaml", {})
    assert key_scopes(config, sandbox=False) == {"a": key_fingerprint("ka"), "b": None}
    options = sandbox_options(config)
    sandbox_keys = [key_fingerprint(k) for k in options.keys()]  # noqa: SIM118 (not a dict)
    assert list(key_scopes(config, sandbox=True).values()) == sandbox_keys
