"""ApiSession: one httpx client behind the rate governor, with retries and error mapping.

Retries: reads (GET, operation polls) are retried on transport errors, 5xx and 429 with capped,
jittered backoff. A change request (POST, PUT, DELETE) is retried only when it provably never
reached Kinsta (the connection was not established, or Kinsta answered 429). Any other failure is
raised at once; unless it proves the request refused (a 4xx), the error is `uncertain` (a
timeout after sending, a 502/503/504 or Kinsta's 500, a 2xx that cannot be read), for the caller
to record as such and reconcile.

Shutdown: every wait (for rate budget, a 429 pause, a backoff) ends when `cancel` is set, raising
Interrupted; no request is sent after it, and one already sent is awaited as usual.
"""

from __future__ import annotations

import json
import random
import threading
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from scheduler import __version__
from scheduler.clock import Clock
from scheduler.domain import OperationState, Secret
from scheduler.errors import (
    AuthenticationError,
    BadInputError,
    Interrupted,
    KinstaAPIError,
    KinstaError,
    NotFoundAPIError,
    RateLimitedError,
    ResponseFormatError,
    TransportError,
)
from scheduler.kinsta import models
from scheduler.kinsta.governor import Backlog, Governor
from scheduler.kinsta.guard import check_mutation
from scheduler.ratelimit import parse_retry_after
from scheduler.values import token_problem

M = TypeVar("M", bound=BaseModel)
SENT_AT = "kinsta_scheduler_sent_at"  # response extension: when the request left
WAITED_S = "kinsta_scheduler_waited_s"  # response extension: its wait for the governor

MAX_ATTEMPTS = 5
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 8.0
MESSAGE_MAX_CHARS = 160  # an error message kept for history: one short line


@dataclass(frozen=True)
class OperationAccepted:
    """A 2xx answer carrying an operation_id: the action continues at Kinsta."""

    operation_id: str
    message: str


@dataclass(frozen=True)
class OperationStatus:
    state: OperationState
    http_status: int
    message: str
    data: Any = None
    sent_at: datetime | None = None  # when the poll left, after any wait for the governor
    waited_s: float = 0.0  # how long it waited for the governor first


def backoff_s(attempt: int, rng: random.Random) -> float:
    """Full-jitter exponential backoff: attempt 1 -> up to 0.5 s, capped at BACKOFF_CAP_S."""
    return rng.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1)))


class ApiSession:
    def __init__(
        self,
        api_url: str,
        api_key: Secret,
        governor: Governor,
        clock: Clock,
        *,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        # httpx would refuse such a key at the first request with a message quoting the header.
        problem = token_problem(api_key.reveal())
        if problem is not None:
            raise BadInputError(f"the API key {problem}")
        self._governor = governor
        self._clock = clock
        self._cancel = cancel  # set when the process stops: no request leaves after it
        self._rng = rng or random.Random()
        self._http = httpx.Client(
            base_url=api_url,
            headers={
                "Authorization": f"Bearer {api_key.reveal()}",
                "Accept": "application/json",
                "User-Agent": f"kinsta-scheduler/{__version__}",
            },
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def backlog(self) -> Backlog:
        """This process's requests waiting for rate budget now, and how many have come."""
        return self._governor.backlog()

    def next_arrival(self, after: int, timeout_s: float) -> int:
        """Wait until more than `after` requests have asked for budget; how many have."""
        return self._governor.next_arrival(after, timeout_s)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the request loop -------------------------------------------------------------------

    def _send_once(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        shown = "/" + path
        with self._governor.permit(method, shown) as permit:
            if self._cancel is not None and self._cancel.is_set():
                raise Interrupted(f"{method} {shown} not sent: the process is stopping")
            # Last moment before a change leaves: the run or the environment's lease may have
            # been lost while this request waited for budget.
            check_mutation(method, shown)
            sent_at = self._clock.now()
            try:
                if self._http.is_closed:  # closed at shutdown: never an action's failure
                    raise Interrupted(f"{method} {shown}: the client was closed (stopping)")
                response = self._http.request(method, path, **kwargs)
                self._governor.observe(response.headers)
                response.extensions[SENT_AT] = sent_at
                response.extensions[WAITED_S] = permit.waited_s
                return response
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                raise TransportError(_describe(exc), method=method, path=shown, sent=False) from exc
            except httpx.TransportError as exc:
                raise TransportError(_describe(exc), method=method, path=shown, sent=True) from exc

    def request(
        self, method: str, path: str, *, accept: tuple[int, ...] = (), **kwargs: Any
    ) -> httpx.Response:
        """Send with retries; return a 2xx response (or one whose status is in `accept`)."""
        idempotent = method == "GET"
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = self._send_once(method, path, **kwargs)
                self._check(response, method, "/" + path, accept)
                return response
            except RateLimitedError as exc:
                self._governor.blocked(exc.retry_after_s)
                if attempt == MAX_ATTEMPTS:
                    raise
            except TransportError as exc:
                if attempt == MAX_ATTEMPTS or exc.uncertain:
                    raise
                self._back_off(attempt, exc)
            except KinstaAPIError as exc:  # a change request's 5xx is uncertain: not repeated
                if not (idempotent and exc.status >= 500) or attempt == MAX_ATTEMPTS:
                    raise
                self._back_off(attempt, exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def _back_off(self, attempt: int, error: KinstaError) -> None:
        """Pause before the next attempt; a stopping process sends nothing more."""
        if self._clock.sleep(backoff_s(attempt, self._rng), self._cancel):
            raise Interrupted(f"not retried, the process is stopping: {error}") from error

    def _check(
        self, response: httpx.Response, method: str, path: str, accept: tuple[int, ...]
    ) -> None:
        status = response.status_code
        if status == 429:  # only the status: a body's words prove nothing (a log may say them)
            self._raise_rate_limited(response, method, path)
        if 200 <= status < 300 or status in accept:
            return
        raise self._api_error(response, method, path)

    @staticmethod
    def _api_error(response: httpx.Response, method: str, path: str) -> KinstaAPIError:
        status = response.status_code
        kind = {401: AuthenticationError, 404: NotFoundAPIError}.get(status, KinstaAPIError)
        return kind(_error_message(response), method=method, path=path, status=status)

    @staticmethod
    def _raise_rate_limited(response: httpx.Response, method: str, path: str) -> None:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is None:
            retry_after = parse_retry_after(
                response.headers.get("RateLimit-Reset") or response.headers.get("X-RateLimit-Reset")
            )
        raise RateLimitedError(
            _error_message(response), method=method, path=path, retry_after_s=retry_after
        )


def read_model(response: httpx.Response, model: type[M]) -> M:
    """The response's JSON body as `model`; ResponseFormatError when it is not that."""
    method, path = response.request.method, response.request.url.path
    try:
        body = response.json()
    except ValueError as exc:
        raise ResponseFormatError(
            f"HTTP {response.status_code} body is not JSON", method=method, path=path
        ) from exc
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ResponseFormatError(
            f"unexpected response shape at {where or 'body'}: {first['msg']}",
            method=method,
            path=path,
        ) from exc


def read_accepted(response: httpx.Response) -> OperationAccepted:
    """An asynchronous action's answer: the operation to follow."""
    body = read_model(response, models.OperationAcceptedBody)
    if not body.operation_id:
        raise ResponseFormatError(
            "the response carries no operation_id",
            method=response.request.method,
            path=response.request.url.path,
        )
    return OperationAccepted(body.operation_id, body.message)


def _describe(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.LocalProtocolError):
        # Its text quotes the offending request line or header, which may be the Authorization
        # header: never pass it on.
        return f"{type(exc).__name__}: the request could not be written"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _error_message(response: httpx.Response) -> str:
    """A short, clean message for history and logs: Kinsta's JSON `message`, or for anything
    else (a proxy's HTML page) the reason phrase and the page's first line of text."""
    try:
        body = response.json()
    except ValueError:
        return _page_summary(response)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return _one_line(body["message"]) or response.reason_phrase or "no message"
    return _one_line(json.dumps(body))


def _page_summary(response: httpx.Response) -> str:
    reason = response.reason_phrase
    parser = _TextOfPage()
    parser.feed(response.text)
    parser.close()
    lines = (_one_line(line) for line in "".join(parser.text).splitlines())
    first = next((line for line in lines if line), "")
    first = first.removeprefix(str(response.status_code)).lstrip(" :-|")
    if not first or first.casefold() == reason.casefold():
        return reason or "no message"
    if reason and reason.casefold() not in first.casefold():
        first = f"{reason}: {first}"
    return _one_line(first)


class _TextOfPage(HTMLParser):
    """The visible text of an HTML page (a plain-text body passes through unchanged)."""

    BLOCKS = ("title", "h1", "h2", "h3", "p", "div", "br", "tr", "li", "center", "body")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1
        elif tag in self.BLOCKS:
            self.text.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden = max(0, self._hidden - 1)
        elif tag in self.BLOCKS:
            self.text.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.text.append(data)


def _one_line(text: str) -> str:
    """Control characters and runs of whitespace become one space; at most MESSAGE_MAX_CHARS."""
    printable = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
    line = " ".join(printable.split())
    if len(line) > MESSAGE_MAX_CHARS:
        line = line[: MESSAGE_MAX_CHARS - 1] + "…"
    return line
