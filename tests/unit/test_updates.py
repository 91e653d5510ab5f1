"""Which plugin and theme updates an update action takes: include, exclude, step size, soak."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scheduler.actions.updates import UpdateOptions, choose, step
from scheduler.kinsta.models import WpItem

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def item(name: str, version: str, offered: str | None) -> WpItem:
    return WpItem(
        name=name,
        version=version,
        update="available" if offered else "none",
        update_version=offered,
    )


@pytest.mark.parametrize(
    ("old", "new", "size"),
    [
        ("5.3.1", "5.3.2", "patch"),
        ("5.3", "5.3.1", "patch"),
        ("5.3.9", "5.4.0", "minor"),
        ("5.3", "6.0", "major"),
        ("1.0-beta", "1.0.1", "patch"),
        ("", "2.0", "major"),
        ("trunk", "2.0", "major"),
    ],
)
def test_step_sizes(old: str, new: str, size: str) -> None:
    assert step(old, new) == size


ITEMS = [
    item("akismet", "5.3.1", "5.3.2"),
    item("woocommerce", "8.9.0", "9.0.0"),
    item("wordpress-seo", "22.1", "22.2"),
    item("elementor", "3.20.0", None),
    item("wordfence", "7.11.0", "7.11.1"),
]


def names(chosen: list[WpItem]) -> list[str]:
    return [i.name for i in chosen]


def test_everything_with_an_update_by_default() -> None:
    chosen, held = choose(ITEMS, UpdateOptions(), {}, NOW)
    assert names(chosen) == ["akismet", "woocommerce", "wordpress-seo", "wordfence"]
    assert held == {}


def test_include_exclude_and_only() -> None:
    chosen, held = choose(ITEMS, UpdateOptions(include=("w*",), exclude=("woocommerce",)), {}, NOW)
    assert names(chosen) == ["wordpress-seo", "wordfence"] and held == {"woocommerce": "excluded"}
    chosen, held = choose(ITEMS, UpdateOptions(only="patch"), {}, NOW)
    assert names(chosen) == ["akismet", "wordfence"]
    assert held["woocommerce"].startswith("major") and held["wordpress-seo"].startswith("minor")
    chosen, _ = choose(ITEMS, UpdateOptions(only="minor"), {}, NOW)
    assert names(chosen) == ["akismet", "wordpress-seo", "wordfence"]


def test_min_age_soaks_new_versions() -> None:
    seen = {
        ("akismet", "5.3.2"): NOW - timedelta(days=4),
        ("woocommerce", "9.0.0"): NOW - timedelta(hours=2),
        # wordpress-seo 22.2 and wordfence 7.11.1 are seen for the first time now
    }
    chosen, held = choose(ITEMS, UpdateOptions(min_age=3 * 86400), seen, NOW)
    assert names(chosen) == ["akismet"]
    assert "soaking" in held["woocommerce"] and "2.0 h" in held["woocommerce"]
    assert set(held) == {"woocommerce", "wordpress-seo", "wordfence"}


def test_a_quarantined_version_is_held_back_and_a_newer_one_is_not() -> None:
    from scheduler.ports import QuarantineEntry

    entry = QuarantineEntry(
        "plugins", "akismet", "5.3.2", "acme.example.com/ answered 500, expected 200", NOW,
        site="acme", environment="live", run_id=3, task_id=17,
    )  # fmt: skip
    chosen, held = choose(ITEMS, UpdateOptions(), {}, NOW, {("akismet", "5.3.2"): entry})
    assert "akismet" not in names(chosen) and len(chosen) == 3
    assert held["akismet"] == (
        "5.3.2 quarantined: rolled back on acme/live (run 3, task 17): "
        "acme.example.com/ answered 500, expected 200"
    )
    newer = [item("akismet", "5.3.1", "5.3.3")]
    chosen, held = choose(newer, UpdateOptions(), {}, NOW, {("akismet", "5.3.2"): entry})
    assert names(chosen) == ["akismet"] and held == {}


def test_an_excluded_item_says_excluded_even_when_quarantined() -> None:
    from scheduler.ports import QUARANTINED_BY_OPERATOR, QuarantineEntry

    entry = QuarantineEntry(
        "plugins", "woocommerce", "9.0.0", "vendor advisory", NOW, QUARANTINED_BY_OPERATOR
    )
    options = UpdateOptions(exclude=("woocommerce",))
    _, held = choose(ITEMS, options, {}, NOW, {("woocommerce", "9.0.0"): entry})
    assert held["woocommerce"] == "excluded"
    _, held = choose(ITEMS, UpdateOptions(), {}, NOW, {("woocommerce", "9.0.0"): entry})
    assert held["woocommerce"] == "9.0.0 quarantined by an operator: vendor advisory"
