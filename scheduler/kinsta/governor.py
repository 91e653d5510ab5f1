"""The rate governor: every request waits here for one permit from each bucket it counts against.

Buckets (limits from jobs.yaml `kinsta.rate_limits`):
- company:<key fingerprint>  every request made with the key (120/min);
- ip:<ip_key>                every request from this egress address (1000/min; several
                             companies; `rate_limits.ip_key`, by default the host name);
- creation:<fingerprint>     requests that create resources (5/min): the table
                             `rate_limits.creation_endpoints` (RateLimits has the default);
- logs:<fingerprint>         the logs endpoint (35/min).
Permits live in a Ledger: in memory for one process, or in the history database so that every
process using the same key shares one budget. A request takes its permits from all its buckets
at once, so it never holds company budget while it waits for a creation slot.

Order: within a process, waiting requests are served in arrival order, except that a request
with work ahead of it in its chain (`work_ahead`: the runner says how long the operations still
to come in its target's pipeline should take) is queued as if it had come that much earlier.
Long chains then start first (the longest remaining work first shortens a night's tail), and no
request waits longer than the longest head start, so none starves. Requests that also need a
scarcer bucket (creation, logs) queue apart, so they never hold up the others. At most
`max_in_flight` requests are outstanding per process, so slow responses cannot pile up; a request
counts as in flight only from its grant to its response, so waiting for budget holds no slot.

A request sent `if_idle` (an early poll: the runner's bet that an operation is done) takes budget
only when nothing of this process waits for it and the ledger has a permit at once; otherwise it
raises BudgetBusy without waiting, so it never delays a request that must go.

Shutdown: when `cancel` is set, every request waiting here (in its queue, for a slot, for budget,
through a 429 pause or a ledger outage) raises Interrupted at once, and none is granted after.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

import structlog

from scheduler.clock import Clock
from scheduler.domain import RateLimits
from scheduler.errors import BudgetBusy, Interrupted, StoreError
from scheduler.ratelimit import BucketLimit, Grant, Ledger, MemoryLedger, parse_retry_after

log = structlog.get_logger("scheduler.governor")

SAFETY_MARGIN_S = 0.5  # for the server's clock granularity; scaled down with the window
DEFAULT_BLOCK_S = 60.0  # after a 429 without Retry-After (as Octokit does)
LEDGER_RETRY_S = 1.0  # the ledger's database is unreachable: no request goes out meanwhile
MAX_IN_FLIGHT = 8
OTHERS_SLACK = 1  # Kinsta's remaining count may trail ours by this much without a pause

LOGS_ENDPOINT = "GET /sites/environments/{env_id}/logs"
_DRAFT_FIELD = re.compile(r"\b(r|t)=(\d+)")


_WORK_AHEAD: ContextVar[float] = ContextVar("kinsta_work_ahead_s", default=0.0)
_IF_IDLE: ContextVar[bool] = ContextVar("kinsta_if_idle", default=False)


@contextmanager
def work_ahead(seconds: float) -> Iterator[None]:
    """Requests sent from this thread inside the block have about `seconds` of work after them
    in their chain (the operations still to wait for): they queue ahead of those with less."""
    token = _WORK_AHEAD.set(max(0.0, seconds))
    try:
        yield
    finally:
        _WORK_AHEAD.reset(token)


@contextmanager
def if_idle() -> Iterator[None]:
    """Requests sent from this thread inside the block take only budget nobody waits for:
    BudgetBusy (nothing sent) when a request of this process waits, or the ledger has no
    permit at once."""
    token = _IF_IDLE.set(True)
    try:
        yield
    finally:
        _IF_IDLE.reset(token)


def key_fingerprint(key: str) -> str:
    """Names the key's buckets without storing the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def endpoint_pattern(endpoint: str) -> re.Pattern[str]:
    """'POST /sites/{site_id}/environments' -> a pattern for 'POST /sites/abc/environments'."""
    method, _, template = endpoint.partition(" ")
    path = re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(template))
    return re.compile(f"{method} {path}")


class _Classifier:
    """Which buckets a request counts against, from the configured endpoint table."""

    def __init__(self, creation_endpoints: tuple[str, ...]) -> None:
        self._creation = [endpoint_pattern(e) for e in creation_endpoints]
        self._logs = endpoint_pattern(LOGS_ENDPOINT)

    def kinds(self, method: str, path: str) -> tuple[str, ...]:
        request = f"{method} {path}"
        kinds = ["company", "ip"]
        if any(p.fullmatch(request) for p in self._creation):
            kinds.append("creation")
        if self._logs.fullmatch(request):
            kinds.append("logs")
        return tuple(kinds)


@dataclass(frozen=True)
class Permit:
    buckets: tuple[str, ...]
    waited_s: float


class Governor(Protocol):
    def permit(self, method: str, path: str) -> AbstractContextManager[Permit]:
        """Block until the request may be sent; the context ends when its response arrived."""

    def blocked(self, seconds: float | None) -> None:
        """Kinsta said slow down: no request with this key starts for `seconds`."""

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read RateLimit-* / X-RateLimit-* headers of a response."""

    def backlog(self) -> Backlog:
        """How many of this process's requests wait for budget now, and how many have come."""

    def next_arrival(self, after: int, timeout_s: float) -> int:
        """Wait until more than `after` requests have come (or `timeout_s`); how many have."""


@dataclass(frozen=True)
class Backlog:
    waiting: int  # requests of this process waiting for budget (or an in-flight slot) now
    arrivals: int  # requests that have asked for a permit since the governor was made
    per_window: int  # the key's limit: requests per window
    window_s: float
    # When (monotonic) a request of this process last had to wait because the ledger had no
    # permit: the night is rate-bound. None: never.
    saturated_at: float | None = None


EventSink = Callable[[str, str, float | None, str], None]  # (scope, kind, seconds, detail)


class RateGovernor:
    def __init__(
        self,
        limits: RateLimits,
        clock: Clock,
        *,
        ledger: Ledger | None = None,
        scope: str = "default",
        ip_key: str = "localhost",
        hold_s: float = 60.0,
        max_in_flight: int = MAX_IN_FLIGHT,
        on_event: EventSink | None = None,
        cancel: threading.Event | None = None,
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        self._clock, self._scope = clock, scope
        self._on_event = on_event
        self._on_request = on_request  # told the key's scope of each request granted
        self._long_wait_s = limits.window_s / 2
        self._ledger = ledger or MemoryLedger(clock.monotonic)
        self._window_s = limits.window_s + min(SAFETY_MARGIN_S, limits.window_s / 100)
        self._poll_s = max(0.02, limits.window_s / 60)  # re-check the shared ledger this often
        self._hold_s = hold_s
        self._limits = {
            "company": BucketLimit(f"company:{scope}", limits.per_minute),
            "ip": BucketLimit(f"ip:{ip_key}", limits.per_ip_per_minute),
            "creation": BucketLimit(f"creation:{scope}", limits.creation_per_minute),
            "logs": BucketLimit(f"logs:{scope}", limits.logs_per_minute),
        }
        self._classifier = _Classifier(limits.creation_endpoints)
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._turns: dict[int, threading.Condition] = {}  # one per waiter: woken when it's first
        # One queue per set of buckets: a creation waiting for its 5-per-minute slot must not
        # hold up the polls and actions queued behind it.
        self._queues: dict[tuple[str, ...], list[tuple[float, int]]] = {}
        self._tickets = itertools.count()
        self._max_in_flight = max_in_flight
        self._in_flight = 0  # requests granted whose response has not arrived yet
        self.requests = 0
        self.total_wait_s = 0.0
        self._waiting: dict[int, float] = {}  # id of a waiting request -> when it began
        self._arrivals = 0  # requests that have asked for a permit
        self._arrived = threading.Condition()  # apart: queued requests need not wake for it
        self._saturated_at: float | None = None
        self.rate_limited = 0
        self._cancel = cancel
        if cancel is not None:  # shutdown wakes every waiter at once, wherever it waits
            threading.Thread(
                target=self._wake_at_cancel, name="governor-cancel", daemon=True
            ).start()

    def _wake_at_cancel(self) -> None:
        assert self._cancel is not None
        self._cancel.wait()
        with self._cond:
            self._cond.notify_all()
            for turn in self._turns.values():
                turn.notify()

    def _stop_if_cancelled(self, method: str, path: str) -> None:
        if self._cancel is not None and self._cancel.is_set():
            raise Interrupted(f"{method} {path} not sent: the process stopped its wait for budget")

    def _emit(self, kind: str, seconds: float | None, detail: str) -> None:
        """Tell history (if wired) about something an operator may ask about later."""
        if self._on_event is None:
            return
        try:
            self._on_event(self._scope, kind, seconds, detail)
        except Exception as exc:  # recording must never stop a request
            log.warning("governor.event_not_recorded", kind=kind, error=str(exc))

    def _acquire(self, buckets: list[BucketLimit], method: str, path: str) -> Grant:
        """Wait for this request's turn in its queue, then for a grant of every bucket. An
        in-flight slot is held only while the ledger is asked and, once granted, until the
        response arrives: a request waiting for budget (a slow bucket, a pause) holds none.
        Every wait ends at cancel, raising Interrupted."""
        ticket = next(self._tickets)
        # Longest work ahead first: a request is queued as if it had come `work_ahead` seconds
        # earlier, so the start of a long chain (a backup before an update) overtakes the last
        # poll of a short one, and nothing waits longer than the longest chain's head start.
        entry = (self._clock.monotonic() - _WORK_AHEAD.get(), ticket)
        names = tuple(b.name for b in buckets)
        with self._cond:
            self._stop_if_cancelled(method, path)
            queue = self._queues.setdefault(names, [])
            bisect.insort(queue, entry)
            turn = self._turns[ticket] = threading.Condition(self._lock)
        try:
            while True:
                with self._cond:
                    # Only the head of the queue asks for budget; one that came with more work
                    # ahead may take its place while it waits.
                    while queue[0] != entry or self._in_flight >= self._max_in_flight:
                        (turn if queue[0] != entry else self._cond).wait()
                        self._stop_if_cancelled(method, path)
                    self._in_flight += 1
                result = self._ask_ledger(buckets)
                if isinstance(result, Grant):
                    return result
                with self._cond:  # a local release wakes us early; other processes' we poll
                    self._saturated_at = self._clock.monotonic()
                    self._in_flight -= 1
                    self._cond.notify_all()
                    if queue[0] == entry:
                        self._cond.wait(timeout=min(result, self._poll_s))
                    self._stop_if_cancelled(method, path)
        finally:
            with self._cond:
                queue.remove(entry)
                del self._turns[ticket]
                if queue:  # the next in line is first now
                    self._turns[queue[0][1]].notify()
                self._cond.notify_all()

    def _ask_ledger(self, buckets: list[BucketLimit]) -> Grant | float:
        """One try at the ledger, made holding an in-flight slot (given back on any error)."""
        try:
            return self._ledger.acquire(buckets, self._window_s, self._hold_s)
        except StoreError as exc:
            log.warning("governor.ledger_unavailable", error=str(exc), retry_s=LEDGER_RETRY_S)
            self._emit("ledger_unavailable", LEDGER_RETRY_S, str(exc))
            return LEDGER_RETRY_S
        except BaseException:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()
            raise

    def _acquire_if_idle(self, buckets: list[BucketLimit], method: str, path: str) -> Grant:
        """A permit now if nothing of this process waits and the ledger has one; else
        BudgetBusy. Not counted as an arrival: admission paces starts by requests that must go."""
        with self._cond:
            self._stop_if_cancelled(method, path)
            if any(self._queues.values()) or self._in_flight >= self._max_in_flight:
                raise BudgetBusy(f"{method} {path} not sent: the rate budget is in use")
            self._in_flight += 1
        result = self._ask_ledger(buckets)
        if isinstance(result, Grant):
            return result
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()
        raise BudgetBusy(f"{method} {path} not sent: no rate budget to spare")

    @contextmanager
    def permit(self, method: str, path: str) -> Iterator[Permit]:
        buckets = [self._limits[kind] for kind in self._classifier.kinds(method, path)]
        if _IF_IDLE.get():
            grant = self._acquire_if_idle(buckets, method, path)
            self._counted()
            yield from self._granted(grant, buckets, 0.0)
            return
        started = self._clock.monotonic()
        marker = object()
        with self._cond:
            self._waiting[id(marker)] = started
        with self._arrived:
            self._arrivals += 1
            self._arrived.notify_all()
        try:
            grant = self._acquire(buckets, method, path)
        finally:
            with self._cond:
                del self._waiting[id(marker)]
        waited = self._clock.monotonic() - started
        self._counted(waited)
        if waited >= self._long_wait_s:
            self._emit(
                "long_wait",
                waited,
                f"{method} {path} waited for {', '.join(b.name for b in buckets)}",
            )
        yield from self._granted(grant, buckets, waited)

    def _counted(self, waited: float = 0.0) -> None:
        with self._cond:
            self.requests += 1
            self.total_wait_s += waited
        if self._on_request is not None:
            self._on_request(self._scope)

    def _granted(self, grant: Grant, buckets: list[BucketLimit], waited: float) -> Iterator[Permit]:
        """Hold a granted permit while the request is out; give it back after the response."""
        try:
            yield Permit(tuple(b.name for b in buckets), waited)
        finally:
            try:
                self._ledger.release(grant)
            except StoreError as exc:  # the permit then counts until it expires: safe
                log.warning("governor.release_failed", error=str(exc))
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    @property
    def scope(self) -> str:
        """The key's fingerprint: what its buckets, events and request counts are named by."""
        return self._scope

    def backlog(self) -> Backlog:
        with self._cond:
            waiting, saturated_at = len(self._waiting), self._saturated_at
        limit = self._limits["company"].limit
        return Backlog(waiting, self._arrivals, limit, self._window_s, saturated_at)

    def next_arrival(self, after: int, timeout_s: float) -> int:
        with self._arrived:
            self._arrived.wait_for(lambda: self._arrivals > after, timeout=timeout_s)
            return self._arrivals

    def current_wait_s(self) -> float:
        """How long the longest-waiting request has been waiting for budget (0 when none)."""
        with self._cond:
            oldest = min(self._waiting.values(), default=None)
        return 0.0 if oldest is None else max(0.0, self._clock.monotonic() - oldest)

    def blocked(self, seconds: float | None) -> None:
        pause = DEFAULT_BLOCK_S if seconds is None else seconds
        with self._cond:
            self.rate_limited += 1
        log.warning("governor.rate_limited", pause_s=pause)
        self._emit(
            "rate_limited",
            pause,
            "Kinsta answered 429; every user of the key pauses",
        )
        try:
            self._ledger.block(self._limits["company"].name, pause)
        except StoreError as exc:  # no shared pause possible: at least this request waits
            log.warning("governor.block_failed", error=str(exc))
            if self._clock.sleep(pause, self._cancel):
                raise Interrupted("a 429 pause was cut short: the process is stopping") from exc

    def observe(self, headers: Mapping[str, str]) -> None:
        """Kinsta's own count, when it sends one. If it says fewer requests remain than the
        ledger believes, something else uses the key (a script, another tool): pause until its
        reset. When the ledger agrees, its own waits are exact and a pause would only waste the
        budget (Reset comes in whole seconds)."""
        remaining, reset = _remaining_and_reset(headers)
        if remaining is None or remaining > OTHERS_SLACK or not reset:
            return
        company = self._limits["company"]
        try:
            ours = company.limit - self._ledger.count(company.name, self._window_s, self._hold_s)
            if remaining < ours - OTHERS_SLACK:
                log.warning(
                    "governor.key_shared_elsewhere",
                    server_remaining=remaining,
                    ledger_remaining=ours,
                    pause_s=reset,
                )
                self._ledger.block(company.name, reset)
                self._emit(
                    "key_shared", reset, f"Kinsta says {remaining} remain, the ledger {ours}"
                )
        except StoreError as exc:
            log.warning("governor.block_failed", error=str(exc))


def _remaining_and_reset(headers: Mapping[str, str]) -> tuple[int | None, float | None]:
    lowered = {k.lower(): v for k, v in headers.items()}
    for prefix in ("ratelimit-", "x-ratelimit-"):
        remaining = lowered.get(prefix + "remaining")
        if remaining is not None and remaining.strip().isdigit():
            return int(remaining), parse_retry_after(lowered.get(prefix + "reset"))
    draft = lowered.get("ratelimit")  # draft -07+: RateLimit: "default";r=0;t=12
    if draft:
        fields = dict(_DRAFT_FIELD.findall(draft))
        if "r" in fields:
            return int(fields["r"]), float(fields["t"]) if "t" in fields else None
    return None, None
