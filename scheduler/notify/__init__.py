"""Notifications: Slack incoming webhooks and generic JSON webhooks, on a run's final failure, on
recovery after a failure, and on missed slots; a heartbeat URL pinged after each successful run
(a dead-man's switch for Healthchecks, Cronitor and the like).

policy.py decides (pure), channels.py formats per channel, dispatch.py delivers with retries.
The Notifier subscribes to the bus: RunFinished and SlotsMissed in, NotificationDelivered out.
"""

from __future__ import annotations

from scheduler.notify.channels import (
    CHANNELS,
    Channel,
    Heartbeat,
    JsonWebhook,
    Request,
    SlackChannel,
    destination,
)
from scheduler.notify.dispatch import ATTEMPTS, BACKOFF_S, Dispatcher
from scheduler.notify.notifier import Notifier, Outcomes
from scheduler.notify.policy import MAX_SITES_LISTED, Message, failure_lines

__all__ = [
    "ATTEMPTS",
    "BACKOFF_S",
    "CHANNELS",
    "MAX_SITES_LISTED",
    "Channel",
    "Dispatcher",
    "Heartbeat",
    "JsonWebhook",
    "Message",
    "Notifier",
    "Outcomes",
    "Request",
    "SlackChannel",
    "destination",
    "failure_lines",
]
