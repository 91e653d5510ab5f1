"""Where notifications go. A Channel turns a Message into one HTTP request (pure: dispatch
sends it). Slack incoming webhooks and generic JSON webhooks are chosen by `notify` in
jobs.yaml; the heartbeat pings a dead-man's switch. A new kind of channel is one class here and
one entry in CHANNELS (config validates the kinds it accepts)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from scheduler.domain import Notify, Secret
from scheduler.notify.policy import Message


def destination(url: str) -> str:
    """What may be recorded or logged of a URL (which carries credentials): scheme and host."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"


@dataclass(frozen=True)
class Request:
    method: str  # GET or POST
    url: Secret
    json: Mapping[str, Any] | None = None


class Channel(Protocol):
    @property
    def name(self) -> str:
        """What history records as the channel: slack, json, heartbeat."""

    def request(self, message: Message) -> Request: ...


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
    """A dead-man's switch (Healthchecks, Cronitor...): a bare GET after each successful run."""

    url: Secret
    name: str = "heartbeat"

    def request(self, message: Message) -> Request:
        return Request("GET", self.url)


CHANNELS: Mapping[str, Callable[[Secret], Channel]] = {
    "slack": SlackChannel,
    "json": JsonWebhook,
}


def webhooks(settings: Notify) -> list[Channel]:
    """The channels every message goes to, in jobs.yaml's order."""
    return [CHANNELS[hook.kind](hook.url) for hook in settings.webhooks]
