"""Slack's request signature, checked before anything else is read (pure: the caller passes the
time). Slack signs each request with the app's signing secret:

    X-Slack-Request-Timestamp: 1733450000
    X-Slack-Signature: v0=<hex of HMAC-SHA256(secret, "v0:{timestamp}:{raw body}")>

A request is refused when the signature does not match (compared in constant time), when its
timestamp is more than MAX_AGE_S from now either way (a captured request replayed later), or
when the same signature was already accepted within that window (replayed at once). Only
requests whose signature matched are remembered, so the memory holds what Slack sent in the
last five minutes and nothing a stranger can fill. The replay memory is per process: a second
daemon behind the same request URL keeps its own (README)."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Mapping

from scheduler.secret import Secret

VERSION = "v0"
MAX_AGE_S = 300.0  # Slack's advice: refuse requests more than five minutes old
TIMESTAMP_HEADER = "x-slack-request-timestamp"
SIGNATURE_HEADER = "x-slack-signature"


def signature(secret: Secret, timestamp: str, body: bytes) -> str:
    """The header Slack sends for this body at this timestamp (tests sign with it too)."""
    base = f"{VERSION}:{timestamp}:".encode() + body
    digest = hmac.new(secret.reveal().encode(), base, hashlib.sha256).hexdigest()
    return f"{VERSION}={digest}"


def problem(secret: Secret, headers: Mapping[str, str], body: bytes, now_s: float) -> str | None:
    """Why the request is not Slack's, or not fresh (no secret in it); None when it is.
    `headers` have lower-case names; `now_s` is Unix time."""
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    given = headers.get(SIGNATURE_HEADER, "")
    if not timestamp or not given:
        return "unsigned request (no Slack signature headers)"
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return "bad Slack timestamp"
    expected = signature(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        return "bad Slack signature"
    if abs(now_s - int(timestamp)) > MAX_AGE_S:
        return f"stale Slack request (more than {MAX_AGE_S:.0f} s from now)"
    return None


class ReplayGuard:
    """The signatures accepted within the last MAX_AGE_S: a second arrival is a replay."""

    def __init__(self, window_s: float = MAX_AGE_S) -> None:
        self._window_s = window_s
        self._seen: dict[str, float] = {}  # signature -> its timestamp
        self._lock = threading.Lock()

    def first_time(self, headers: Mapping[str, str], now_s: float) -> bool:
        """Remember this (already verified) request; False when it was seen before."""
        key = headers.get(SIGNATURE_HEADER, "")
        stamp = float(headers.get(TIMESTAMP_HEADER, "0"))
        with self._lock:
            horizon = now_s - 2 * self._window_s  # a timestamp ahead of us counts too
            self._seen = {k: t for k, t in self._seen.items() if t >= horizon}
            if key in self._seen:
                return False
            self._seen[key] = stamp
            return True

    def __len__(self) -> int:
        return len(self._seen)
