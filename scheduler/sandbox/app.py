"""The sandbox's endpoint handlers: (fleet, request) -> (status, body), by the spec's operationId.

The handlers live in handlers/, one module per resource group (sites and environments, tools,
plugins and themes, domains, backups, logs and operations), each with its table of the
operations it answers; handlers/base.py says how they answer (the spec's bodies and statuses,
Kinsta's not-found and refusal shapes). This module joins the tables.
"""

from __future__ import annotations

from scheduler.sandbox.handlers import backups, domains, items, sites, status, tools
from scheduler.sandbox.handlers.base import Handler, Request, Response

__all__ = ["HANDLERS", "Handler", "Request", "Response"]

HANDLERS: dict[str, Handler] = {
    **sites.HANDLERS,
    **tools.HANDLERS,
    **items.HANDLERS,
    **domains.HANDLERS,
    **backups.HANDLERS,
    **status.HANDLERS,
}
