"""Which update the sandbox offers for a plugin or theme, and at which version it is installed.

An offer names a plugin or theme (a glob, unless it installs), the version offered as its update
(None: none), and the sites it applies to (names or globs, as jobs' targets). Kinsta's lists
then show it as `update_version`, and a bulk update moves to it. With `installed`, the plugin or
theme is first put at that version on those environments, added where missing: a move, so a bad
release at that version takes effect (releases.py). Offers come from jobs.yaml's
`sandbox.offers`, applied when the sandbox starts, and from POST /_sandbox/offer.

So "site S has A at 1.0.0 offered 2.0.0 (a bad release), and B, C, D with good updates" is four
offers with `sites: [S]` and `installed`, beside one bad release; `seeded_updates: false` first
leaves the generated plugins and themes without updates of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from scheduler.sandbox.state import Fleet
from scheduler.sandbox.wordpress import PLUGINS, THEMES, Item, SandboxEnvironment
from scheduler.sandbox_values import SandboxOffer, parse_version

KINDS = {"plugin": "plugins", "theme": "themes"}
_GLOB = set("*?[")


def offer_problem(offer: SandboxOffer) -> str | None:
    """What makes the offer unusable wherever it applies, None when nothing does."""
    if not offer.name.strip():
        return "name: name a plugin or theme"
    if offer.installed is not None and _GLOB & set(offer.name):
        return "name: a plugin or theme to install is named exactly, not by a pattern"
    if offer.kind is not None and offer.kind not in KINDS:
        return f"kind: {offer.kind!r} is neither plugin nor theme"
    if not offer.sites:
        return "sites: name at least one site (or '*')"
    return None


def apply_offer(fleet: Fleet, offer: SandboxOffer) -> int:
    """Apply the offer on the fleet; how many plugins and themes it changed or installed."""
    with fleet.lock:
        count = 0
        for site in fleet.sites:
            if not any(fnmatchcase(site.name, pattern) for pattern in offer.sites):
                continue
            for env in site.environments:
                if offer.environment in (None, env.name):
                    count += _apply(fleet, env, offer)
        return count


def _apply(fleet: Fleet, env: SandboxEnvironment, offer: SandboxOffer) -> int:
    if offer.installed is not None:
        item = _install(fleet, env, offer, offer.installed)
        item.latest = offer.version or item.version
        return 1
    found = [
        item
        for items in (env.plugins, env.themes)
        for name, item in items.items()
        if fnmatchcase(name, offer.name)
    ]
    for item in found:
        item.latest = offer.version or item.version
    return len(found)


def _install(fleet: Fleet, env: SandboxEnvironment, offer: SandboxOffer, version: str) -> Item:
    kind = _kind_of(env, offer)
    items: dict[str, Item] = getattr(env, kind)
    item = items.get(offer.name)
    if item is None:
        item = items[offer.name] = Item(offer.name, _title(offer.name), version, version)
        fleet.item_moved(env, kind, item)
    elif item.version != version:
        item.version = version
        fleet.item_moved(env, kind, item)
    return item


def _kind_of(env: SandboxEnvironment, offer: SandboxOffer) -> str:
    """ "plugins" or "themes": as asked, else where the environment has it, else the catalogue's."""
    if offer.kind is not None:
        return KINDS[offer.kind]
    if offer.name in env.themes and offer.name not in env.plugins:
        return "themes"
    if offer.name in env.plugins:
        return "plugins"
    return "themes" if offer.name in dict(THEMES) else "plugins"


def _title(name: str) -> str:
    catalogue = dict(PLUGINS) | dict(THEMES)
    return catalogue.get(name) or name.replace("-", " ").title()


def offer_from_json(body: Mapping[str, Any]) -> SandboxOffer:
    """POST /_sandbox/offer's body as an offer; ValueError naming what is wrong."""
    unknown = set(body) - {"name", "version", "sites", "environment", "installed", "kind"}
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
    if "version" not in body:
        raise ValueError("version: give the version offered (null: no update on offer)")
    sites = body.get("sites", ["*"])
    if not isinstance(sites, list) or not all(isinstance(s, str) for s in sites):
        raise ValueError("sites: a list of site names or globs")
    offer = SandboxOffer(
        name=_text(body, "name") or "",
        version=parse_version(body["version"]),
        sites=tuple(sites),
        environment=_text(body, "environment"),
        installed=parse_version(body.get("installed")),
        kind=_text(body, "kind"),
    )
    if problem := offer_problem(offer):
        raise ValueError(problem)
    return offer


def _text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key}: a string")
    return value
