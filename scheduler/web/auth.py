"""Who may read the dashboard. Without KINSTA_SCHEDULER_HTTP_TOKEN: anyone who reaches the port
(bind it to loopback) and names it by an address or `localhost` (or a name listed in
KINSTA_SCHEDULER_HTTP_HOSTS): a page elsewhere on the web cannot read it through DNS rebinding,
which needs a name of the attacker's. With it: a request that carries it, as `Authorization:
Bearer TOKEN`, or the cookie a visit to any page with `?token=TOKEN` sets (HttpOnly,
SameSite=Lax, 12 hours; it holds a digest of the token, not the token) before redirecting to
the page without the token in its address. The dashboard only reads, so there is nothing for a
forged cross-site request to do."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

from scheduler import logs
from scheduler.httpd import Request, Response

TOKEN_ENV = "KINSTA_SCHEDULER_HTTP_TOKEN"  # noqa: S105 - the name of the variable
HOSTS_ENV = "KINSTA_SCHEDULER_HTTP_HOSTS"  # more names the dashboard answers to without a token
COOKIE = "kinsta_scheduler_dashboard"
COOKIE_S = 12 * 3600


def _digest(token: str) -> str:
    return hashlib.sha256(f"kinsta-scheduler-dashboard:{token}".encode()).hexdigest()


class Gate:
    def __init__(self, token: str | None, hosts: str | None = None) -> None:
        self._token = token or None
        if self._token is not None:
            logs.register_secret(self._token)  # never in a log line, whatever prints it
        self._hosts = {h.strip().lower() for h in (hosts or "").split(",") if h.strip()}

    @property
    def guarded(self) -> bool:
        return self._token is not None

    def check(self, request: Request) -> Response | None:
        """None when the request may see the page; else the answer to give instead."""
        if self._token is None:
            return None if self._named_well(request) else _misnamed()
        arguments = request.arguments()
        offered = arguments.get("token")
        if offered is not None:
            if not hmac.compare_digest(offered.encode(), self._token.encode()):
                return _refused("wrong token")
            rest = urlencode({k: v for k, v in arguments.items() if k != "token"})
            cookie = (
                f"{COOKIE}={_digest(self._token)}; Path=/; Max-Age={COOKIE_S}; HttpOnly; "
                "SameSite=Lax"
            )
            # One leading slash: `//host/x` would send the browser to another host.
            location = "/" + request.path.lstrip("/") + (f"?{rest}" if rest else "")
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
        if held is not None and hmac.compare_digest(
            held.value.encode(), _digest(self._token).encode()
        ):
            return None
        return _refused("this dashboard needs its token")

    def _named_well(self, request: Request) -> bool:
        """Whether the Host the request names is this machine's own: an address, `localhost`
        or a name of KINSTA_SCHEDULER_HTTP_HOSTS. A page on an attacker's domain that was made
        to resolve to 127.0.0.1 still names that domain."""
        try:
            name = urlsplit("//" + (request.header("host") or "").strip()).hostname or ""
        except ValueError:  # an unbalanced bracket
            return False
        if name in self._hosts or name == "localhost":
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True


def _misnamed() -> Response:
    body = (
        "421: this dashboard answers to an address or localhost only. Add the name you use to "
        f"{HOSTS_ENV} (comma-separated), or set {TOKEN_ENV}."
    )
    return Response(421, body.encode() + b"\n")


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
