"""What the sandbox's fleet is made of: WordPress sites and their environments (plugins and
themes, backups, domains, denied IPs, logs), the pages their domains serve, and the catalogue
generated sites draw their names, labels, plugins and themes from.

Plain data with its JSON shapes; the fleet (state.py) generates, finds and changes it under its
lock, and the operations that change it end there.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from scheduler.sandbox.releases import page_delay_s
from scheduler.sandbox_values import Effect

SITE_WORDS = (
    "acme", "bakery", "harbor", "nordic", "pixel", "summit", "garden", "atlas", "copper", "willow",
    "lumen", "orbit", "meadow", "granite", "cobalt", "juniper", "falcon", "tidal", "ember", "maple",
)  # fmt: skip
SITE_LABELS = ("Gold", "Silver", "WooCommerce", "Agency", "Do not remove")
PLUGINS = (
    ("akismet", "Akismet Anti-Spam: Spam Protection"),
    ("woocommerce", "WooCommerce"),
    ("wordpress-seo", "Yoast SEO"),
    ("contact-form-7", "Contact Form 7"),
    ("elementor", "Elementor"),
    ("wordfence", "Wordfence Security"),
    ("redirection", "Redirection"),
    ("classic-editor", "Classic Editor"),
)
THEMES = (
    ("twentytwentyfour", "Twenty Twenty-Four"),
    ("astra", "Astra"),
    ("generatepress", "GeneratePress"),
)


def new_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def now_ms() -> int:
    return int(time.time() * 1000)


def draw_items(
    rng: random.Random, catalogue: tuple[tuple[str, str], ...], count: int
) -> dict[str, Item]:
    """`count` of the catalogue's plugins or themes, at drawn versions, some with an update."""
    items = {}
    for name, title in rng.sample(catalogue, count):
        major, minor, patch = rng.randint(1, 9), rng.randint(0, 9), rng.randint(0, 9)
        version = f"{major}.{minor}.{patch}"
        roll = rng.random()
        latest = (
            f"{major}.{minor}.{patch + 1}" if roll < 0.3
            else f"{major}.{minor + 1}.0" if roll < 0.45
            else f"{major + 1}.0.0" if roll < 0.5
            else version
        )  # fmt: skip
        items[name] = Item(name, title, version, latest)
    return items


@dataclass
class Item:
    """A plugin or theme installed on an environment."""

    name: str
    title: str
    version: str
    latest: str
    status: str = "active"
    # A bad release's effect (releases.py), decided when the environment moved to this version.
    effect: Effect | None = None

    def to_json(self) -> dict[str, Any]:
        pending = self.latest != self.version
        return {
            "name": self.name,
            "title": self.title,
            "status": self.status,
            "version": self.version,
            "update": "available" if pending else "none",
            "update_version": self.latest if pending else None,
            "update_status": None,
        }


CRITICAL_ERROR_PAGE = (
    "<!DOCTYPE html><html><body><p>There has been a critical error on this "
    "website.</p></body></html>"
)


def healthy_page(site_title: str, path: str) -> str:
    return (
        f"<!DOCTYPE html><html><head><title>{site_title}</title></head><body>"
        f"<h1>{site_title}</h1><p>{path}</p><footer>Powered by WordPress</footer>"
        "</body></html>"
    )


def changed_page(site_title: str, path: str) -> str:
    """The page after a release that rewrote it: another title, another structure, larger."""
    sections = "".join(
        f'<section class="wp-block-group"><h2>Section {n}</h2><ul><li>{path}</li>'
        "<li>Lorem ipsum dolor sit amet</li></ul></section>"
        for n in range(1, 7)
    )
    return (
        "<!DOCTYPE html><html><head><title>Coming soon</title></head><body>"
        f'<div class="wp-site-blocks"><header><nav>{site_title}</nav></header>'
        f"<main>{sections}</main></div><footer>Powered by WordPress</footer></body></html>"
    )


@dataclass(frozen=True)
class Page:
    status: int
    body: str
    delay_s: float  # how long it takes to answer


@dataclass
class Backup:
    id: int
    name: str
    note: str | None
    type: str
    created_at: int
    files: dict[str, dict[str, Item]]  # "plugins"/"themes" -> name -> a copy, as taken
    broken: str | None = None  # the environment's homepage state when the backup was taken

    @property
    def snapshot(self) -> dict[str, dict[str, str]]:
        """ "plugins"/"themes" -> name -> version, as taken."""
        return {
            kind: {n: i.version for n, i in items.items()} for kind, items in self.files.items()
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "note": self.note,
            "type": self.type,
            "created_at": self.created_at,
        }


@dataclass
class SiteDomain:
    id: str
    name: str


@dataclass
class SandboxEnvironment:
    id: str
    site_id: str
    name: str
    display_name: str
    domain: str
    domain_id: str
    cdn_cache_id: str | None
    edge_cache_id: str | None
    container_id: str
    php_version: str = "8.2"
    is_premium: bool = False
    plugins: dict[str, Item] = field(default_factory=dict)
    themes: dict[str, Item] = field(default_factory=dict)
    backups: list[Backup] = field(default_factory=list)
    extra_domains: list[SiteDomain] = field(default_factory=list)
    denied_ips: list[str] = field(default_factory=list)
    log_lines: dict[str, list[str]] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)
    # How the homepage fails ("fatal", "blank"), set by hand (tests); bad releases' effects
    # live on the installed plugins and themes instead.
    broken: str | None = None
    fatal_logged_at: datetime | None = None  # the newest PHP fatal error logged

    def effects(self) -> list[Effect]:
        """The effects in force: those of the installed versions, and `broken`."""
        found = [i.effect for i in (*self.plugins.values(), *self.themes.values()) if i.effect]
        return [*found, Effect.parse(self.broken)] if self.broken else found

    def page(self, site_title: str, path: str, time_scale: float) -> Page:
        """What a browser gets at `path`: WordPress's page, or how a bad release spoilt it."""
        effects = self.effects()
        delay_s = page_delay_s(effects, time_scale)
        kinds = {e.kind for e in effects}
        if any(e.breaks(path) for e in effects):
            return Page(500, CRITICAL_ERROR_PAGE, delay_s)
        if "blank" in kinds:
            return Page(200, "", delay_s)
        if "changed" in kinds:
            return Page(200, changed_page(site_title, path), delay_s)
        return Page(200, healthy_page(site_title, path), delay_s)

    def homepage_failure(self) -> str | None:
        """How the homepage fails ("fatal" or "blank"), None when it answers."""
        effects = self.effects()
        if any(e.breaks("/") for e in effects):
            return "fatal"
        return "blank" if any(e.kind == "blank" for e in effects) else None

    def primary_domain_json(self) -> dict[str, Any]:
        return {
            "id": self.domain_id,
            "name": self.domain,
            "site_id": self.site_id,
            "is_active": True,
            "type": "live" if self.name == "live" else "staging",
        }

    def to_json(self) -> dict[str, Any]:
        domain = self.primary_domain_json()
        extra = [
            {
                "id": d.id,
                "name": d.name,
                "site_id": self.site_id,
                "is_active": True,
                "type": domain["type"],
            }
            for d in self.extra_domains
        ]
        return {
            "id": self.id,
            "name": self.name,
            "display_name": self.display_name,
            "is_blocked": False,
            "id_edge_cache": self.edge_cache_id,
            "cdn_cache_id": self.cdn_cache_id,
            "is_opt_out_from_automatic_php_update": False,
            "web_root": "/release_v1",
            "image_optimization_type": "off",
            "is_additional_sftp_accounts_enabled": False,
            "is_premium": self.is_premium,
            "wordpress_version": "6.6.2",
            "domains": [domain, *extra],
            "primaryDomain": domain,
            "ssh_connection": {"ssh_port": "22", "ssh_ip": {"external_ip": "127.0.0.1"}},
            "container_info": {
                "id": self.container_id,
                "php_engine_version": f"php{self.php_version}",
            },
        }

    def snapshot(self) -> dict[str, dict[str, str]]:
        return {
            "plugins": {n: p.version for n, p in self.plugins.items()},
            "themes": {n: t.version for n, t in self.themes.items()},
        }

    def files(self) -> dict[str, dict[str, Item]]:
        """Copies of the plugins and themes: what a backup keeps, a push or a clone copies."""
        return {
            "plugins": {n: replace(item) for n, item in self.plugins.items()},
            "themes": {n: replace(item) for n, item in self.themes.items()},
        }

    def copy_from(self, source: SandboxEnvironment) -> None:
        """Files pushed or cloned: the same plugins and themes at the same versions."""
        files = source.files()
        self.plugins, self.themes = files["plugins"], files["themes"]

    def restore(self, backup: Backup) -> None:
        """The files as the backup took them: the same plugins and themes, versions included."""
        self.plugins = {n: replace(item) for n, item in backup.files["plugins"].items()}
        self.themes = {n: replace(item) for n, item in backup.files["themes"].items()}
        self.broken = backup.broken


@dataclass
class SandboxSite:
    id: str
    name: str
    display_name: str
    labels: list[tuple[str, str]]
    environments: list[SandboxEnvironment]

    def to_json(self, *, include_environments: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "display_name": self.display_name,
            "status": "live",
            "siteLabels": [{"id": i, "name": n} for i, n in self.labels],
        }
        if include_environments:
            body["environments"] = [e.to_json() for e in self.environments]
        return body
