"""The sandbox's fleet: a company with WordPress sites and environments, and their operations.

Everything is generated from a seed, so two sandboxes with the same seed have the same ids.
Operations take time: a 404 for a moment after acceptance (as Kinsta does), then 202, then 200
(or 500 when a failure was injected). Durations are per action and scaled by `time_scale`.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from scheduler.clock import Clock

# Seconds at time_scale 1.0, roughly what Kinsta takes.
ACTION_DURATION_S: dict[str, float] = {
    "cache:clear": 4.0,
    "php:restart": 10.0,
}
NOT_FOUND_FOR_S = 1.0  # the 404 window right after acceptance

_WORDS = (
    "acme", "bakery", "harbor", "nordic", "pixel", "summit", "garden", "atlas", "copper", "willow",
    "lumen", "orbit", "meadow", "granite", "cobalt", "juniper", "falcon", "tidal", "ember", "maple",
)  # fmt: skip
_LABELS = ("Gold", "Silver", "WooCommerce", "Agency", "Do not remove")


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass
class SandboxEnvironment:
    id: str
    site_id: str
    name: str
    display_name: str
    domain: str
    domain_id: str
    cdn_cache_id: str
    edge_cache_id: str
    container_id: str
    php_version: str = "8.2"
    counters: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        domain = {
            "id": self.domain_id,
            "name": self.domain,
            "site_id": self.site_id,
            "is_active": True,
            "type": "live" if self.name == "live" else "staging",
        }
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
            "is_premium": False,
            "wordpress_version": "6.6.2",
            "domains": [domain],
            "primaryDomain": domain,
            "ssh_connection": {"ssh_port": "22", "ssh_ip": {"external_ip": "127.0.0.1"}},
            "container_info": {
                "id": self.container_id,
                "php_engine_version": f"php{self.php_version}",
            },
        }


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


@dataclass
class SandboxOperation:
    operation_id: str
    kind: str
    environment_id: str
    accepted_at: float
    duration_s: float
    fails: bool
    polls: int = 0
    settled: bool = False

    def ends_at(self) -> float:
        return self.accepted_at + self.duration_s


class Fleet:
    def __init__(self, sites: int, seed: int, time_scale: float, clock: Clock) -> None:
        self.clock = clock
        self.time_scale = time_scale
        self.lock = threading.RLock()
        rng = random.Random(seed)
        self.company_id = _uuid(rng)
        self.sites = [self._make_site(rng, index) for index in range(sites)]
        self.operations: dict[str, SandboxOperation] = {}  # the latest per id, for polls
        self._running: list[SandboxOperation] = []
        self.fail_next: Counter[str] = Counter()  # kind -> how many upcoming operations fail
        self.active: Counter[str] = Counter()  # environment id -> mutating operations running
        self.overlaps = 0

    @staticmethod
    def _make_site(rng: random.Random, index: int) -> SandboxSite:
        name = f"{rng.choice(_WORDS)}-{rng.choice(_WORDS)}-{index + 1}"
        site_id = _uuid(rng)
        labels = [(_uuid(rng), label) for label in rng.sample(_LABELS, rng.randint(0, 2))]
        envs = [("live", "Live", f"{name}.example.com")]
        if index % 2 == 0:
            envs.append(("staging", "Staging", f"stg-{name}.kinsta.cloud"))
        environments = [
            SandboxEnvironment(
                id=_uuid(rng),
                site_id=site_id,
                name=env_name,
                display_name=display,
                domain=domain,
                domain_id=_uuid(rng),
                cdn_cache_id=_uuid(rng),
                edge_cache_id=_uuid(rng),
                container_id=_uuid(rng),
                php_version=rng.choice(("8.1", "8.2", "8.3")),
            )
            for env_name, display, domain in envs
        ]
        return SandboxSite(site_id, name, name.replace("-", " ").title(), labels, environments)

    # --- look-ups --------------------------------------------------------------------------

    def site(self, site_id: str) -> SandboxSite | None:
        return next((s for s in self.sites if s.id == site_id), None)

    def environment(self, env_id: str) -> SandboxEnvironment | None:
        for site in self.sites:
            for env in site.environments:
                if env.id == env_id:
                    return env
        return None

    # --- operations -------------------------------------------------------------------------

    def start_operation(self, kind: str, env: SandboxEnvironment) -> SandboxOperation:
        """Accept an asynchronous action. Ids are `<kind>-<environment id>`: like Kinsta's, they
        repeat for the same target, so clients must not treat them as unique per call."""
        with self.lock:
            now = self.clock.monotonic()
            fails = self.fail_next[kind] > 0
            if fails:
                self.fail_next[kind] -= 1
            duration = ACTION_DURATION_S.get(kind, 5.0) * self.time_scale
            operation = SandboxOperation(f"{kind}-{env.id}", kind, env.id, now, duration, fails)
            self._settle(now)
            if self.active[env.id]:
                self.overlaps += 1
            self.active[env.id] += 1
            self.operations[operation.operation_id] = operation
            self._running.append(operation)
            env.counters[f"{kind}:accepted"] += 1
            return operation

    def _settle(self, now: float) -> None:
        """Apply the effects of operations that have ended."""
        still_running = []
        for operation in self._running:
            if operation.ends_at() > now:
                still_running.append(operation)
                continue
            operation.settled = True
            env = self.environment(operation.environment_id)
            if env is not None:
                env.counters[f"{operation.kind}:{'failed' if operation.fails else 'done'}"] += 1
            self.active[operation.environment_id] -= 1
            if self.active[operation.environment_id] <= 0:
                del self.active[operation.environment_id]
        self._running = still_running

    def operation_status(self, operation_id: str) -> tuple[int, str]:
        with self.lock:
            now = self.clock.monotonic()
            self._settle(now)
            operation = self.operations.get(operation_id)
            if operation is None or now - operation.accepted_at < NOT_FOUND_FOR_S * self.time_scale:
                return (
                    404,
                    "Could not find data or the user does not have permissions to retrieve it",
                )
            operation.polls += 1
            if now < operation.ends_at():
                return 202, "Operation in progress"
            if operation.fails:
                return 500, "Error occurred while processing your request"
            return 200, "Successfully finished request"

    def counters(self) -> dict[str, dict[str, int]]:
        with self.lock:
            self._settle(self.clock.monotonic())
            return {
                f"{site.name}/{env.name}": dict(env.counters)
                for site in self.sites
                for env in site.environments
                if env.counters
            }
