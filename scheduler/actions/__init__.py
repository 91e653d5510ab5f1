"""Actions: plain functions over the Kinsta client. They never touch the database or the
scheduler; waiting on an operation goes through ActionContext.wait, which the runner implements
(and records).

An action whose mutating request may have reached Kinsta without an answer (a timeout after
sending) is never sent again blindly: if it has a `reconcile` function, the runner calls it to
read the state back and decide; otherwise the task fails saying the outcome is uncertain."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from scheduler.domain import OperationState, Target, TaskStatus
from scheduler.kinsta.client import KinstaClient, OperationAccepted


@dataclass(frozen=True)
class ActionResult:
    status: TaskStatus
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)


class ActionContext(Protocol):
    @property
    def client(self) -> KinstaClient: ...

    def wait(
        self, accepted: OperationAccepted, kind: str | None = None
    ) -> tuple[OperationState, str]:
        """Poll the operation to its end (recording it as `kind`, by default the task's action);
        return its final state and message."""

    def wait_until(self, check: Callable[[], bool]) -> bool:
        """Call `check` on the polling schedule until it is true (True) or the polling deadline
        passes (False). For reading state back."""


Action = Callable[[ActionContext, Target, Mapping[str, Any]], ActionResult]


@dataclass(frozen=True)
class ActionDef:
    run: Action
    reconcile: Action | None = None  # reads the state back after an uncertain request


def outcome(state: OperationState, message: str) -> ActionResult:
    """The task result of an action that is one Kinsta operation."""
    if state is OperationState.SUCCEEDED:
        return ActionResult(TaskStatus.SUCCEEDED, message)
    if state is OperationState.TIMED_OUT:
        return ActionResult(TaskStatus.FAILED, f"operation timed out: {message}")
    return ActionResult(TaskStatus.FAILED, f"operation failed: {message}")


def registry() -> dict[str, ActionDef]:
    from scheduler.actions import cache, php

    return {
        "clear_cache": ActionDef(cache.clear_cache),
        "restart_php": ActionDef(php.restart_php),
        "set_php_version": ActionDef(php.set_php_version, reconcile=php.reconcile_php_version),
    }
