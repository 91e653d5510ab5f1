"""Notifications: Slack incoming webhooks, generic JSON webhooks and e-mail, on a run's final
failure, on recovery after a failure, on a run stopped early (cancelled, halted) and on missed
slots; a heartbeat URL pinged when a run starts and after each successful run (a dead-man's
switch for Healthchecks, Cronitor and the like).

policy.py decides (pure), channels.py formats per channel, dispatch.py delivers with retries
(mail.py speaks SMTP). The Notifier subscribes to the bus: RunStarted, RunFinished and
SlotsMissed in, NotificationDelivered out. The daemon and `trigger` wire it alike
(bootstrap.open_notifications).
"""

from __future__ import annotations

from scheduler.notify.channels import (
    CHANNELS,
    Channel,
    EmailChannel,
    Heartbeat,
    JsonWebhook,
    Mail,
    Request,
    SlackChannel,
    Undelivered,
    destination,
    start_url,
)
from scheduler.notify.dispatch import ATTEMPTS, BACKOFF_S, Dispatcher
from scheduler.notify.mail import SmtpMailer
from scheduler.notify.notifier import START_ATTEMPTS, Notifier, Outcomes
from scheduler.notify.policy import MAX_SITES_LISTED, Message, failure_lines

__all__ = [
    "ATTEMPTS",
    "BACKOFF_S",
    "CHANNELS",
    "MAX_SITES_LISTED",
    "START_ATTEMPTS",
    "Channel",
    "Dispatcher",
    "EmailChannel",
    "Heartbeat",
    "JsonWebhook",
    "Mail",
    "Message",
    "Notifier",
    "Outcomes",
    "Request",
    "SlackChannel",
    "SmtpMailer",
    "Undelivered",
    "destination",
    "failure_lines",
    "start_url",
]
