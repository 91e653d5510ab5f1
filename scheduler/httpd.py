"""The daemon's HTTP server (`run --http-port N`, also spelled `--metrics-port`): the standard
library's threaded server and a table of routes. Each route is a function from a Request to a
Response, registered by whoever serves it: /metrics and /healthz (scheduler.metrics), POST
/slack/commands (scheduler.slack), the dashboard's pages (scheduler.web). Nothing here knows them.
A path may hold parameters, one whole segment each (`/runs/{run_id}`); an exact path wins.

The server is small on purpose: one thread per connection, bodies of at most MAX_BODY_BYTES
with a Content-Length, a socket timeout so a slow client cannot hold a thread, and no
traceback in any answer (a route that raises is logged and answered 500). It speaks plain
HTTP: bind it to loopback behind a TLS proxy when it must be reachable (README)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import structlog

log = structlog.get_logger("scheduler.http")

MAX_BODY_BYTES = 64 * 1024  # a Slack command is a few hundred bytes
READ_TIMEOUT_S = 10.0  # a client that sends nothing for this long is dropped
TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query
    query: str
    headers: Mapping[str, str]  # names in lower case
    body: bytes = b""
    params: Mapping[str, str] = field(default_factory=dict)  # from the route's {name} segments

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def arguments(self) -> dict[str, str]:
        """The query's parameters, the last of each name winning (`?a=1&a=2`: a=2)."""
        return dict(parse_qsl(self.query, keep_blank_values=True))


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = TEXT
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, status: int, text: str) -> Response:
        return cls(status, (text + "\n").encode())

    @classmethod
    def json(cls, status: int, document: Any) -> Response:
        return cls(status, json.dumps(document).encode(), "application/json")


Handler = Callable[[Request], Response]

MAX_NUMBER_DIGITS = 9  # a page, a count of days, a run id: never more than this


def number(text: str | None) -> int | None:
    """A whole number given in a path or query (ASCII digits, at most MAX_NUMBER_DIGITS);
    None for anything else (`²`, `-1`, 10,000 digits), so no request can make int() raise."""
    if text is None or not (0 < len(text) <= MAX_NUMBER_DIGITS):
        return None
    return int(text) if text.isascii() and text.isdigit() else None


class Routes:
    """The route table: (method, path) -> handler. A path's segment written `{name}` matches
    any one non-empty segment and reaches the handler as `request.params[name]`; an exact path
    wins over a pattern, and patterns are tried in the order added. An unknown path is 404, a
    known path asked with another method 405 (with Allow)."""

    def __init__(self) -> None:
        self._table: dict[str, dict[str, Handler]] = {}
        self._patterns: list[tuple[tuple[str, ...], str]] = []  # (segments, path as added)

    def add(self, method: str, path: str, handler: Handler) -> Routes:
        if "{" in path and path not in self._table:
            segments = tuple(path.strip("/").split("/"))
            names = [s[1:-1] for s in segments if _is_param(s)]
            if any(not n.isidentifier() for n in names) or len(set(names)) != len(names):
                raise ValueError(f"bad parameters in {path}")
            self._patterns.append((segments, path))
        methods = self._table.setdefault(path, {})
        if method in methods:
            raise ValueError(f"{method} {path} is served twice")
        methods[method] = handler
        return self

    def paths(self) -> list[str]:
        return sorted(self._table)

    def match(self, path: str) -> tuple[str, dict[str, str]] | None:
        """The route serving `path` and its parameters; None when none does."""
        if path in self._table:
            return path, {}
        asked = path.strip("/").split("/")
        for segments, route in self._patterns:
            if len(segments) != len(asked):
                continue
            params: dict[str, str] = {}
            for want, got in zip(segments, asked, strict=True):
                if _is_param(want) and got:
                    params[want[1:-1]] = got
                elif want != got:
                    break
            else:
                return route, params
        return None

    def dispatch(self, request: Request) -> Response:
        found = self.match(request.path)
        if found is None:
            return Response.text(404, "not found")
        route, params = found
        methods = self._table[route]
        handler = methods.get(request.method)
        if handler is None:
            allowed = ", ".join(sorted(methods))
            return Response(405, b"method not allowed\n", headers={"Allow": allowed})
        try:
            return handler(replace(request, params=params) if params else request)
        except Exception:
            log.exception("http.route_failed", method=request.method, path=request.path)
            return Response.text(500, "internal error (logged)")


def _is_param(segment: str) -> bool:
    return len(segment) > 2 and segment[0] == "{" and segment[-1] == "}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = READ_TIMEOUT_S
    protocol_version = "HTTP/1.0"  # one request per connection: no idle keep-alive threads

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        body = self._body() if method == "POST" else b""
        if body is None:
            return
        parts = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = Request(method, parts.path, parts.query, headers, body)
        self._reply(self.server.routes.dispatch(request))

    def _body(self) -> bytes | None:
        """The request's body; None when it was refused (and answered) instead."""
        if self.headers.get("Transfer-Encoding"):
            self._reply(Response.text(411, "send a Content-Length"))
            return None
        length = self.headers.get("Content-Length", "0")
        if not (length.isascii() and length.isdigit()):
            self._reply(Response.text(400, "bad Content-Length"))
            return None
        if int(length) > MAX_BODY_BYTES:
            self._reply(Response.text(413, f"at most {MAX_BODY_BYTES} bytes"))
            return None
        return self.rfile.read(int(length))

    def _reply(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not news: the routes log what matters, without secrets."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], routes: Routes) -> None:
        self.routes = routes
        super().__init__(address, _Handler)


class HttpServer:
    """Serves `routes` on host:port (port 0: any free port) from a background thread."""

    def __init__(self, routes: Routes, host: str, port: int) -> None:
        self._server = _Server((host, port), routes)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
