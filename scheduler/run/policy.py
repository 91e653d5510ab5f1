"""The runner's decisions, pure: what an error makes of a task, whether to try an action again
and after how long, what a pipeline does next, and what status a run (or a task recovery
finds running) ends with. No I/O, no clock: callers pass what they saw.

A change request that may have reached Kinsta (KinstaError.uncertain) is never sent again
unless the action's `repeat` is ALWAYS: its task fails saying its outcome is uncertain."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC

from scheduler.actions import ActionResult, Repeat, uncertain
from scheduler.domain import CancelRequest, OperationRecord, OperationState, RunStatus, TaskStatus
from scheduler.errors import (
    EnvironmentBusy,
    EnvironmentLockLost,
    Interrupted,
    KinstaAPIError,
    KinstaError,
    OwnershipLost,
    StoreError,
    TransportError,
)

SKIPPED_AFTER_FAILURE = "not run: an earlier action on this target failed"
STOPPING = "stopped early: the process was stopping"
NOT_STARTED_STOPPING = "not started: the process was stopping"
NOT_STARTED_TIMEOUT = "not started: the run reached its timeout"
IDEMPOTENT_ATTEMPTS = 4  # attempts in all of an action that may be repeated
RETRY_PAUSE_MAX_FACTOR = 10.0  # the pause before another attempt grows 2x, up to 10x the base


class Fate(enum.Enum):
    """What becomes of an error an action raised."""

    RESULT = "result"  # the task's result (`Verdict.result`); may be tried again if transient
    FINAL = "final"  # the task's result, never tried again (an uncertain change request)
    CRASHED = "crashed"  # an action's bug: the task fails (`Verdict.result`), the run goes on
    INTERRUPTED = "interrupted"  # the process is stopping: the task is left as it is
    PROPAGATE = "propagate"  # not the task's: the run was lost, or the store failed


@dataclass(frozen=True)
class Verdict:
    fate: Fate
    result: ActionResult | None = None


def classify(error: Exception, repeat: Repeat) -> Verdict:
    """What an error raised by an action (or its reconcile step) makes of the attempt."""
    if isinstance(error, OwnershipLost):
        return Verdict(Fate.PROPAGATE)  # the run is another process's now: write nothing
    if isinstance(error, Interrupted):  # a poll, a wait for rate budget or a backoff cut short
        return Verdict(Fate.INTERRUPTED)
    if isinstance(error, KinstaError):
        return _kinsta(error, repeat)
    if isinstance(error, EnvironmentBusy | EnvironmentLockLost):
        return Verdict(Fate.RESULT, ActionResult(TaskStatus.FAILED, str(error)))
    if isinstance(error, StoreError):
        return Verdict(Fate.PROPAGATE)
    message = f"internal error: {type(error).__name__}: {error}"
    return Verdict(Fate.CRASHED, ActionResult(TaskStatus.FAILED, message))


def _kinsta(error: KinstaError, repeat: Repeat) -> Verdict:
    if error.uncertain:
        if repeat is Repeat.ALWAYS:  # harmless to repeat: a transient failure like any other
            return Verdict(Fate.RESULT, ActionResult(TaskStatus.FAILED, str(error), transient=True))
        return Verdict(Fate.FINAL, uncertain(error, "its effect cannot be read back"))
    if isinstance(error, TransportError):
        return Verdict(Fate.RESULT, ActionResult(TaskStatus.FAILED, str(error), transient=True))
    if isinstance(error, KinstaAPIError):
        failed = ActionResult(TaskStatus.FAILED, str(error), transient=error.status >= 500)
        return Verdict(Fate.RESULT, failed)
    return Verdict(Fate.RESULT, ActionResult(TaskStatus.FAILED, str(error)))


def attempts_allowed(repeat: Repeat) -> int:
    """Attempts in all an action may have."""
    return 1 if repeat is Repeat.NEVER else IDEMPOTENT_ATTEMPTS


def should_retry(result: ActionResult, attempt: int, attempts: int) -> bool:
    """Whether attempt number `attempt` (from 1) of `attempts` is followed by another."""
    return result.transient and attempt < attempts


def retry_pause_s(attempt: int, base_s: float) -> float:
    """The pause after failed attempt number `attempt` (from 1), before the next one."""
    return min(2.0**attempt, RETRY_PAUSE_MAX_FACTOR) * base_s


def final_result(result: ActionResult, attempts: int) -> ActionResult:
    """The task's result after `attempts` attempts: a failure says how many it took."""
    if result.status is TaskStatus.FAILED and attempts > 1:
        return replace(result, message=f"{result.message} (after {attempts} attempts)")
    return result


class Step(enum.Enum):
    """What a pipeline does with its next task."""

    RUN = "run"
    SKIP = "skip"  # an earlier task failed and the job stops on failure: recorded skipped
    STOP = "stop"  # the process is stopping, or the run passed its deadline: left pending


def next_step(*, stopping: bool, past_deadline: bool, failed: int, on_failure: str) -> Step:
    if stopping or past_deadline:
        return Step.STOP
    if failed and on_failure == "stop":
        return Step.SKIP
    return Step.RUN


def run_status(*, failed: int, interrupted: int, total: int) -> RunStatus:
    """A run whose tasks all ended: failed if any failed, else interrupted if any was
    interrupted (or none was ever planned: it stopped before planning any), else succeeded."""
    if failed:
        return RunStatus.FAILED
    if interrupted or not total:
        return RunStatus.INTERRUPTED
    return RunStatus.SUCCEEDED


def stopped(left: int, running: int) -> str | None:
    """Why a run that was stopping ends interrupted: tasks not started (`left`), operations
    left running at Kinsta; None when neither (it ends like any other run)."""
    if not (left or running):
        return None
    parts = [f"{left} task(s) not started"] if left else []
    if running:
        parts.append(f"{running} operation(s) left running at Kinsta, for recovery to follow")
    return f"{STOPPING}: {', '.join(parts)}"


def timed_out(timeout_s: float, left: int, failed: int) -> str:
    """Why a run past its timeout fails (whether or not every task had started by then)."""
    details = [f"{left} task(s) not started"] if left else []
    details += [f"{failed} failed"] if failed else []
    return f"timed out after {timeout_s:g}s" + (f": {', '.join(details)}" if details else "")


def cancelled_by(request: CancelRequest) -> str:
    """The reason a cancelled run gives: who asked, when (UTC), and why if they said."""
    at = request.at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return f"cancelled by {request.by} at {at}" + (f": {request.reason}" if request.reason else "")


def not_started(reason: str) -> str:
    """The message of a task a winding-down run never started."""
    return f"not started: {reason}"


def wound_down(reason: str, left: int, failed: int) -> str:
    """Why a run that stopped starting work ended early: its reason, then what it left undone
    and what failed among the work that did run."""
    details = [f"{left} task(s) not started"] if left else []
    details += [f"{failed} failed"] if failed else []
    return reason + (f" ({', '.join(details)})" if details else "")


def recovered_task(
    operations: Sequence[OperationRecord], one_operation: bool
) -> tuple[TaskStatus, str]:
    """How recovery ends a task its process left running, from the operations it started.
    `one_operation`: the action is that one operation, whose outcome is the task's."""
    states = [op.state for op in operations]
    summary = (
        ", ".join(f"{op.action} {op.state.value}" for op in operations) or "no operation started"
    )
    if any(s is OperationState.UNKNOWN for s in states):
        return (
            TaskStatus.INTERRUPTED,
            f"its process stopped mid-action ({summary}); the outcome cannot be known, "
            "nothing repeated",
        )
    if one_operation and len(operations) == 1:
        if operations[0].state is OperationState.SUCCEEDED:
            return TaskStatus.SUCCEEDED, f"recovered: {summary} after its process stopped"
        return TaskStatus.FAILED, f"recovered: {summary}: {operations[0].message or ''}".strip()
    if any(s in (OperationState.FAILED, OperationState.TIMED_OUT) for s in states):
        return TaskStatus.FAILED, f"its process stopped mid-action ({summary})"
    return (
        TaskStatus.INTERRUPTED,
        f"its process stopped mid-action ({summary}); later steps not run, nothing repeated",
    )
