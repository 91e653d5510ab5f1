"""Receivers for notifications on loopback, in the test process: an HTTP server that records
each request (webhooks, heartbeat pings), and a small SMTP server (EHLO, STARTTLS, AUTH PLAIN
and LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT) that records each message, whether it came over
TLS, and every command line it read before TLS (so a test can tell the password never crossed
in the clear). `refuse` makes it answer a command with a given reply."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO

SOCKET_TIMEOUT_S = 5.0


class _HttpHandler(BaseHTTPRequestHandler):
    received: list[tuple[str, str, Any]]  # (method, path, JSON body or None)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self._answer("POST", json.loads(body))

    def do_GET(self) -> None:
        self._answer("GET", None)

    def _answer(self, method: str, body: Any) -> None:
        type(self).received.append((method, self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def http_receiver() -> Iterator[tuple[str, list[tuple[str, str, Any]]]]:
    """(its base URL, what it received: (method, path, body) in order)."""
    received: list[tuple[str, str, Any]] = []
    handler = type("Receiver", (_HttpHandler,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    tls: bool
    user: str | None


@dataclass
class SmtpStandIn:
    """What the server does (`tls`: None offers no STARTTLS) and what it saw."""

    tls: ssl.SSLContext | None
    user: str | None = None
    password: str | None = None
    refuse: dict[str, str] = field(default_factory=dict)  # verb -> reply, e.g. RCPT -> 550 ...
    messages: list[Received] = field(default_factory=list)
    clear_lines: list[str] = field(default_factory=list)  # read before TLS
    port: int = 0


class _Session:
    def __init__(self, standin: SmtpStandIn, sock: socket.socket) -> None:
        self.standin, self.sock = standin, sock
        self.reader, self.writer = sock.makefile("rb"), sock.makefile("wb")
        self.tls = False
        self.user: str | None = None
        self.sender: str | None = None
        self.recipients: list[str] = []

    def reply(self, line: str) -> None:
        self.writer.write(line.encode() + b"\r\n")
        self.writer.flush()

    def read(self) -> str | None:
        raw = self.reader.readline(1000)
        if not raw:
            return None
        line = raw.decode().rstrip("\r\n")
        if not self.tls:
            self.standin.clear_lines.append(line)
        return line

    def serve(self) -> None:
        self.reply("220 standin ESMTP")
        while (line := self.read()) is not None:
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb in self.standin.refuse:
                self.reply(self.standin.refuse[verb])
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.command(verb, arg)

    def command(self, verb: str, arg: str) -> None:
        if verb in ("EHLO", "HELO"):
            self.ehlo()
        elif verb == "STARTTLS" and self.standin.tls is not None and not self.tls:
            self.reply("220 go ahead")
            self.start_tls(self.standin.tls)
        elif verb == "AUTH":
            self.auth(arg)
        elif verb == "MAIL":
            self.sender, self.recipients = _address(arg), []
            self.reply("250 ok")
        elif verb == "RCPT":
            self.recipients.append(_address(arg))
            self.reply("250 ok")
        elif verb == "DATA":
            self.data()
        elif verb in ("RSET", "NOOP"):
            self.reply("250 ok")
        else:
            self.reply("502 not implemented")

    def ehlo(self) -> None:
        lines = ["standin"]
        if self.standin.tls is not None and not self.tls:
            lines.append("STARTTLS")
        if self.tls or self.standin.tls is None:
            lines.append("AUTH PLAIN LOGIN")
        for line in lines[:-1]:
            self.reply(f"250-{line}")
        self.reply(f"250 {lines[-1]}")

    def start_tls(self, context: ssl.SSLContext) -> None:
        self.reader.close()
        self.writer.close()
        self.sock = context.wrap_socket(self.sock, server_side=True)
        self.reader, self.writer = self.sock.makefile("rb"), self.sock.makefile("wb")
        self.tls = True

    def auth(self, arg: str) -> None:
        mechanism, _, initial = arg.partition(" ")
        if mechanism.upper() == "PLAIN":
            _, user, password = base64.b64decode(initial or self._ask("")).decode().split("\0")
        else:  # LOGIN
            user = base64.b64decode(self._ask("VXNlcm5hbWU6")).decode()
            password = base64.b64decode(self._ask("UGFzc3dvcmQ6")).decode()
        if (user, password) == (self.standin.user, self.standin.password):
            self.user = user
            self.reply("235 authenticated")
        else:
            self.reply("535 5.7.8 bad credentials")

    def _ask(self, challenge: str) -> str:
        self.reply(f"334 {challenge}")
        return self.read() or ""

    def data(self) -> None:
        self.reply("354 end with <CRLF>.<CRLF>")
        lines: list[bytes] = []
        while (raw := self.reader.readline(10_000)) not in (b".\r\n", b""):
            lines.append(raw[1:] if raw.startswith(b"..") else raw)
        received = Received(
            self.sender or "",
            self.recipients,
            message_from_bytes(b"".join(lines), _class=EmailMessage, policy=policy.default),
            self.tls,
            self.user,
        )
        self.standin.messages.append(received)
        self.reply("250 queued")

    def close(self) -> None:
        for stream in (self.reader, self.writer):
            _close(stream)
        self.sock.close()


def _close(stream: BinaryIO) -> None:
    with contextlib.suppress(OSError):  # the client went away mid-write
        stream.close()


def _address(arg: str) -> str:
    return arg.partition(":")[2].strip().strip("<>").split(">")[0]


class _SmtpHandler(socketserver.BaseRequestHandler):
    standin: SmtpStandIn

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(SOCKET_TIMEOUT_S)
        session = _Session(type(self).standin, sock)
        try:
            session.serve()
        except (OSError, ValueError):  # a client that hung up, or failed the TLS handshake
            pass
        finally:
            session.close()


class _SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = False
    block_on_close = True  # server_close waits for every session: nothing left open


@contextmanager
def smtp_server(standin: SmtpStandIn) -> Iterator[SmtpStandIn]:
    handler = type("Handler", (_SmtpHandler,), {"standin": standin})
    server = _SmtpServer(("127.0.0.1", 0), handler)
    standin.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
