"""Which environments a selector picks."""

from __future__ import annotations

from scheduler.domain import TargetSelector
from scheduler.kinsta.models import Environment, Site, SiteLabel
from scheduler.targets import select_targets


def site(
    name: str, envs: tuple[str, ...] = ("live", "staging"), labels: tuple[str, ...] = ()
) -> Site:
    return Site(
        id=f"id-{name}",
        name=name,
        display_name=name.title(),
        siteLabels=[SiteLabel(name=label) for label in labels],
        environments=[Environment(id=f"{name}-{e}", name=e, display_name=e.title()) for e in envs],
    )


FLEET = [site("acme-shop", labels=("Gold",)), site("acme-blog"), site("zen", envs=("live", "qa"))]


def keys(selector: TargetSelector) -> list[str]:
    return [t.key for t in select_targets(FLEET, selector)]


def test_all_live() -> None:
    assert keys(TargetSelector()) == ["acme-blog/live", "acme-shop/live", "zen/live"]


def test_glob_exclude_and_environment() -> None:
    assert keys(TargetSelector(sites=("acme-*",), exclude=("*blog",), environment="all")) == [
        "acme-shop/live",
        "acme-shop/staging",
    ]


def test_staging_means_every_non_live_environment() -> None:
    assert keys(TargetSelector(environment="staging")) == [
        "acme-blog/staging",
        "acme-shop/staging",
        "zen/qa",
    ]


def test_environment_by_name_and_labels_case_insensitive() -> None:
    assert keys(TargetSelector(environment="QA")) == ["zen/qa"]
    assert keys(TargetSelector(labels=("gold",))) == ["acme-shop/live"]


def test_nothing_matches() -> None:
    assert keys(TargetSelector(sites=("nope*",))) == []
