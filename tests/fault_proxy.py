"""An HTTP proxy in front of the sandbox that answers for it when told to: what a load balancer
or a flaky API does (an HTML 502 after the request reached the API, a transient 500 on a poll).

    proxy = FaultProxy(sandbox.url)
    proxy.add("PUT", r"/v2/sites/tools/.*", 502, NGINX_502, forward=True)  # acted, answer lost
    client = KinstaClient(proxy.url, ...)

A rule strikes the next `times` requests it matches. `forward=True` sends the request on first
(the sandbox acts on it) and replaces the answer; `forward=False` answers without sending it.
"""

from __future__ import annotations

import http.client
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
KINSTA_500 = '{"message": "Error occurred while processing your request", "status": 500}'
KINSTA_503 = '{"message": "Service Unavailable", "status": 503}'
PASSED_HEADERS = ("content-type", "retry-after", "ratelimit-remaining", "ratelimit-reset")


@dataclass
class Rule:
    method: str
    path: re.Pattern[str]
    status: int
    body: str
    forward: bool
    times: int
    content_type: str
    hits: int = 0


class FaultProxy:
    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status answered)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                proxy._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{parts.path}"

    def add(
        self,
        method: str,
        path: str,
        status: int,
        body: str,
        *,
        forward: bool,
        times: int = 1,
        content_type: str | None = None,
    ) -> Rule:
        kind = content_type or ("application/json" if body.startswith("{") else "text/html")
        rule = Rule(method, re.compile(path), status, body, forward, times, kind)
        with self._lock:
            self._rules.append(rule)
        return rule

    def _strike(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.hits < rule.times and rule.method == method and rule.path.fullmatch(path):
                    rule.hits += 1
                    return rule
        return None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        path = urlsplit(handler.path).path
        rule = self._strike(handler.command, path)
        status, data = 0, b""
        headers: dict[str, str] = {}
        if rule is None or rule.forward:
            status, headers, data = self._forward(handler, body)
        if rule is not None:
            status, headers, data = (
                rule.status,
                {"content-type": rule.content_type},
                rule.body.encode(),
            )
        with self._lock:
            self.requests.append((handler.command, path, status))
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _forward(
        self, handler: BaseHTTPRequestHandler, body: bytes | None
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(*self._upstream, timeout=30)
        try:
            sent = {k: v for k, v in handler.headers.items() if k.lower() != "connection"}
            connection.request(handler.command, handler.path, body=body, headers=sent)
            response = connection.getresponse()
            data = response.read()
            kept = {k.lower(): v for k, v in response.getheaders() if k.lower() in PASSED_HEADERS}
            return response.status, kept, data
        finally:
            connection.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
