"""The sandbox's rate limits, enforced as Kinsta documents them (REFERENCE.md, "Rate limits"):

- per key (company): every request made with the key, 120 per minute;
- per IP: every request from one client address, whatever its key, 1,000 per minute;
- creation: requests that create sites and environments, per key, 5 per minute (the endpoints
  of RateLimits.creation_endpoints, the table the governor uses too);
- logs: GET /sites/environments/{env_id}/logs, per key, 35 per minute.

Each bucket is a sliding window (scheduler.ratelimit.SlidingWindow) of `window_s` seconds. A
request is admitted only when every bucket it counts against has room, and then counts in all of
them; a refused request counts in none. A refusal is a 429 with Retry-After and the RateLimit-*
headers of the bucket that refused (the one that frees last, when several do); an admitted
request carries the per-key bucket's headers. RateLimit-Reset is the seconds until the window
frees a slot (the oldest counted request leaves it), rounded up, so it is never 0.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, field

from scheduler.clock import Clock
from scheduler.domain import RateLimits
from scheduler.ratelimit import SlidingWindow

LOGS_ENDPOINT = "GET /sites/environments/{env_id}/logs"
_PARAMETER = re.compile(r"\{[^}]*\}")


def endpoint_key(endpoint: str) -> str:
    """'POST /sites/{site_id}/environments' -> 'POST /sites/{}/environments': parameter names
    do not matter when a route is compared with a configured endpoint."""
    method, _, template = endpoint.strip().partition(" ")
    return f"{method.upper()} {_PARAMETER.sub('{}', template.strip())}"


@dataclass(frozen=True)
class LimitOptions:
    per_minute: int = RateLimits.per_minute
    creation_per_minute: int = RateLimits.creation_per_minute
    logs_per_minute: int = RateLimits.logs_per_minute
    per_ip_per_minute: int = RateLimits.per_ip_per_minute
    window_s: float = RateLimits.window_s
    creation_endpoints: tuple[str, ...] = RateLimits.creation_endpoints


@dataclass(frozen=True)
class Admission:
    admitted: bool
    bucket: str  # the kind whose headers these are: "key", "ip", "creation" or "logs"
    headers: dict[str, str] = field(default_factory=dict)


class Limiter:
    def __init__(self, options: LimitOptions, clock: Clock) -> None:
        self._options = options
        self._clock = clock
        self._limits = {
            "key": options.per_minute,
            "ip": options.per_ip_per_minute,
            "creation": options.creation_per_minute,
            "logs": options.logs_per_minute,
        }
        self._creation = {endpoint_key(e) for e in options.creation_endpoints}
        self._logs = endpoint_key(LOGS_ENDPOINT)
        self._windows: dict[tuple[str, str], SlidingWindow] = {}
        self._lock = threading.Lock()

    def kinds(self, endpoint: str | None) -> list[str]:
        """The buckets a request counts against; `endpoint` is its route ('GET /sites/{}'),
        None when it matches none."""
        kinds = ["key", "ip"]
        key = endpoint_key(endpoint) if endpoint else None
        if key in self._creation:
            kinds.append("creation")
        if key == self._logs:
            kinds.append("logs")
        return kinds

    def admit(self, key: str, client: str, endpoint: str | None) -> Admission:
        now = self._clock.monotonic()
        with self._lock:
            windows = {
                kind: self._window(kind, client if kind == "ip" else key)
                for kind in self.kinds(endpoint)
            }
            waits = {kind: window.wait_s(now) for kind, window in windows.items()}
            refused = max(waits, key=lambda kind: waits[kind])
            if waits[refused] > 0:
                retry = str(math.ceil(waits[refused]))
                headers = self._headers(refused, 0, waits[refused])
                return Admission(False, refused, {**headers, "Retry-After": retry})
            for window in windows.values():
                window.record(now)
            company = windows["key"]
            remaining = self._limits["key"] - company.used(now)
            return Admission(True, "key", self._headers("key", remaining, company.reset_s(now)))

    def _window(self, kind: str, scope: str) -> SlidingWindow:
        found = self._windows.get((kind, scope))
        if found is None:
            found = SlidingWindow(self._limits[kind], self._options.window_s)
            self._windows[(kind, scope)] = found
        return found

    def _headers(self, kind: str, remaining: int, reset_s: float) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self._limits[kind]),
            "RateLimit-Remaining": str(max(0, remaining)),
            "RateLimit-Reset": str(math.ceil(reset_s)),
        }
