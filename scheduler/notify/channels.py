"""Where notifications go. A Channel turns a Message into what to send (pure: dispatch sends
it): one HTTP request for Slack incoming webhooks, generic JSON webhooks and the heartbeat of a
dead-man's switch, one e-mail for the e-mail channel. Which channels a message goes to is chosen
by `notify` in jobs.yaml. A new kind of channel is one class here and one entry in CHANNELS
(config validates the kinds it accepts), or a line in `message_channels`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from scheduler.domain import Notify, Secret, Smtp
from scheduler.notify.policy import Message

SUBJECT_MAX = 150  # characters of the message's first line an e-mail's subject keeps


def destination(url: str) -> str:
    """What may be recorded or logged of a URL (which carries credentials): scheme and host."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"


def start_url(url: str, suffix: str) -> str:
    """The URL of a run's start ping: `suffix` added to the heartbeat URL's path ("/start",
    Healthchecks' convention) or, when it starts with "?", to its query ("?state=run",
    Cronitor's)."""
    parts = urlsplit(url)
    if suffix.startswith("?"):
        query = "&".join(q for q in (parts.query, suffix[1:]) if q)
        return urlunsplit(parts._replace(query=query))
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + suffix))


@dataclass(frozen=True)
class Request:
    method: str  # GET or POST
    url: Secret
    json: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Mail:
    """One e-mail, and the server it goes through."""

    smtp: Smtp
    message: EmailMessage
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class Undelivered:
    """Why a delivery attempt failed (never a URL or a password in it), and whether trying
    again cannot help (a refusal)."""

    why: str
    final: bool = False


class Channel(Protocol):
    @property
    def name(self) -> str:
        """What history records as the channel: slack, json, email, heartbeat."""

    def request(self, message: Message) -> Request | Mail: ...


@dataclass(frozen=True)
class SlackChannel:
    """A Slack incoming webhook: the text only."""

    url: Secret
    name: str = "slack"

    def request(self, message: Message) -> Request:
        return Request("POST", self.url, {"text": message.text})


@dataclass(frozen=True)
class JsonWebhook:
    """A generic JSON POST: the event, the job, the text and the event's details."""

    url: Secret
    name: str = "json"

    def request(self, message: Message) -> Request:
        body = {"event": message.kind, "job_id": message.job_id, "text": message.text}
        return Request("POST", self.url, {**body, **message.extra})


@dataclass(frozen=True)
class Heartbeat:
    """A dead-man's switch (Healthchecks, Cronitor...): a bare GET after each successful run,
    and one to the start URL (see `start_url`) for a message of kind "start"."""

    url: Secret
    start_suffix: str | None = None
    name: str = "heartbeat"

    def request(self, message: Message) -> Request:
        if message.kind == "start" and self.start_suffix:
            return Request("GET", Secret(start_url(self.url.reveal(), self.start_suffix)))
        return Request("GET", self.url)


@dataclass(frozen=True)
class EmailChannel:
    """One plain-text e-mail to every recipient: the message's first line is the subject."""

    smtp: Smtp
    recipients: tuple[str, ...]
    name: str = "email"

    def request(self, message: Message) -> Mail:
        mail = EmailMessage()
        first = message.text.partition("\n")[0]
        mail["Subject"] = first if len(first) <= SUBJECT_MAX else first[: SUBJECT_MAX - 1] + "…"
        mail["From"] = self.smtp.sender
        mail["To"] = ", ".join(self.recipients)
        mail["X-Kinsta-Scheduler-Event"] = message.kind
        body = message.text
        if message.run_id is not None:
            body += f"\n\nThe run in full: kinsta-scheduler show {message.run_id}"
        mail.set_content(body + "\n")
        return Mail(self.smtp, mail, self.recipients)


CHANNELS: Mapping[str, Callable[[Secret], Channel]] = {
    "slack": SlackChannel,
    "json": JsonWebhook,
}


def message_channels(settings: Notify) -> list[Channel]:
    """The channels every message goes to: the webhooks in jobs.yaml's order, then e-mail."""
    found: list[Channel] = [CHANNELS[hook.kind](hook.url) for hook in settings.webhooks]
    if settings.email and settings.smtp is not None:
        found.append(EmailChannel(settings.smtp, settings.email))
    return found
