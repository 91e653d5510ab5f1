"""Delivery: send a channel's request, retrying briefly on the injected clock (a timeout, a 5xx
or a 429; a receiver's 4xx refusal is final). A notification that cannot be delivered is logged,
never fatal; every attempt is published as NotificationDelivered (history records it). Webhook
URLs carry credentials: only their scheme and host are ever recorded or logged."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import structlog

from scheduler import __version__
from scheduler.clock import Clock
from scheduler.domain import NotificationRecord
from scheduler.events import Event, NotificationDelivered
from scheduler.notify.channels import Channel, Request, destination
from scheduler.notify.policy import Message

log = structlog.get_logger("scheduler.notify")

ATTEMPTS = 3
BACKOFF_S = (0.5, 2.0)
TIMEOUT_S = 10.0


class Dispatcher:
    def __init__(
        self,
        clock: Clock,
        publish: Callable[[Event], None],
        *,
        timeout_s: float = TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._clock = clock
        self._publish = publish
        self._client = httpx.Client(
            timeout=timeout_s,
            headers={"User-Agent": f"kinsta-scheduler/{__version__}"},
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def deliver(self, channel: Channel, message: Message) -> NotificationRecord:
        request = channel.request(message)
        error = self._send(request)
        where = destination(request.url.reveal())
        fields = {"kind": message.kind, "channel": channel.name, "to": where}
        if error is None:
            log.info("notification.sent", **fields, job_id=message.job_id)
        else:
            log.warning("notification.failed", **fields, error=error, job_id=message.job_id)
        record = NotificationRecord(
            self._clock.now(),
            message.job_id,
            message.run_id,
            message.kind,
            channel.name,
            where,
            error is None,
            error,
        )
        self._publish(NotificationDelivered(record))
        return record

    def _send(self, request: Request) -> str | None:
        """None when delivered, else why not (no URL in it)."""
        error = None
        for attempt in range(ATTEMPTS):
            try:
                response = self._client.request(
                    request.method,
                    request.url.reveal(),
                    json=dict(request.json) if request.json is not None else None,
                )
                if response.status_code < 300:
                    return None
                error = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    return error  # the receiver refuses it; retrying will not help
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}"
            if attempt < len(BACKOFF_S):
                self._clock.sleep(BACKOFF_S[attempt])
        return error
