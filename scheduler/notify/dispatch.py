"""Delivery: send a channel's request or e-mail, retrying briefly on the injected clock (a
timeout, a 5xx or a 429; a receiver's refusal, such as a 4xx or an SMTP 5xx, is final). A
notification that cannot be delivered is logged, never fatal; every attempt is published as
NotificationDelivered (history records it). Webhook URLs carry credentials: only their scheme
and host are ever recorded or logged (for e-mail: smtp:// and the server's host)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import structlog

from scheduler import __version__
from scheduler.clock import Clock
from scheduler.domain import NotificationRecord
from scheduler.events import Event, NotificationDelivered
from scheduler.notify.channels import Channel, Mail, Request, Undelivered, destination
from scheduler.notify.mail import SmtpMailer
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
        mailer: SmtpMailer | None = None,
    ) -> None:
        self._clock = clock
        self._publish = publish
        self._client = httpx.Client(
            timeout=timeout_s,
            headers={"User-Agent": f"kinsta-scheduler/{__version__}"},
            transport=transport,
        )
        self._mailer = mailer or SmtpMailer(timeout_s)

    def close(self) -> None:
        self._client.close()

    def deliver(
        self, channel: Channel, message: Message, *, attempts: int = ATTEMPTS
    ) -> NotificationRecord:
        """Deliver `message` on `channel`, trying up to `attempts` times."""
        request = channel.request(message)
        if isinstance(request, Mail):
            where = f"smtp://{request.smtp.host}"
            failure = self._retried(lambda: self._mailer.send(request), attempts)
        else:
            where = destination(request.url.reveal())
            failure = self._retried(lambda: self._request(request), attempts)
        error = None if failure is None else failure.why
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

    def _retried(
        self, attempt: Callable[[], Undelivered | None], attempts: int
    ) -> Undelivered | None:
        """None once an attempt succeeds, else the last failure."""
        failure = None
        for index in range(attempts):
            failure = attempt()
            if failure is None or failure.final:
                return failure
            if index < min(attempts - 1, len(BACKOFF_S)):
                self._clock.sleep(BACKOFF_S[index])
        return failure

    def _request(self, request: Request) -> Undelivered | None:
        """One HTTP attempt: None when delivered, else why not (no URL in it)."""
        try:
            response = self._client.request(
                request.method,
                request.url.reveal(),
                json=dict(request.json) if request.json is not None else None,
            )
        except httpx.HTTPError as exc:
            return Undelivered(type(exc).__name__)
        if response.status_code < 300:
            return None
        # A 4xx other than 429 is the receiver refusing it: retrying will not help.
        refused = response.status_code < 500 and response.status_code != 429
        return Undelivered(f"HTTP {response.status_code}", final=refused)
