"""Actions: plain functions over the Kinsta client. They never touch the database or the
scheduler; whatever they need from the run (waiting on an operation, the history of versions,
recording an inventory, an exclusive hold on another environment) goes through ActionContext,
which the runner implements and records.

A change request that may have reached Kinsta without an answer proving it refused (a timeout
after sending, a 5xx, a 2xx that cannot be read: KinstaError.uncertain) is never sent again
unless the action's `repeat` is ALWAYS. Actions whose effect can be read back send it through
`change`, which then reads the state back until it shows the change (or the polling deadline
passes); for the others the runner fails the task saying its outcome is uncertain."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from scheduler.domain import InventorySnapshot, OperationState, Target, TaskStatus
from scheduler.errors import KinstaAPIError, KinstaError
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
        """Call `check` on the polling schedule until it is true (True) or the read-back window
        (`polling.read_back`) passes (False). For reading state back."""

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


class Repeat(StrEnum):
    """What "safe to repeat" means for an action: what the runner may run again after a
    transient failure (up to four attempts in all)."""

    # A second run ends in the same state and does no harm (clearing a cache, reading): tried
    # again after any transient failure, even when its request may have reached Kinsta.
    ALWAYS = "always"
    # One change request whose repetition would be felt (restarting PHP twice): tried again
    # only after a failure that proves the request was not made (no connection); never after
    # an uncertain answer.
    IF_NOT_SENT = "if_not_sent"
    # Several steps, or a change that is not repeated without a look (backups, updates,
    # restores, pushes...): one attempt; the next slot tries again.
    NEVER = "never"


@dataclass(frozen=True)
class ActionDef:
    run: Action
    mutating: bool = True  # changes the environment: holds its lock while it runs
    repeat: Repeat = Repeat.NEVER  # what may be run again after a transient failure
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


def uncertain(error: KinstaError, what: str, **details: Any) -> ActionResult:
    """The task result of a change request that may have reached Kinsta, whose effect could not
    be read back (or cannot be): failed, saying so, and never repeated."""
    return ActionResult(
        TaskStatus.FAILED,
        f"uncertain: the request may have reached Kinsta ({error}), but {what}; not repeated",
        {"uncertain": str(error), **details},
    )


def change(
    ctx: ActionContext,
    send: Callable[[], OperationAccepted],
    done: Callable[[], bool],
    what: str,
    kind: str | None = None,
) -> ActionResult:
    """Send a change request and wait for its operation. If the answer leaves its fate unknown
    (KinstaError.uncertain: a 5xx, a timeout after sending), it is never sent again: the state
    is read back (`done`) on the polling schedule until it shows `what`, or until the read-back
    window (`polling.read_back`) passes (then the task fails as uncertain)."""
    try:
        accepted = send()
    except KinstaError as exc:
        if not exc.uncertain:
            raise

        def shows_it() -> bool:
            try:
                return done()
            except KinstaError:  # a failed read shows nothing yet; the deadline still holds
                return False

        if ctx.wait_until(shows_it):
            answer = exc.kinsta_message
            if isinstance(exc, KinstaAPIError):
                answer = f"HTTP {exc.status}: {answer}"
            return ActionResult(
                TaskStatus.SUCCEEDED,
                f"the request's answer was lost ({answer}), but reading back shows {what}",
                {"reconciled": True},
            )
        return uncertain(exc, f"reading back does not show {what}", reconciled=True)
    return outcome(*ctx.wait(accepted, kind))


def registry() -> dict[str, ActionDef]:
    from scheduler.actions import backups, cache, domains, environments, logs, php, sites, updates
    from scheduler.actions import inventory as inv

    return {
        "clear_cache": ActionDef(
            cache.clear_cache, one_operation=True, repeat=Repeat.ALWAYS, typical_s=5.0
        ),
        "clear_edge_cache": ActionDef(
            cache.clear_edge_cache, one_operation=True, repeat=Repeat.ALWAYS, typical_s=5.0
        ),
        "clear_cdn_cache": ActionDef(
            cache.clear_cdn_cache, one_operation=True, repeat=Repeat.ALWAYS, typical_s=5.0
        ),
        "restart_php": ActionDef(
            php.restart_php, one_operation=True, repeat=Repeat.IF_NOT_SENT, typical_s=15.0
        ),
        "set_php_version": ActionDef(php.set_php_version, requests=3.0, typical_s=45.0),
        "backup": ActionDef(backups.backup, one_operation=True, requests=2.0, typical_s=90.0),
        "prune_backups": ActionDef(backups.prune_backups, requests=3.0, typical_s=15.0),
        "update_plugins": ActionDef(updates.update_plugins, requests=3.0, typical_s=90.0),
        "update_themes": ActionDef(updates.update_themes, requests=3.0, typical_s=90.0),
        "fetch_logs": ActionDef(
            logs.fetch_logs, mutating=False, repeat=Repeat.ALWAYS, requests=1.0, typical_s=1.0
        ),
        "inventory": ActionDef(
            inv.inventory, mutating=False, repeat=Repeat.ALWAYS, requests=4.0, typical_s=2.0
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
