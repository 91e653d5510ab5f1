"""E-mail as a channel without a network: jobs.yaml and the environment make the settings
(every problem reported), the channel formats one message, and each way SMTP can fail becomes
a recorded reason without the password, final or worth another try."""

from __future__ import annotations

import smtplib
import ssl

import pytest

from scheduler.config import parse
from scheduler.domain import Notify, Secret, Smtp, Webhook
from scheduler.errors import ConfigError
from scheduler.notify import EmailChannel, Message, SlackChannel
from scheduler.notify.channels import SUBJECT_MAX, message_channels
from scheduler.notify.mail import NoStartTls, undelivered

PASSWORD = "s3cret-smtp-password"
SMTP = Smtp("smtp.example.com", "scheduler@example.com", 587, "robot", Secret(PASSWORD))
ENV = {
    "KINSTA_SCHEDULER_SMTP_HOST": "smtp.example.com",
    "KINSTA_SCHEDULER_SMTP_USER": "robot@example.com",
    "KINSTA_SCHEDULER_SMTP_PASSWORD": PASSWORD,
}
TEXT = """version: 1
notify:
  email: {email}
  heartbeat_url: https://hc-ping.com/uuid
jobs: []
"""


def problems(text: str, env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, "jobs.yaml", env)
    return [str(p) for p in caught.value.problems]


def test_recipients_come_from_jobs_yaml_and_the_server_from_the_environment() -> None:
    config = parse(TEXT.format(email="[ops@example.com, oncall@example.org]"), "jobs.yaml", ENV)
    notify = config.notify
    assert notify.email == ("ops@example.com", "oncall@example.org")
    assert notify.smtp == Smtp(
        "smtp.example.com", "robot@example.com", 587, "robot@example.com", Secret(PASSWORD)
    )
    assert PASSWORD not in repr(config)
    one = parse(
        TEXT.format(email="ops@example.com"),
        "jobs.yaml",
        {
            "KINSTA_SCHEDULER_SMTP_HOST": "relay.internal",
            "KINSTA_SCHEDULER_SMTP_PORT": "2525",
            "KINSTA_SCHEDULER_SMTP_FROM": "kinsta@example.com",
        },
    )
    assert one.notify.email == ("ops@example.com",)
    assert one.notify.smtp == Smtp("relay.internal", "kinsta@example.com", 2525)
    assert parse(TEXT.format(email="[]"), "jobs.yaml", {}).notify.smtp is None


def test_a_bad_recipient_names_its_line() -> None:
    (found,) = problems(TEXT.format(email="[ops@example.com, 'Ops <ops@x>']"), ENV)
    assert found.startswith("jobs.yaml:3: notify.email: 'Ops <ops@x>' is not an e-mail address")


def test_e_mail_without_a_server_names_the_line_and_the_variables() -> None:
    assert problems(TEXT.format(email="[ops@example.com]"), {}) == [
        "jobs.yaml:3: notify.email: e-mail needs a mail server: set KINSTA_SCHEDULER_SMTP_HOST",
        "jobs.yaml: KINSTA_SCHEDULER_SMTP_FROM: e-mail needs a From address: set it",
    ]


def test_every_problem_of_the_environment_is_reported_at_once() -> None:
    env = {
        "KINSTA_SCHEDULER_SMTP_HOST": "smtp://smtp.example.com",
        "KINSTA_SCHEDULER_SMTP_PORT": "99999",
        "KINSTA_SCHEDULER_SMTP_PASSWORD": PASSWORD,
        "KINSTA_SCHEDULER_SMTP_FROM": "not an address",
    }
    found = problems(TEXT.format(email="[ops@example.com]"), env)
    assert found == [
        "jobs.yaml: KINSTA_SCHEDULER_SMTP_HOST: give the server's name alone, as smtp.example.com",
        "jobs.yaml: KINSTA_SCHEDULER_SMTP_PORT: '99999' is not a port number (587, 25)",
        "jobs.yaml: KINSTA_SCHEDULER_SMTP_USER and KINSTA_SCHEDULER_SMTP_PASSWORD: set both or "
        "neither",
        "jobs.yaml: KINSTA_SCHEDULER_SMTP_FROM: 'not an address' is not an e-mail address such as "
        "ops@example.com",
    ]
    assert PASSWORD not in repr(found)


def test_a_user_that_is_no_address_needs_a_from_address() -> None:
    env = {**ENV, "KINSTA_SCHEDULER_SMTP_USER": "robot"}
    (found,) = problems(TEXT.format(email="[ops@example.com]"), env)
    assert found == "jobs.yaml: KINSTA_SCHEDULER_SMTP_FROM: e-mail needs a From address: set it"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "/start"), ("false", None), ("'?state=run'", "?state=run"), ("/begin", "/begin")],
)
def test_the_start_ping_suffix(value: str | None, expected: str | None) -> None:
    line = f"\n  heartbeat_start: {value}" if value is not None else ""
    text = TEXT.format(email="[]").replace("uuid\n", f"uuid{line}\n")
    assert parse(text, "jobs.yaml", {}).notify.heartbeat_start == expected


@pytest.mark.parametrize("value", ["true", "start", "'/a b'", "''"])
def test_a_start_ping_suffix_that_cannot_be_meant(value: str) -> None:
    text = TEXT.format(email="[]").replace("uuid\n", f"uuid\n  heartbeat_start: {value}\n")
    (found,) = problems(text, {})
    assert found.startswith("jobs.yaml:5: notify.heartbeat_start: give what the start ping adds")


def test_the_subject_is_the_first_line_and_the_body_the_whole_text() -> None:
    message = Message("failure", "caches", 7, "kinsta-scheduler: job caches run 7 failed\n• x")
    mail = EmailChannel(SMTP, ("ops@example.com", "b@example.org")).request(message)
    assert mail.recipients == ("ops@example.com", "b@example.org") and mail.smtp == SMTP
    headers = mail.message
    assert headers["Subject"] == "kinsta-scheduler: job caches run 7 failed"
    assert (headers["From"], headers["To"]) == (
        "scheduler@example.com",
        "ops@example.com, b@example.org",
    )
    assert headers["X-Kinsta-Scheduler-Event"] == "failure"
    body = headers.get_content()
    assert body.startswith("kinsta-scheduler: job caches run 7 failed\n• x\n")
    assert "kinsta-scheduler show 7" in body
    long = EmailChannel(SMTP, ("ops@example.com",)).request(Message("missed", "j", None, "x" * 400))
    assert len(long.message["Subject"]) == SUBJECT_MAX and long.message["Subject"].endswith("…")
    assert "kinsta-scheduler show" not in long.message.get_content()  # no run to show


def test_e_mail_joins_the_webhooks_when_recipients_are_set() -> None:
    hooks = (Webhook("slack", Secret("https://hooks.slack.test/x")),)
    names = [c.name for c in message_channels(Notify(webhooks=hooks, email=("a@b.c",), smtp=SMTP))]
    assert names == ["slack", "email"]
    assert [type(c) for c in message_channels(Notify(webhooks=hooks))] == [SlackChannel]


@pytest.mark.parametrize(
    ("exc", "why", "final"),
    [
        (
            smtplib.SMTPAuthenticationError(535, b"5.7.8 bad credentials"),
            "SMTP 535: login refused",
            True,
        ),
        (
            smtplib.SMTPSenderRefused(553, b"5.7.1 not yours", "s@x"),
            "SMTP 553: 5.7.1 not yours",
            True,
        ),
        (
            smtplib.SMTPDataError(451, b"4.3.0 try later\nsecond line"),
            "SMTP 451: 4.3.0 try later",
            False,
        ),
        (
            smtplib.SMTPRecipientsRefused({"b@x": (550, b"no"), "a@x": (450, b"busy")}),
            "refused for a@x (450), b@x (550)",
            False,
        ),
        (smtplib.SMTPRecipientsRefused({"a@x": (550, b"no")}), "refused for a@x (550)", True),
        (NoStartTls(), "the server does not offer STARTTLS", True),
        (
            smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server."),
            "SMTP AUTH extension not supported by server.",
            True,
        ),
        (ssl.SSLCertVerificationError(1, "x"), "TLS: certificate verify failed", True),
        (
            smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
            "SMTPServerDisconnected",
            False,
        ),
        (ConnectionRefusedError(111, "refused"), "ConnectionRefusedError", False),
        (TimeoutError("timed out"), "TimeoutError", False),
    ],
)
def test_each_failure_is_said_and_only_a_refusal_is_final(
    exc: BaseException, why: str, final: bool
) -> None:
    found = undelivered(exc, PASSWORD)
    assert (found.why, found.final) == (why, final)


def test_a_reply_that_echoes_the_password_is_recorded_without_it() -> None:
    exc = smtplib.SMTPResponseException(554, f"5.7.0 rejected {PASSWORD}".encode())
    assert undelivered(exc, PASSWORD).why == "SMTP 554: 5.7.0 rejected ***"
