"""What every action shares: its result, the context the runner hands it, and the helpers for
one-operation actions and for change requests whose answer was lost. Imports nothing that does
I/O at run time (the Kinsta client is named for type checking only), so the catalogue of actions
can be read by the configuration without loading the HTTP client."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from scheduler.domain import InventorySnapshot, OperationState, TaskStatus
from scheduler.errors import KinstaAPIError, KinstaError
from scheduler.ports import QuarantineEntry

if TYPE_CHECKING:
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

    def quarantined(
        self, kind: str, offered: Iterable[tuple[str, str]]
    ) -> Mapping[tuple[str, str], QuarantineEntry]:
        """The quarantined ones among these (name, version) updates of plugins|themes."""

    def quarantine(self, kind: str, name: str, version: str, reason: str) -> QuarantineEntry:
        """Quarantine a version this task proved guilty (its safe update was rolled back): the
        task's target, run and task are the evidence, with `reason` (the check that failed)."""

    def time_left_s(self) -> float:
        """Seconds until the run's timeout (its job's `timeout`): no new step starts after it."""

    def winding_down(self) -> str | None:
        """Why the run starts no new work now (a cancel, a circuit breaker, the process
        stopping); None while it may."""

    def exclusive(self, environment_id: str, label: str) -> AbstractContextManager[None]:
        """Hold another environment's lock (as the task's own is held) for a block."""

    def notify_user_id(self) -> str:
        """A user of the company, for endpoints that must name one to notify."""


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
