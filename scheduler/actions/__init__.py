"""Actions: plain functions over the Kinsta client. They never touch the database or the
scheduler; whatever they need from the run (waiting on an operation, the history of versions,
recording an inventory, an exclusive hold on another environment) goes through ActionContext,
which the runner implements and records.

An action whose mutating request may have reached Kinsta without an answer (a timeout after
sending) is never sent again blindly: if it has a `reconcile` function, the runner calls it to
read the state back and decide; otherwise the task fails saying the outcome is uncertain."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from scheduler.domain import InventorySnapshot, OperationState, Target, TaskStatus
from scheduler.kinsta.client import KinstaClient, OperationAccepted
from scheduler.kinsta.probe import SiteProbe


@dataclass(frozen=True)
class ActionResult:
    status: TaskStatus
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)
    versions_before: Mapping[str, Any] | None = None
    versions_after: Mapping[str, Any] | None = None
    transient: bool = False  # failed for a reason that may pass (5xx, lost connection)


class ActionContext(Protocol):
    @property
    def client(self) -> KinstaClient: ...

    @property
    def probe(self) -> SiteProbe: ...

    @property
    def company_id(self) -> str: ...

    def now(self) -> datetime: ...

    def wait(
        self, accepted: OperationAccepted, kind: str | None = None
    ) -> tuple[OperationState, str]:
        """Poll the operation to its end (recording it as `kind`, by default the task's action);
        return its final state and message."""

    def wait_until(self, check: Callable[[], bool]) -> bool:
        """Call `check` on the polling schedule until it is true (True) or the polling deadline
        passes (False). For reading state back."""

    def note_available(
        self, kind: str, offered: Iterable[tuple[str, str]]
    ) -> Mapping[tuple[str, str], datetime]:
        """Record updates on offer ((name, version) of plugins|themes); when each was first seen."""

    def record_inventory(self, snapshot: InventorySnapshot) -> None: ...

    def exclusive(self, environment_id: str, label: str) -> AbstractContextManager[None]:
        """Hold another environment's lock (as the task's own is held) for a block."""

    def notify_user_id(self) -> str:
        """A user of the company, for endpoints that must name one to notify."""


Action = Callable[[ActionContext, Target, Mapping[str, Any]], ActionResult]


@dataclass(frozen=True)
class ActionDef:
    run: Action
    reconcile: Action | None = None  # reads the state back after an uncertain request
    mutating: bool = True  # changes the environment: holds its lock while it runs
    # Doing it twice does no harm (clearing a cache, reading): after a transient failure, even
    # one where the request may have reached Kinsta, the runner simply tries again.
    idempotent: bool = False
    # The action is its one Kinsta operation: after a crash, that operation's outcome is the
    # task's (recovery.py). Actions with reads or steps around the operation are not.
    one_operation: bool = False
    requests: float = 2.0  # typical API requests per target, for `plan` (polls included)
    typical_s: float = 10.0  # typical duration at Kinsta, for `plan` until history knows better


def outcome(state: OperationState, message: str) -> ActionResult:
    """The task result of an action that is one Kinsta operation."""
    if state is OperationState.SUCCEEDED:
        return ActionResult(TaskStatus.SUCCEEDED, message)
    if state is OperationState.TIMED_OUT:
        return ActionResult(TaskStatus.FAILED, f"operation timed out: {message}")
    return ActionResult(TaskStatus.FAILED, f"operation failed: {message}")


def registry() -> dict[str, ActionDef]:
    from scheduler.actions import backups, cache, domains, environments, logs, php, sites, updates
    from scheduler.actions import inventory as inv

    return {
        "clear_cache": ActionDef(
            cache.clear_cache, one_operation=True, idempotent=True, typical_s=5.0
        ),
        "clear_edge_cache": ActionDef(
            cache.clear_edge_cache, one_operation=True, idempotent=True, typical_s=5.0
        ),
        "clear_cdn_cache": ActionDef(
            cache.clear_cdn_cache, one_operation=True, idempotent=True, typical_s=5.0
        ),
        "restart_php": ActionDef(
            php.restart_php, one_operation=True, idempotent=True, typical_s=15.0
        ),
        "set_php_version": ActionDef(
            php.set_php_version, reconcile=php.reconcile_php_version, requests=3.0, typical_s=45.0
        ),
        "backup": ActionDef(backups.backup, one_operation=True, requests=2.0, typical_s=90.0),
        "prune_backups": ActionDef(backups.prune_backups, requests=3.0, typical_s=15.0),
        "update_plugins": ActionDef(updates.update_plugins, requests=3.0, typical_s=90.0),
        "update_themes": ActionDef(updates.update_themes, requests=3.0, typical_s=90.0),
        "fetch_logs": ActionDef(
            logs.fetch_logs, mutating=False, idempotent=True, requests=1.0, typical_s=1.0
        ),
        "inventory": ActionDef(
            inv.inventory, mutating=False, idempotent=True, requests=4.0, typical_s=2.0
        ),
        "push_to_live": ActionDef(
            environments.push_to_live, one_operation=True, requests=3.0, typical_s=120.0
        ),
        "create_staging": ActionDef(
            environments.create_staging, one_operation=True, requests=3.0, typical_s=180.0
        ),
        "restore_backup": ActionDef(backups.restore_backup, requests=4.0, typical_s=120.0),
        "create_site": ActionDef(
            sites.create_site, one_operation=True, requests=3.0, typical_s=180.0
        ),
        "clone_site": ActionDef(
            sites.clone_site, one_operation=True, requests=3.0, typical_s=240.0
        ),
        "add_domain": ActionDef(
            domains.add_domain, one_operation=True, requests=3.0, typical_s=20.0
        ),
        "remove_domain": ActionDef(
            domains.remove_domain, one_operation=True, requests=3.0, typical_s=15.0
        ),
    }
