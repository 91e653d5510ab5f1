"""The sandbox HTTP server: a fake Kinsta API on loopback, real HTTP, one thread per connection.

Served under /v2 like api.kinsta.com. Besides the API it enforces Kinsta's rate limits (per
key, per IP, creation and logs: limits.py; 429 with Retry-After and RateLimit-* headers), checks
each request and response against the spec, injects faults (faults.py), and serves its own admin
endpoints under /_sandbox/ (never part of the API):
  GET  /_sandbox/stats       requests, violations, 429s (and which bucket refused them), overlaps,
                             faults (and the latest 1,000 struck, with when they struck),
                             per-environment effects, the longest environment's chain (the sum
                             of its operations' durations, Fleet.chains)
  GET  /_sandbox/fleet       the company, sites and environments
  GET  /_sandbox/state       per environment: plugin and theme versions, backups, PHP, domains,
                             cache ids, homepage health ("broken"), bad releases' "effects" and
                             effect counters (what tests assert on)
  POST /_sandbox/fail-next   {"kind": "cache:clear", "count": 1}: upcoming operations fail
  POST /_sandbox/faults      change the injected faults (faults.Faults; 400 names a bad value).
                             Per kind of request: "polls" (GET /operations/{id}) or "mutating"
                             (any method but GET), or an HTTP method. A transient 500 on the
                             next poll: {"next": [{"status": 500, "method": "polls"}]}; a 502 on
                             the next mutating request after Kinsta acted on it:
                             {"next": [{"status": 502, "method": "mutating",
                                        "after_acting": true}]}; 5% of polls at random:
                             {"error": 0.05, "statuses": [500, 502, 504], "only": "polls"}.
                             In-process: server.sandbox.faults.update({...}) takes the same.
  POST /_sandbox/bad-release {"name": "elementor", "version": "3.2.1" (null or "*": every
                             version), "effect": "fatal"}: an environment that moves to it shows
                             the effect (releases.py lists them; "effect": null drops the rule)
  GET  /_sandbox/bad-releases  the bad releases
  POST /_sandbox/offer       {"name", "version" (null: none), "sites": [globs], "environment",
                             "installed", "kind"}: the update offered (offers.py); answers
                             {"changed": N}, or 400 when it changed nothing
  POST /_sandbox/break-on-update  {"name": "elementor", "mode": "fatal"|"blank"}: every update
                             of that plugin or theme is a bad release (the older form)
It also serves each fake environment's website: a request whose Host header is an environment's
domain gets that site's page (or what a bad release made of it, after its time to answer), so
verification is tested over real HTTP.
"""

from __future__ import annotations

import json
import random
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from scheduler.clock import Clock, SystemClock
from scheduler.domain import RateLimits
from scheduler.sandbox.admin import CHANGES, Answer, unmatched
from scheduler.sandbox.app import HANDLERS, Request
from scheduler.sandbox.faults import Fault, Faults
from scheduler.sandbox.limits import Limiter, LimitOptions
from scheduler.sandbox.offers import apply_offer, offer_problem
from scheduler.sandbox.spec import Spec, load_spec
from scheduler.sandbox.state import Fleet, Page
from scheduler.sandbox.stats import Stats
from scheduler.sandbox.stats import max_in_window as max_in_window  # noqa: PLC0414 (benchmarks)
from scheduler.sandbox_values import SandboxOffer, SandboxRelease, SandboxSettings

BASE_PATH = "/v2"
ADMIN_PATH = "/_sandbox"
DEFAULT_API_KEY = "sandbox-api-key"
TOO_MANY = "Too many requests, please try again later."


@dataclass(frozen=True)
class SandboxOptions:
    sites: int = 6
    seed: int = 1
    time_scale: float = 1.0
    # How much operation durations vary around their medians (durations.py); 0: exactly them.
    duration_spread: float = SandboxSettings.duration_spread
    api_key: str = DEFAULT_API_KEY
    # Kinsta's limits (limits.py), each per `window_s`; jobs.yaml's rate_limits with --sandbox.
    per_minute: int = RateLimits.per_minute
    creation_per_minute: int = RateLimits.creation_per_minute
    logs_per_minute: int = RateLimits.logs_per_minute
    per_ip_per_minute: int = RateLimits.per_ip_per_minute
    window_s: float = RateLimits.window_s
    creation_endpoints: tuple[str, ...] = RateLimits.creation_endpoints
    faults: Faults = field(default_factory=Faults)
    companies: int = 1  # each with its own fleet and key; see keys()
    # (plugin or theme name, "fatal" or "blank"): every update of it is a bad release
    break_on_update: tuple[tuple[str, str], ...] = ()
    bad_releases: tuple[SandboxRelease, ...] = ()  # releases.py
    offers: tuple[SandboxOffer, ...] = ()  # applied in order once the fleets exist (offers.py)
    seeded_updates: bool = True  # False: the generated plugins and themes offer no update
    operation_ids: str = "fresh"  # or "per-target": `<kind>-<target id>`, repeating (state.py)

    def keys(self) -> list[str]:
        """The key of each company: api_key, then api_key-2, api_key-3..."""
        return [self.api_key] + [f"{self.api_key}-{n}" for n in range(2, self.companies + 1)]

    def limits(self) -> LimitOptions:
        return LimitOptions(
            per_minute=self.per_minute,
            creation_per_minute=self.creation_per_minute,
            logs_per_minute=self.logs_per_minute,
            per_ip_per_minute=self.per_ip_per_minute,
            window_s=self.window_s,
            creation_endpoints=self.creation_endpoints,
        )


class UnmatchedOffer(ValueError):
    """An offer of SandboxOptions.offers that cannot apply, by its index in them."""

    def __init__(self, index: int, problem: str) -> None:
        self.index = index
        super().__init__(problem)


class Sandbox:
    """The fake API's state and request handling, independent of the socket server."""

    def __init__(
        self, options: SandboxOptions, clock: Clock | None = None, spec: Spec | None = None
    ) -> None:
        self.options = options
        self.clock = clock or SystemClock()
        self.spec = spec or load_spec()
        self.fleets = {
            key: Fleet(
                options.sites,
                options.seed + index,
                options.time_scale,
                self.clock,
                options.operation_ids,
                duration_spread=options.duration_spread,
                seeded_updates=options.seeded_updates,
            )
            for index, key in enumerate(options.keys())
        }
        self.fleet = self.fleets[options.api_key]  # the first company's
        self._arrange(options)
        self.stats = Stats()
        self._lock = threading.Lock()
        self._limiter = Limiter(options.limits(), self.clock)
        self.faults = options.faults
        self._rng = random.Random(options.seed)

    def _arrange(self, options: SandboxOptions) -> None:
        """Bad releases, then offers (which may install a bad release); an offer that changes
        nothing raises UnmatchedOffer."""
        rules = [SandboxRelease(n, None, mode) for n, mode in options.break_on_update]
        for fleet in self.fleets.values():
            for rule in (*rules, *options.bad_releases):
                fleet.releases.add(rule)
        for index, offer in enumerate(options.offers):
            if problem := offer_problem(offer):
                raise UnmatchedOffer(index, problem)
            if not sum(apply_offer(fleet, offer) for fleet in self.fleets.values()):
                raise UnmatchedOffer(index, unmatched(offer))

    def handle(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes | None,
        client: str = "127.0.0.1",
    ) -> tuple[int, Any, dict[str, str]]:
        """Answer one request from `client` (its address: the per-IP limit's key)."""
        split = urlsplit(target)
        if split.path.startswith(ADMIN_PATH):
            return self._admin(method, split.path.removeprefix(ADMIN_PATH), body)
        if not split.path.startswith(BASE_PATH + "/"):
            return 404, {"message": "Not found", "status": 404}, {}
        path = split.path.removeprefix(BASE_PATH)
        query = parse_qs(split.query, keep_blank_values=True)
        key = headers.get("authorization", "").removeprefix("Bearer ").strip()
        found = self.spec.match(method, path)
        endpoint = f"{method} {found.route.template}" if found is not None else None
        admission = self._limiter.admit(key, client, endpoint)
        with self._lock:
            self.stats.requests += 1
            self.stats.arrivals.append(self.clock.monotonic())
            if not admission.admitted:
                self.stats.rate_limited += 1
                self.stats.rate_limited_by[admission.bucket] += 1
        if not admission.admitted:
            return 429, {"status": 429, "message": TOO_MANY}, admission.headers
        if self._forced_429():
            retry = {"Retry-After": str(self.faults.retry_after_s)}
            return 429, {"status": 429, "message": TOO_MANY}, {**admission.headers, **retry}
        status, payload = self._api(method, path, query, key=key, headers=headers, body=body)
        return status, payload, admission.headers

    def _api(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        *,
        key: str,
        headers: dict[str, str],
        body: bytes | None,
    ) -> tuple[int, Any]:
        found, problems = self.spec.check_request(method, path, query, body, headers)
        with self._lock:
            self.stats.violations.extend(problems)
        if found is None:
            return 404, {"message": "Not found", "status": 404}
        fleet = self.fleets.get(key)
        if fleet is None:
            return 401, {"message": "No or invalid API key provided to the request", "status": 401}
        if problems:
            return 400, {"message": BAD_REQUEST_MESSAGE, "status": 400}
        handler = HANDLERS.get(found.route.name)
        with self._lock:
            self.stats.by_operation[found.route.name] += 1
            if handler is None:
                self.stats.canned[found.route.name] += 1
        if handler is None:
            status, payload = self.spec.example_response(found.route)
        else:
            documented = self.spec.documented_statuses(found.route)
            request = Request(method, path, found.path_params, query, body, documented)
            fleet.settle()  # operations that ended meanwhile have their effect before any read
            status, payload = handler(fleet, request)
        response_problems = self.spec.check_response(found, status, payload)
        with self._lock:
            self.stats.response_violations.extend(response_problems)
        return status, payload

    def _forced_429(self) -> bool:
        with self._lock:
            if self.faults.rate_limit_next <= 0:
                return False
            self.faults.rate_limit_next -= 1
            self.stats.rate_limited += 1
            self.stats.faults["429"] += 1
            return True

    def draw_fault(self, method: str, target: str) -> Fault | None:
        """Which fault, if any, this API request suffers (None for admin requests)."""
        if not target.startswith(BASE_PATH + "/"):
            return None
        path = urlsplit(target).path.removeprefix(BASE_PATH)
        with self._lock:
            fault = self.faults.draw(self._rng, method, path)
            if fault is not None:
                self.stats.faults[fault.kind] += 1
                self.stats.fault_log.append(
                    {
                        "at": self.clock.monotonic(),
                        "method": method,
                        "path": path,
                        "kind": fault.kind,
                        "status": fault.status or None,
                        "after_acting": fault.after_acting,
                    }
                )
        return fault

    def _admin(self, method: str, path: str, body: bytes | None) -> tuple[int, Any, dict[str, str]]:
        reads = {
            "/stats": self.snapshot,
            "/fleet": self.fleet_json,
            "/state": lambda: {k: v for f in self.fleets.values() for k, v in f.state().items()},
            "/bad-releases": self.fleet.releases.to_json,
        }
        if method == "GET" and path in reads:
            return 200, reads[path](), {}
        change = CHANGES.get(path)
        if method != "POST" or (change is None and path != "/faults"):
            return 404, {"message": "unknown sandbox endpoint"}, {}
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return 400, {"message": "send a JSON object"}, {}
        if path == "/faults":
            answer: Answer = self._set_faults(request) or {}
        elif change is not None and isinstance(request, dict):
            answer = change(list(self.fleets.values()), request)
        else:
            answer = "send a JSON object"
        if isinstance(answer, str):
            return 400, {"message": answer}, {}
        return 200, {"ok": True, **answer}, {}

    def _set_faults(self, values: dict[str, Any]) -> str | None:
        if not isinstance(values, dict):
            return "send a JSON object of fault settings"
        with self._lock:
            try:
                self.faults.update(values)
            except ValueError as exc:
                return str(exc)
        return None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.stats.requests,
                "rate_limited": self.stats.rate_limited,
                "rate_limited_by": dict(self.stats.rate_limited_by),
                "violations": list(self.stats.violations),
                "response_violations": list(self.stats.response_violations),
                "canned": dict(self.stats.canned),
                "by_operation": dict(self.stats.by_operation),
                "max_in_window": self.stats.max_in_window(self.options.window_s),
                "overlaps": sum(f.overlaps for f in self.fleets.values()),
                "longest_chain_s": max(
                    (s for f in self.fleets.values() for s in f.chains().values()), default=0.0
                ),
                "faults": dict(self.stats.faults),
                "fault_log": list(self.stats.fault_log),
                "environments": {
                    k: v for f in self.fleets.values() for k, v in f.counters().items()
                },
            }

    def site_page(self, host: str, path: str) -> Page | None:
        """A fake environment's web page by its domain (Host header), else None."""
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        for fleet in self.fleets.values():
            page = fleet.site_page(name.casefold(), path)
            if page is not None:
                return page
        return None

    def fleet_json(self) -> dict[str, Any]:
        return {
            "company_id": self.fleet.company_id,
            "sites": [site.to_json(include_environments=True) for site in self.fleet.sites],
        }


BAD_REQUEST_MESSAGE = "Bad request format"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm the body waited for the
    # client's delayed ACK, about 40 ms per request on a kept-alive connection.
    disable_nagle_algorithm = True
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k.lower(): v for k, v in self.headers.items()}
        sandbox = self.server.sandbox
        if not self.path.startswith((BASE_PATH + "/", ADMIN_PATH + "/")):
            self._site_page(sandbox, headers.get("host", ""))
            return
        fault = sandbox.draw_fault(self.command, self.path)
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        acts = fault is None or fault.kind != "error" or fault.after_acting
        if acts:
            client = str(self.client_address[0])
            status, payload, extra = sandbox.handle(self.command, self.path, headers, body, client)
            content_type, data = "application/json", json.dumps(payload).encode()
        if fault is not None and fault.kind == "error":
            # The proxy's answer replaces Kinsta's, headers and all (it may have acted first).
            status, extra = fault.status, {}
            content_type, data = fault.answer()
        if fault is not None and fault.kind == "hang":
            time.sleep(sandbox.faults.hang_s)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _site_page(self, sandbox: Sandbox, host: str) -> None:
        page = sandbox.site_page(host, self.path) or Page(404, "no such site in the sandbox", 0)
        time.sleep(page.delay_s)  # the site's own time to answer; a bad release may slow it
        status, data = page.status, page.body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Request lines are counted in stats, not printed."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # socketserver's default of 5 refuses bursts of new connections

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (or a dropped-connection fault) is normal here, not news."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class SandboxServer:
    """Serve a Sandbox on a loopback port in a background thread."""

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = sandbox
        self._server = _Server((host, port), sandbox)
        self._thread = threading.Thread(target=self.serve_forever, name="sandbox", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        return f"http://{host}:{self.port}{BASE_PATH}"

    def start(self) -> SandboxServer:
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.05)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
