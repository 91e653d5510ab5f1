"""Injected faults: what a client meets between it and Kinsta, on purpose and on demand.

Random faults strike a share of API requests (drawn from the sandbox's seeded generator):
- error: answered with one of `statuses` (500, 502, 503, 504). 503 keeps its JSON body
  ({"message": "Service Unavailable", "status": 503}); 500, 502 and 504 come as a proxy's HTML
  error page with \\r\\n line endings, as nginx or a load balancer sends them. `body` chooses
  for every status: "html", or "json" (Kinsta's error shape, {"message", "status"}; for a 500
  Kinsta's own "Error occurred while processing your request", the body of a failed operation).
  A share `after_acting` of them strike after the sandbox handled the request: the operation
  really started (or the poll was answered), and the client only sees the error, as when a
  proxy times out on an upstream that did the work.
- drop: the connection is closed before the request is handled;
- hang: the request is handled, and answered only after `hang_s` (past the client's timeout).
`only` narrows random faults to one kind of request: an HTTP method, "polls" (GET
/operations/{id}) or "mutating" (any method but GET).

Deterministic faults, for regression tests: `next` is a list of rules, each failing the next
`count` requests that match it (method and path), with its own status, body and `after_acting`:
    {"next": [{"status": 502, "method": "POST", "path": "/sites/tools/clear-cache",
               "after_acting": true}]}
`path` is a glob over the API path without /v2 and the query ("/operations/*"). Rules are tried
in order and strike before any random fault. `rate_limit_next: N` answers the next N requests
429 (Retry-After `retry_after_s`).

All of it is set by SandboxOptions.faults, `sandbox --faults` (the random part) and
POST /_sandbox/faults (any field; `next` replaces the pending rules).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from fnmatch import fnmatchcase
from typing import Any

ERROR_STATUSES = (500, 502, 503, 504)
BODIES = ("html", "json")
REQUEST_CLASSES = ("polls", "mutating")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Time-out",
}
KINSTA_SERVER_ERROR = "Error occurred while processing your request"


def error_page(status: int) -> str:
    """A proxy's error page, as nginx sends it (CRLF line endings included)."""
    title = f"{status} {_REASONS[status]}"
    return "\r\n".join(
        (
            "<html>",
            f"<head><title>{title}</title></head>",
            "<body>",
            f"<center><h1>{title}</h1></center>",
            "<hr><center>nginx</center>",
            "</body>",
            "</html>",
            "",
        )
    )


def error_json(status: int) -> dict[str, Any]:
    message = KINSTA_SERVER_ERROR if status == 500 else _REASONS[status]
    return {"message": message, "status": status}


def request_matches(selector: str, method: str, path: str) -> bool:
    """`selector`: "" (any), "polls", "mutating" or an HTTP method."""
    if selector == "polls":
        return method == "GET" and path.startswith("/operations/")
    if selector == "mutating":
        return method != "GET"
    return selector in ("", method)


@dataclass(frozen=True)
class Fault:
    """What one request suffers."""

    kind: str  # "error", "drop" or "hang"
    status: int = 0
    body: str = ""  # "html" or "json"
    after_acting: bool = False

    def answer(self) -> tuple[str, bytes]:
        """(content type, body) of an error fault."""
        if self.body == "json":
            return "application/json", json.dumps(error_json(self.status)).encode()
        return "text/html", error_page(self.status).encode()


@dataclass
class FaultRule:
    """Fail the next `count` requests matching `method` and `path`."""

    status: int
    method: str = ""  # an HTTP method, "polls", "mutating", or "" for any
    path: str = ""  # a glob over the API path ("/operations/*"), "" for any
    after_acting: bool = False
    body: str = ""  # "html" or "json"; "" for the status's usual (see the module docstring)
    count: int = 1

    def matches(self, method: str, path: str) -> bool:
        return request_matches(self.method, method, path) and (
            not self.path or fnmatchcase(path, self.path)
        )

    def fault(self) -> Fault:
        return Fault("error", self.status, self.body or usual_body(self.status), self.after_acting)


def usual_body(status: int) -> str:
    return "json" if status == 503 else "html"  # the sandbox's 503 has always been JSON


@dataclass
class Faults:
    """Injected faults; see the module docstring. Mutable: POST /_sandbox/faults changes them."""

    error: float = 0.0
    drop: float = 0.0
    hang: float = 0.0
    hang_s: float = 5.0
    statuses: tuple[int, ...] = (503,)
    body: str = ""
    after_acting: float = 0.0
    only: str = ""
    rate_limit_next: int = 0  # answer the next N requests with 429
    retry_after_s: int = 1
    next: list[FaultRule] = field(default_factory=list)

    def update(self, values: Mapping[str, Any]) -> None:
        """Set fields from JSON or flag values, all or none; ValueError names the bad one."""
        known = {f.name for f in fields(self)}
        changes: dict[str, Any] = {}
        for name, value in values.items():
            if name not in known:
                raise ValueError(f"unknown fault setting {name!r} ({', '.join(sorted(known))})")
            changes[name] = _parse(name, value)
        shares = {k: changes.get(k, getattr(self, k)) for k in ("error", "drop", "hang")}
        if sum(shares.values()) > 1:
            raise ValueError("the shares of error, drop and hang add up to more than 1")
        for name, value in changes.items():
            setattr(self, name, value)

    def draw(self, rng: random.Random, method: str, path: str) -> Fault | None:
        """The fault this API request suffers, if any (the caller holds the lock)."""
        for rule in self.next:
            if rule.count > 0 and rule.matches(method, path):
                rule.count -= 1
                self.next = [r for r in self.next if r.count > 0]
                return rule.fault()
        if not request_matches(self.only, method, path):
            return None
        roll = rng.random()
        if roll < self.error:
            status = rng.choice(self.statuses)
            after = rng.random() < self.after_acting
            return Fault("error", status, self.body or usual_body(status), after)
        roll -= self.error
        if roll < self.drop:
            return Fault("drop")
        if roll - self.drop < self.hang:
            return Fault("hang")
        return None


def _number(name: str, value: Any, kind: type[float] | type[int]) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{name}: {value!r} is not a number")
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not a number") from None


def _share(name: str, value: Any) -> float:
    share = float(_number(name, value, float))
    if not 0 <= share <= 1:
        raise ValueError(f"{name} must be a share between 0 and 1, not {value!r}")
    return share


def _status(value: Any) -> int:
    status = int(_number("status", value, int))
    if status not in ERROR_STATUSES:
        raise ValueError(f"status {value!r}: use one of {', '.join(map(str, ERROR_STATUSES))}")
    return status


def _statuses(value: Any) -> tuple[int, ...]:
    """500, "500/502" or [500, 502]."""
    items = value.split("/") if isinstance(value, str) else value
    items = items if isinstance(items, list) else [items]
    if not items:
        raise ValueError("statuses: name at least one of 500, 502, 503, 504")
    return tuple(_status(item) for item in items)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in ("", *allowed):
        raise ValueError(f"{name} {value!r}: use one of {', '.join(allowed)}")
    return str(value)


def _selector(value: Any) -> str:
    if value in ("", *REQUEST_CLASSES):
        return str(value)
    if isinstance(value, str) and value.upper() in HTTP_METHODS:
        return value.upper()
    raise ValueError(f"method {value!r}: use polls, mutating or one of {', '.join(HTTP_METHODS)}")


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name}: {value!r} is not true or false")
    return value


_RULE_KEYS = ("status", "method", "path", "after_acting", "body", "count")


def _rule(value: Any) -> FaultRule:
    if not isinstance(value, Mapping) or "status" not in value or set(value) - set(_RULE_KEYS):
        raise ValueError(f"a rule of next is an object with keys {', '.join(_RULE_KEYS)}")
    count = int(_number("count", value.get("count", 1), int))
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    return FaultRule(
        status=_status(value["status"]),
        method=_selector(value.get("method", "")),
        path=str(value.get("path", "")),
        after_acting=_flag("after_acting", value.get("after_acting", False)),
        body=_choice("body", value.get("body", ""), BODIES),
        count=count,
    )


def _rules(value: Any) -> list[FaultRule]:
    if not isinstance(value, list):
        raise ValueError("next is a list of rules")
    return [_rule(item) for item in value]


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "error": lambda v: _share("error", v),
    "drop": lambda v: _share("drop", v),
    "hang": lambda v: _share("hang", v),
    "after_acting": lambda v: _share("after_acting", v),
    "hang_s": lambda v: max(0.0, float(_number("hang_s", v, float))),
    "rate_limit_next": lambda v: max(0, int(_number("rate_limit_next", v, int))),
    "retry_after_s": lambda v: max(0, int(_number("retry_after_s", v, int))),
    "statuses": _statuses,
    "body": lambda v: _choice("body", v, BODIES),
    "only": _selector,
    "next": _rules,
}


def _parse(name: str, value: Any) -> Any:
    return _PARSERS[name](value)
