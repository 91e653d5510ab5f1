"""Which environments a job acts on, resolved from the live site list at run time."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from scheduler.domain import Target, TargetSelector
from scheduler.kinsta.models import Environment, Site


def _site_selected(site: Site, selector: TargetSelector) -> bool:
    names = (site.name, site.display_name)
    if any(fnmatchcase(n, pattern) for n in names for pattern in selector.exclude):
        return False
    if selector.only_sites and not any(
        fnmatchcase(n, pattern) for n in names for pattern in selector.only_sites
    ):
        return False
    by_name = any(fnmatchcase(n, pattern) for n in names for pattern in selector.sites)
    if not selector.labels:
        return by_name
    labels = {label.name.casefold() for label in site.labels}
    return by_name and any(label.casefold() in labels for label in selector.labels)


def _environment_selected(env: Environment, wanted: str) -> bool:
    """live: the live environment; staging: every other one; all; or a name / display name."""
    if wanted == "all":
        return True
    if wanted == "live":
        return env.name == "live"
    if wanted == "staging":
        return env.name != "live"
    return wanted.casefold() in (env.name.casefold(), env.display_name.casefold())


def select_targets(sites: Iterable[Site], selector: TargetSelector) -> list[Target]:
    targets = [
        Target(
            site_id=site.id,
            site_name=site.name,
            environment_id=env.id,
            environment_name=env.name,
            labels=tuple(label.name for label in site.labels),
            primary_domain=env.primary_domain.name if env.primary_domain else None,
            cdn_cache_id=env.cdn_cache_id,
            edge_cache_id=env.id_edge_cache,
            php_version=(
                (env.container_info.php_engine_version or "").removeprefix("php") or None
                if env.container_info
                else None
            ),
            wordpress_version=env.wordpress_version,
        )
        for site in sites
        if _site_selected(site, selector)
        for env in site.environments
        if _environment_selected(env, selector.environment)
        and _environment_selected(env, selector.only_environment or "all")
    ]
    return sorted(targets, key=lambda t: t.key)
