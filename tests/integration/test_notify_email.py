"""E-mail notifications against a real SMTP server on loopback (tests/standins.py) with
STARTTLS under a throwaway CA (trustme): what arrives, what is recorded in history, and what a
refusal or an unreachable server leaves (a record, never a crash, never the password)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from scheduler.domain import Secret, Smtp
from scheduler.eventlog import EventLog
from scheduler.events import Bus
from scheduler.history import SqlHistoryStore
from scheduler.notify import ATTEMPTS, BACKOFF_S, Dispatcher, EmailChannel, Message, SmtpMailer
from tests.conftest import FakeClock
from tests.standins import SmtpStandIn, smtp_server

PASSWORD = "s3cret-smtp-password"
FAILURE = Message(
    "failure",
    "caches",
    7,
    "kinsta-scheduler: job caches run 7 failed\n• clear_cache failed on 1 environment(s): a/live",
)
TO = ("ops@example.com", "oncall@example.org")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def trusting(ca: trustme.CA) -> Callable[[], ssl.SSLContext]:
    def context() -> ssl.SSLContext:
        client = ssl.create_default_context()
        ca.configure_trust(client)
        return client

    return context


@pytest.fixture
def standin(ca: trustme.CA) -> Iterator[SmtpStandIn]:
    with smtp_server(SmtpStandIn(server_context(ca), "robot", PASSWORD)) as server:
        yield server


def channel(port: int, password: str = PASSWORD) -> EmailChannel:
    smtp = Smtp("127.0.0.1", "scheduler@example.com", port, "robot", Secret(password))
    return EmailChannel(smtp, TO)


def dispatcher(
    clock: FakeClock, bus: Bus, tls: Callable[[], ssl.SSLContext] | None = None
) -> Dispatcher:
    mailer = SmtpMailer(5.0, tls) if tls is not None else SmtpMailer(5.0)
    return Dispatcher(clock, bus.publish, mailer=mailer)


def test_a_message_goes_over_starttls_and_logs_in_only_then(
    standin: SmtpStandIn, ca: trustme.CA
) -> None:
    clock = FakeClock()
    record = dispatcher(clock, Bus(), trusting(ca)).deliver(channel(standin.port), FAILURE)
    assert (record.ok, record.channel, record.destination) == (True, "email", "smtp://127.0.0.1")
    (received,) = standin.messages
    assert (received.tls, received.user) == (True, "robot")
    assert (received.sender, received.recipients) == ("scheduler@example.com", list(TO))
    mail = received.message
    assert mail["Subject"] == "kinsta-scheduler: job caches run 7 failed"
    assert (mail["From"], mail["To"]) == (
        "scheduler@example.com",
        "ops@example.com, oncall@example.org",
    )
    assert mail["X-Kinsta-Scheduler-Event"] == "failure"
    assert mail["Date"] and mail["Message-ID"].endswith("@example.com>")
    body = mail.get_content()
    assert "clear_cache failed on 1 environment(s): a/live" in body
    assert "kinsta-scheduler show 7" in body
    # Before TLS the client said hello and asked for it: no AUTH, no password, no message.
    assert [line.split()[0] for line in standin.clear_lines] == ["ehlo", "STARTTLS"]


def test_the_systems_trust_store_is_used_and_ssl_cert_file_can_name_another(
    standin: SmtpStandIn, ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, bus = FakeClock(), Bus()
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    refused = dispatcher(clock, bus).deliver(channel(standin.port), FAILURE)
    assert not refused.ok and (refused.detail or "").startswith("TLS: ")
    assert clock.slept == [] and standin.messages == []  # a certificate refused is final
    assert not any("AUTH" in line for line in standin.clear_lines)

    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))  # as an operator would
    assert dispatcher(clock, bus).deliver(channel(standin.port), FAILURE).ok
    assert len(standin.messages) == 1


def test_a_refused_recipient_is_recorded_not_delivered_and_not_retried(
    ca: trustme.CA, store: SqlHistoryStore
) -> None:
    clock, bus = FakeClock(), Bus()
    EventLog(store.events, lambda *event: None).subscribe(bus)
    refusing = SmtpStandIn(
        server_context(ca), "robot", PASSWORD, refuse={"RCPT": "550 5.1.1 no such mailbox"}
    )
    with smtp_server(refusing) as server:
        record = dispatcher(clock, bus, trusting(ca)).deliver(channel(server.port), FAILURE)
    assert (record.ok, clock.slept, refusing.messages) == (False, [], [])
    assert record.detail == "refused for oncall@example.org (550), ops@example.com (550)"
    (recorded,) = store.events.notifications()
    assert (recorded.kind, recorded.channel, recorded.ok) == ("failure", "email", False)
    assert (recorded.job_id, recorded.run_id, recorded.detail) == ("caches", 7, record.detail)


def test_a_refused_login_never_shows_the_password(
    ca: trustme.CA, capsys: pytest.CaptureFixture[str]
) -> None:
    # What the log wrote is read from the streams: structlog's capture_logs misses loggers
    # an earlier test of the same worker had already cached.
    wrong = "wrong-" + PASSWORD
    with smtp_server(SmtpStandIn(server_context(ca), "robot", PASSWORD)) as server:
        record = dispatcher(FakeClock(), Bus(), trusting(ca)).deliver(
            channel(server.port, wrong), FAILURE
        )
    assert (record.ok, record.detail) == (False, "SMTP 535: login refused")
    assert server.messages == []
    written = capsys.readouterr()
    assert "notification.failed" in written.out + written.err
    assert wrong not in written.out + written.err + repr(record)


def test_a_server_without_starttls_gets_neither_the_password_nor_the_message() -> None:
    with smtp_server(SmtpStandIn(None, "robot", PASSWORD)) as server:
        record = dispatcher(FakeClock(), Bus()).deliver(channel(server.port), FAILURE)
    assert (record.ok, record.detail) == (False, "the server does not offer STARTTLS")
    assert server.messages == []
    assert [line.split()[0] for line in server.clear_lines] == ["ehlo", "QUIT"]


def test_a_temporary_refusal_is_retried_on_the_clock(ca: trustme.CA) -> None:
    clock = FakeClock()
    busy = SmtpStandIn(server_context(ca), "robot", PASSWORD, refuse={"DATA": "451 4.3.0 later"})
    with smtp_server(busy) as server:
        record = dispatcher(clock, Bus(), trusting(ca)).deliver(channel(server.port), FAILURE)
    assert (record.ok, record.detail) == (False, "SMTP 451: 4.3.0 later")
    assert clock.slept == list(BACKOFF_S)
    assert [line for line in busy.clear_lines if line == "STARTTLS"] == ["STARTTLS"] * ATTEMPTS


def test_an_unreachable_server_is_retried_then_recorded() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens there once it is closed
    clock = FakeClock()
    record = dispatcher(clock, Bus()).deliver(channel(port), FAILURE)
    assert (record.ok, record.detail) == (False, "ConnectionRefusedError")
    assert clock.slept == list(BACKOFF_S)
