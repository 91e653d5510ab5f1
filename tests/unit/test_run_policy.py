"""The runner's pure decisions (scheduler/run/policy.py): no client, no store, no clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from scheduler.actions import ActionResult, Repeat
from scheduler.clock import CancelScope
from scheduler.domain import CancelRequest, OperationRecord, OperationState, RunStatus, TaskStatus
from scheduler.errors import (
    EnvironmentBusy,
    EnvironmentLockLost,
    Interrupted,
    KinstaAPIError,
    KinstaError,
    OwnershipLost,
    PollingCancelled,
    ResponseFormatError,
    StoreError,
    TransportError,
)
from scheduler.run import policy
from scheduler.run.leases import RunControl, WindDown
from scheduler.run.policy import Fate, Step

T0 = datetime(2026, 1, 1, tzinfo=UTC)


# --- classify: what an error makes of an attempt -----------------------------------------------


@pytest.mark.parametrize(
    "error", [OwnershipLost("adopted"), StoreError("down"), StoreError("gone", transient=True)]
)
def test_what_is_not_the_tasks_to_decide_propagates(error: Exception) -> None:
    assert policy.classify(error, Repeat.ALWAYS).fate is Fate.PROPAGATE


@pytest.mark.parametrize("error", [Interrupted("stopping"), PollingCancelled(3)])
def test_a_wait_cut_short_interrupts_the_task(error: Exception) -> None:
    assert policy.classify(error, Repeat.ALWAYS) == policy.Verdict(Fate.INTERRUPTED)


def test_a_request_that_never_left_is_a_transient_failure() -> None:
    error = TransportError("connect failed", method="POST", path="/x", sent=False)
    verdict = policy.classify(error, Repeat.IF_NOT_SENT)
    assert verdict.fate is Fate.RESULT
    assert verdict.result == ActionResult(TaskStatus.FAILED, str(error), transient=True)


@pytest.mark.parametrize(("status", "transient"), [(500, True), (503, True), (400, False)])
def test_a_read_that_failed_is_transient_only_on_a_server_error(
    status: int, transient: bool
) -> None:
    error = KinstaAPIError("no", method="GET", path="/x", status=status)
    verdict = policy.classify(error, Repeat.NEVER)
    assert verdict.fate is Fate.RESULT
    assert verdict.result is not None
    assert verdict.result.transient is transient


def test_a_refused_change_is_a_plain_failure() -> None:
    error = KinstaAPIError("bad request", method="POST", path="/x", status=422)
    verdict = policy.classify(error, Repeat.NEVER)
    assert verdict == policy.Verdict(Fate.RESULT, ActionResult(TaskStatus.FAILED, str(error)))


@pytest.mark.parametrize(
    "error",
    [
        KinstaAPIError("boom", method="POST", path="/x", status=502),
        TransportError("timed out", method="DELETE", path="/x", sent=True),
        ResponseFormatError("not JSON", method="PUT", path="/x"),
    ],
)
@pytest.mark.parametrize("repeat", [Repeat.NEVER, Repeat.IF_NOT_SENT])
def test_an_uncertain_change_is_never_repeated(error: KinstaError, repeat: Repeat) -> None:
    assert error.uncertain
    verdict = policy.classify(error, repeat)
    assert verdict.fate is Fate.FINAL
    assert verdict.result is not None
    assert verdict.result.status is TaskStatus.FAILED
    assert verdict.result.message.startswith("uncertain: the request may have reached Kinsta")
    assert verdict.result.details == {"uncertain": str(error)}


def test_an_uncertain_change_harmless_to_repeat_is_a_transient_failure() -> None:
    error = KinstaAPIError("boom", method="POST", path="/cache", status=502)
    verdict = policy.classify(error, Repeat.ALWAYS)
    assert verdict == policy.Verdict(
        Fate.RESULT, ActionResult(TaskStatus.FAILED, str(error), transient=True)
    )


@pytest.mark.parametrize("error", [EnvironmentBusy("busy"), EnvironmentLockLost("lapsed")])
def test_a_lock_problem_fails_the_task(error: Exception) -> None:
    verdict = policy.classify(error, Repeat.ALWAYS)
    assert verdict == policy.Verdict(Fate.RESULT, ActionResult(TaskStatus.FAILED, str(error)))


def test_an_actions_bug_fails_its_task_and_says_what_it_was() -> None:
    verdict = policy.classify(KeyError("version"), Repeat.ALWAYS)
    assert verdict.fate is Fate.CRASHED
    assert verdict.result == ActionResult(TaskStatus.FAILED, "internal error: KeyError: 'version'")


# --- retries -----------------------------------------------------------------------------------


def test_attempts_by_repeat() -> None:
    assert policy.attempts_allowed(Repeat.NEVER) == 1
    assert policy.attempts_allowed(Repeat.IF_NOT_SENT) == policy.IDEMPOTENT_ATTEMPTS
    assert policy.attempts_allowed(Repeat.ALWAYS) == policy.IDEMPOTENT_ATTEMPTS


def test_only_a_transient_failure_is_tried_again_while_attempts_remain() -> None:
    transient = ActionResult(TaskStatus.FAILED, "502", transient=True)
    final = ActionResult(TaskStatus.FAILED, "400")
    assert policy.should_retry(transient, 1, 4)
    assert policy.should_retry(transient, 3, 4)
    assert not policy.should_retry(transient, 4, 4)
    assert not policy.should_retry(final, 1, 4)
    assert not policy.should_retry(ActionResult(TaskStatus.SUCCEEDED, "ok"), 1, 4)


def test_the_pause_doubles_up_to_ten_times_the_base() -> None:
    assert [policy.retry_pause_s(a, 0.5) for a in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_a_failure_after_several_attempts_says_how_many() -> None:
    failed = ActionResult(TaskStatus.FAILED, "HTTP 502: boom", transient=True)
    assert policy.final_result(failed, 1) == failed
    assert policy.final_result(failed, 4).message == "HTTP 502: boom (after 4 attempts)"
    succeeded = ActionResult(TaskStatus.SUCCEEDED, "done")
    assert policy.final_result(succeeded, 3) == succeeded


# --- the next step of a pipeline -----------------------------------------------------------------


def step(*, stopping: bool = False, late: bool = False, failed: int = 0, on: str = "stop") -> Step:
    return policy.next_step(stopping=stopping, past_deadline=late, failed=failed, on_failure=on)


def test_a_pipeline_stops_when_the_process_stops_or_the_run_is_late() -> None:
    assert step(stopping=True, on="continue") is Step.STOP
    assert step(late=True, failed=1) is Step.STOP


def test_after_a_failure_the_rest_is_skipped_or_run_as_the_job_says() -> None:
    assert step(failed=1, on="stop") is Step.SKIP
    assert step(failed=1, on="continue") is Step.RUN
    assert step(failed=0, on="stop") is Step.RUN


# --- how a run ends --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failed", "interrupted", "total", "status"),
    [
        (0, 0, 3, RunStatus.SUCCEEDED),
        (1, 0, 3, RunStatus.FAILED),
        (1, 2, 3, RunStatus.FAILED),
        (0, 1, 3, RunStatus.INTERRUPTED),
        (0, 0, 0, RunStatus.INTERRUPTED),  # stopped before planning any task
    ],
)
def test_run_status(failed: int, interrupted: int, total: int, status: RunStatus) -> None:
    assert policy.run_status(failed=failed, interrupted=interrupted, total=total) is status


def test_a_stopping_run_says_what_it_left() -> None:
    assert policy.stopped(0, 0) is None
    assert policy.stopped(2, 0) == f"{policy.STOPPING}: 2 task(s) not started"
    assert policy.stopped(2, 1) == (
        f"{policy.STOPPING}: 2 task(s) not started, "
        "1 operation(s) left running at Kinsta, for recovery to follow"
    )


def test_a_run_past_its_timeout_says_what_it_left() -> None:
    assert policy.timed_out(60, 0, 0) == "timed out after 60s"
    assert policy.timed_out(1.5, 2, 1) == "timed out after 1.5s: 2 task(s) not started, 1 failed"


# --- a task recovery finds running ----------------------------------------------------------------


def operation(state: OperationState, message: str | None = None) -> OperationRecord:
    return OperationRecord("op-1", "clear_cache", state, T0, None, 1, message)


def test_a_one_operation_action_ends_as_its_operation() -> None:
    done = policy.recovered_task([operation(OperationState.SUCCEEDED)], one_operation=True)
    assert done == (
        TaskStatus.SUCCEEDED,
        "recovered: clear_cache succeeded after its process stopped",
    )
    failed = policy.recovered_task([operation(OperationState.FAILED, "no")], one_operation=True)
    assert failed == (TaskStatus.FAILED, "recovered: clear_cache failed: no")


def test_an_unknown_outcome_is_never_guessed() -> None:
    status, message = policy.recovered_task([operation(OperationState.UNKNOWN)], True)
    assert status is TaskStatus.INTERRUPTED
    assert "the outcome cannot be known" in message


def test_a_multi_step_action_fails_on_a_failed_operation_else_is_interrupted() -> None:
    failed = policy.recovered_task([operation(OperationState.TIMED_OUT)], one_operation=False)
    assert failed == (TaskStatus.FAILED, "its process stopped mid-action (clear_cache timed_out)")
    status, message = policy.recovered_task([operation(OperationState.SUCCEEDED)], False)
    assert status is TaskStatus.INTERRUPTED
    assert message.endswith("later steps not run, nothing repeated")
    assert policy.recovered_task([], False)[1].startswith(
        "its process stopped mid-action (no operation started)"
    )


# --- winding down: a cancel (or a breaker) stops new work, the run ends with its reason ---------


def test_a_cancel_names_who_asked_when_and_why() -> None:
    asked = CancelRequest(datetime(2026, 1, 1, 4, 30, 15, 123456, tzinfo=UTC), "ops@bastion", "bad")
    assert policy.cancelled_by(asked) == "cancelled by ops@bastion at 2026-01-01T04:30:15Z: bad"
    silent = CancelRequest(T0, "ops@bastion")
    assert policy.cancelled_by(silent) == "cancelled by ops@bastion at 2026-01-01T00:00:00Z"


def test_a_wound_down_run_says_what_it_left_undone() -> None:
    why = "cancelled by ops@bastion at 2026-01-01T00:00:00Z"
    assert policy.wound_down(why, 0, 0) == why
    assert policy.wound_down(why, 4, 0) == f"{why} (4 task(s) not started)"
    assert policy.wound_down(why, 4, 1) == f"{why} (4 task(s) not started, 1 failed)"
    assert policy.not_started(why) == f"not started: {why}"


def test_the_first_wind_down_decides_how_the_run_ends() -> None:
    control = RunControl(1, "token", CancelScope())
    assert control.winding_down is None
    assert control.wind_down(RunStatus.HALTED, "2 rolled back") is True
    assert control.wind_down(RunStatus.CANCELLED, "cancelled by ops") is False
    assert control.winding_down == WindDown(RunStatus.HALTED, "2 rolled back")
    assert not control.stop.is_set()  # waits go on: what is in flight is followed to its end
    control.gate()  # and in-flight work may still send its changes
