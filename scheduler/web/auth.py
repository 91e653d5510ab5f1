"""Who may read the dashboard. Without KINSTA_SCHEDULER_HTTP_TOKEN: anyone who reaches the port
(bind it to loopback). With it: a request that carries it, as `Authorization: Bearer TOKEN`, or
the cookie a visit to any page with `?token=TOKEN` sets (HttpOnly, SameSite=Strict; it holds a
digest of the token, not the token) before redirecting to the page without the token in its
address. The dashboard only reads, so there is nothing for a forged cross-site request to do."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from http.cookies import SimpleCookie
from urllib.parse import urlencode

from scheduler.httpd import Request, Response

TOKEN_ENV = "KINSTA_SCHEDULER_HTTP_TOKEN"  # noqa: S105 - the name of the variable
COOKIE = "kinsta_scheduler_dashboard"


def _digest(token: str) -> str:
    return hashlib.sha256(f"kinsta-scheduler-dashboard:{token}".encode()).hexdigest()


class Gate:
    def __init__(self, token: str | None) -> None:
        self._token = token or None

    @property
    def guarded(self) -> bool:
        return self._token is not None

    def check(self, request: Request) -> Response | None:
        """None when the request may see the page; else the answer to give instead."""
        if self._token is None:
            return None
        arguments = request.arguments()
        offered = arguments.get("token")
        if offered is not None:
            if not hmac.compare_digest(offered.encode(), self._token.encode()):
                return _refused("wrong token")
            rest = urlencode({k: v for k, v in arguments.items() if k != "token"})
            cookie = f"{COOKIE}={_digest(self._token)}; Path=/; HttpOnly; SameSite=Strict"
            location = request.path + (f"?{rest}" if rest else "")
            return Response(303, b"", headers={"Location": location, "Set-Cookie": cookie})
        bearer = (request.header("authorization") or "").removeprefix("Bearer ").strip()
        if bearer and hmac.compare_digest(bearer.encode(), self._token.encode()):
            return None
        jar = SimpleCookie()
        try:
            jar.load(request.header("cookie") or "")
        except Exception:  # a malformed Cookie header is no credential
            jar = SimpleCookie()
        held = jar.get(COOKIE)
        if held is not None and hmac.compare_digest(held.value, _digest(self._token)):
            return None
        return _refused("this dashboard needs its token")


def _refused(why: str) -> Response:
    body = (
        f"401: {why}. Send Authorization: Bearer TOKEN, or open this page once with "
        f"?token=TOKEN (the token is {TOKEN_ENV} of the daemon)."
    )
    return Response(401, body.encode() + b"\n", headers={"WWW-Authenticate": "Bearer"})


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere
