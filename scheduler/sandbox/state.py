"""The sandbox's fleet: a company with users and WordPress sites, their environments (plugins,
themes, backups, domains, denied IPs, logs) and the operations that change them.

Everything is generated from a seed, so two sandboxes with the same seed have the same ids.
About one environment in four has neither a CDN nor an edge cache (both ids null, as the spec
allows), also decided by the seed. Operations take time: a 404 for a moment after acceptance (as
Kinsta does), then 202, then 200 (or 500 when a failure was injected); their effect (a version
moved, a backup added) is applied when they end. Durations are per action, drawn around a
realistic median with a spread (durations.py; `duration_spread=0` makes them exact), and scaled
by `time_scale`; `chains()` sums each environment's. Operation ids are `<kind>-<uuid4>`, fresh
per call (the spec's examples), or `<kind>-<target id>`, repeating per target
(`operation_ids="per-target"`, as recorded fixtures suggest Kinsta may do): clients must work
with both.

What the fleet is made of (sites, environments, plugins and themes, backups, domains) lives in
wordpress.py; its names stay importable from here.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

from scheduler.clock import Clock
from scheduler.sandbox.durations import DEFAULT_SPREAD, MEDIAN_S, Durations
from scheduler.sandbox.releases import Releases
from scheduler.sandbox.wordpress import (
    PLUGINS,
    SITE_LABELS,
    SITE_WORDS,
    THEMES,
    Backup,
    Item,
    Page,
    SandboxEnvironment,
    SandboxSite,
    SiteDomain,
    draw_items,
    new_uuid,
    now_ms,
)

__all__ = [
    "ACTION_DURATION_S",
    "CACHELESS_SHARE",
    "NOT_FOUND_FOR_S",
    "OPERATION_ID_MODES",
    "SYSTEM",
    "Backup",
    "Fleet",
    "Item",
    "Page",
    "SandboxEnvironment",
    "SandboxOperation",
    "SandboxSite",
    "SiteDomain",
]

# Median seconds per kind at time_scale 1.0 (durations.py, where each comes from).
ACTION_DURATION_S = MEDIAN_S
NOT_FOUND_FOR_S = 1.0  # the 404 window right after acceptance
CACHELESS_SHARE = 0.25  # environments generated without CDN and edge cache ids
OPERATION_ID_MODES = ("fresh", "per-target")
# Backups Kinsta takes itself before a restore or a push overwrites an environment.
SYSTEM = "system"


@dataclass
class SandboxOperation:
    operation_id: str
    kind: str
    environment_id: str | None  # the environment it mutates, for overlap counting
    accepted_at: float
    duration_s: float
    fails: bool
    effect: Callable[[], Any] | None = None
    claim: str | None = None  # what it reserves while running ("manual-backup:<env id>"...)
    data: Any = None
    polls: int = 0
    settled: bool = False

    def ends_at(self) -> float:
        return self.accepted_at + self.duration_s


class Fleet:
    def __init__(
        self,
        sites: int,
        seed: int,
        time_scale: float,
        clock: Clock,
        operation_ids: str = "fresh",
        *,
        duration_spread: float = DEFAULT_SPREAD,
        seeded_updates: bool = True,
    ) -> None:
        if operation_ids not in OPERATION_ID_MODES:
            raise ValueError(f"operation_ids must be one of {', '.join(OPERATION_ID_MODES)}")
        self.clock = clock
        self.time_scale = time_scale
        self.operation_ids = operation_ids
        self.seeded_updates = seeded_updates  # False: generated items offer no update
        self.lock = threading.RLock()
        self._rng = random.Random(seed)
        # A stream of its own, so that which environments lack caches leaves every id as it was.
        self._cache_rng = random.Random(f"caches-{seed}")
        self.durations = Durations(seed, duration_spread)  # and durations: their own stream too
        self.company_id = new_uuid(self._rng)
        self.users = [
            {
                "id": new_uuid(self._rng),
                "email": f"{who}@agency.example",
                "image": "",
                "full_name": who.title(),
            }
            for who in ("owner", "developer")
        ]
        self._next_backup_id = 100_000_000 + seed * 1_000_000
        self.sites = [self._make_site(index) for index in range(sites)]
        self.operations: dict[str, SandboxOperation] = {}  # the latest per id, for polls
        self._running: list[SandboxOperation] = []
        self.fail_next: Counter[str] = Counter()  # kind -> how many upcoming operations fail
        self.active: Counter[str] = Counter()  # environment id -> mutating operations running
        self.overlaps = 0
        self._chains: dict[str, float] = {}  # environment id -> the durations of its operations
        self.releases = Releases()  # the bad releases (releases.py)

    # --- generation -------------------------------------------------------------------------

    def make_environment(
        self, site_id: str, name: str, display: str, domain: str
    ) -> SandboxEnvironment:
        rng = self._rng
        env = SandboxEnvironment(
            id=new_uuid(rng),
            site_id=site_id,
            name=name,
            display_name=display,
            domain=domain,
            domain_id=new_uuid(rng),
            cdn_cache_id=new_uuid(rng),
            edge_cache_id=new_uuid(rng),
            container_id=new_uuid(rng),
            php_version=rng.choice(("8.1", "8.2", "8.3")),
            plugins=draw_items(rng, PLUGINS, rng.randint(3, 6)),
            themes=draw_items(rng, THEMES, 2),
        )
        if not self.seeded_updates:  # drawn all the same, so that every id stays as it was
            for item in (*env.plugins.values(), *env.themes.values()):
                item.latest = item.version
        if self._cache_rng.random() < CACHELESS_SHARE:
            env.cdn_cache_id = env.edge_cache_id = None
        day_ms = 86_400_000
        for age in (3, 2, 1):
            env.backups.append(
                self._backup(env, "automatic", "Daily Auto Backup", now_ms() - age * day_ms)
            )
        env.log_lines = {
            "error": [
                f"[27-Nov-2026 0{i}:00:00 UTC] PHP Warning:  Undefined index in {domain}"
                for i in range(3)
            ],
            "access": [
                f'{domain} 127.0.0.1 - - [27/Nov/2026:0{i}:00:00 +0000] "GET / HTTP/1.1" 200'
                for i in range(5)
            ],
            "kinsta-cache-perf": [f"{domain} HIT / 0.00{i}" for i in range(3)],
        }
        return env

    def _backup(
        self, env: SandboxEnvironment, kind: str, note: str | None, created_ms: int
    ) -> Backup:
        self._next_backup_id += 1
        name = f"{env.domain.split('.')[0]}-{created_ms // 1000}-{kind}"
        return Backup(self._next_backup_id, name, note, kind, created_ms, env.files(), env.broken)

    def _make_site(self, index: int, name: str | None = None) -> SandboxSite:
        rng = self._rng
        name = name or f"{rng.choice(SITE_WORDS)}-{rng.choice(SITE_WORDS)}-{index + 1}"
        site_id = new_uuid(rng)
        labels = [(new_uuid(rng), label) for label in rng.sample(SITE_LABELS, rng.randint(0, 2))]
        environments = [self.make_environment(site_id, "live", "Live", f"{name}.example.com")]
        if index % 2 == 0:
            environments.append(
                self.make_environment(site_id, "staging", "Staging", f"stg-{name}.kinsta.cloud")
            )
        return SandboxSite(site_id, name, name.replace("-", " ").title(), labels, environments)

    def new_id(self) -> str:
        """A uuid4 drawn from the fleet's seeded stream (a site or a domain being made)."""
        return new_uuid(self._rng)

    # --- look-ups --------------------------------------------------------------------------

    def site(self, site_id: str) -> SandboxSite | None:
        return next((s for s in self.sites if s.id == site_id), None)

    def environment(self, env_id: str) -> SandboxEnvironment | None:
        for site in self.sites:
            for env in site.environments:
                if env.id == env_id:
                    return env
        return None

    def backup(self, backup_id: int) -> tuple[SandboxEnvironment, Backup] | None:
        for site in self.sites:
            for env in site.environments:
                for backup in env.backups:
                    if backup.id == backup_id:
                        return env, backup
        return None

    # --- changes (applied when their operation ends) -------------------------------------------

    def add_manual_backup(self, env: SandboxEnvironment, tag: str) -> None:
        env.backups.append(self._backup(env, "manual", tag or None, now_ms()))

    def add_system_backup(self, env: SandboxEnvironment, note: str) -> None:
        """What Kinsta does before a restore or a push overwrites an environment."""
        with self.lock:
            env.backups.append(self._backup(env, SYSTEM, note, now_ms()))

    def claimed(self, claim: str) -> int:
        """Running operations holding `claim` (a backup or an environment not there yet)."""
        with self.lock:
            return sum(1 for op in self._running if op.claim == claim)

    def item_moved(self, env: SandboxEnvironment, kind: str, item: Item) -> None:
        """A plugin or theme ("plugins"/"themes") moved to another version: the version's bad
        release effect, if any, goes with the installed copy, and a fatal one is logged as PHP
        would."""
        item.effect = self.releases.effect_of(item.name, item.version)
        if item.effect is not None and item.effect.logs_fatal:
            self._log_fatal(env, kind, item.name)

    def _log_fatal(self, env: SandboxEnvironment, kind: str, name: str) -> None:
        # Each line a second after the previous one at the least: a client that compares the
        # log's fatal lines before and after sees every new one, however fast the sandbox runs.
        at = self.clock.now().astimezone(UTC).replace(microsecond=0)
        if env.fatal_logged_at is not None and at <= env.fatal_logged_at:
            at = env.fatal_logged_at + timedelta(seconds=1)
        env.fatal_logged_at = at
        file = f"plugins/{name}/{name}.php" if kind == "plugins" else f"themes/{name}/functions.php"
        env.log_lines.setdefault("error", []).append(
            f"[{at:%d-%b-%Y %H:%M:%S} UTC] PHP Fatal error:  Uncaught Error: Call to undefined "
            f"function {name.replace('-', '_')}_init() in /www/wp-content/{file}:42"
        )

    def site_page(self, host: str, path: str) -> Page | None:
        """The page an environment's domain serves, None when no environment has that domain."""
        with self.lock:
            self._settle(self.clock.monotonic())
            for site in self.sites:
                for env in site.environments:
                    names = {env.domain, *(d.name for d in env.extra_domains)}
                    if host in names:
                        return env.page(site.display_name, path, self.time_scale)
        return None

    def add_site(self, display_name: str) -> str:
        site = self._make_site(len(self.sites), display_name.lower().replace(" ", "-"))
        site.environments = site.environments[:1]
        self.sites.append(site)
        return site.id

    def add_environment(
        self, site: SandboxSite, display_name: str, premium: bool, source: SandboxEnvironment | None
    ) -> str:
        slug = display_name.lower().replace(" ", "-")
        env = self.make_environment(site.id, slug, display_name, f"{slug}-{site.name}.kinsta.cloud")
        env.is_premium = premium
        if source is not None:
            env.copy_from(source)
        site.environments.append(env)
        return env.id

    def delete_environment(self, env_id: str) -> None:
        for site in self.sites:
            site.environments = [e for e in site.environments if e.id != env_id]

    # --- operations -------------------------------------------------------------------------

    def start_operation(
        self,
        kind: str,
        target_id: str,
        environment: SandboxEnvironment | None,
        effect: Callable[[], Any] | None = None,
        claim: str | None = None,
    ) -> SandboxOperation:
        """Accept an asynchronous action, with an id per `operation_ids`: fresh per call, or
        `<kind>-<target id>`, repeating for the same target (polls then see the newest)."""
        with self.lock:
            now = self.clock.monotonic()
            fails = self.fail_next[kind] > 0
            if fails:
                self.fail_next[kind] -= 1
            duration = self.durations.draw(kind, self.time_scale)
            env_id = environment.id if environment is not None else None
            suffix = target_id if self.operation_ids == "per-target" else str(uuid.uuid4())
            operation = SandboxOperation(
                f"{kind}-{suffix}", kind, env_id, now, duration, fails, effect, claim
            )
            self._settle(now)
            if env_id is not None:
                if self.active[env_id]:
                    self.overlaps += 1
                self.active[env_id] += 1
                self._chains[env_id] = self._chains.get(env_id, 0.0) + duration
                environment.counters[f"{kind}:accepted"] += 1  # type: ignore[union-attr]
            self.operations[operation.operation_id] = operation
            self._running.append(operation)
            return operation

    def _settle(self, now: float) -> None:
        """Apply the effects of operations that have ended."""
        still_running = []
        for operation in self._running:
            if operation.ends_at() > now:
                still_running.append(operation)
                continue
            operation.settled = True
            if not operation.fails and operation.effect is not None:
                operation.data = operation.effect()
            env_id = operation.environment_id
            if env_id is None:
                continue
            env = self.environment(env_id)
            if env is not None:
                env.counters[f"{operation.kind}:{'failed' if operation.fails else 'done'}"] += 1
            self.active[env_id] -= 1
            if self.active[env_id] <= 0:
                del self.active[env_id]
        self._running = still_running

    def chains(self) -> dict[str, float]:
        """Per environment id, the sum of the drawn durations of every operation accepted on it
        (failed and running ones too). `operations` keeps only the latest operation per id, which
        with per-target ids is not every one. An environment whose operations ran one after
        another, as the scheduler runs them, took at least its sum: the longest bounds a run's
        makespan from below."""
        with self.lock:
            return dict(self._chains)

    def settle(self) -> None:
        with self.lock:
            self._settle(self.clock.monotonic())

    def operation_status(self, operation_id: str) -> tuple[int, str, Any]:
        with self.lock:
            now = self.clock.monotonic()
            self._settle(now)
            operation = self.operations.get(operation_id)
            if operation is None or now - operation.accepted_at < NOT_FOUND_FOR_S * self.time_scale:
                return (
                    404,
                    "Could not find data or the user does not have permissions to retrieve it",
                    None,
                )
            operation.polls += 1
            if now < operation.ends_at():
                return 202, "Operation in progress", None
            if operation.fails:
                return 500, "Error occurred while processing your request", None
            return 200, "Successfully finished request", operation.data

    def state(self) -> dict[str, dict[str, Any]]:
        """Each environment's observable state, keyed "site/environment"."""
        with self.lock:
            self._settle(self.clock.monotonic())
            return {
                f"{site.name}/{env.name}": {
                    "environment_id": env.id,
                    "php": env.php_version,
                    "plugins": {n: i.version for n, i in env.plugins.items()},
                    "themes": {n: i.version for n, i in env.themes.items()},
                    "updates": {
                        n: i.latest
                        for n, i in (*env.plugins.items(), *env.themes.items())
                        if i.latest != i.version
                    },
                    "backups": [b.to_json() for b in env.backups],
                    "cdn_cache_id": env.cdn_cache_id,
                    "edge_cache_id": env.edge_cache_id,
                    "domains": [env.domain, *(d.name for d in env.extra_domains)],
                    "broken": env.homepage_failure(),
                    "effects": {
                        n: str(i.effect)
                        for n, i in (*env.plugins.items(), *env.themes.items())
                        if i.effect is not None
                    },
                    "counters": dict(env.counters),
                }
                for site in self.sites
                for env in site.environments
            }

    def counters(self) -> dict[str, dict[str, int]]:
        with self.lock:
            self._settle(self.clock.monotonic())
            return {
                f"{site.name}/{env.name}": dict(env.counters)
                for site in self.sites
                for env in site.environments
                if env.counters
            }
