"""Polling an operation to its end, economically: every poll spends the same rate budget.

The first poll comes when the operation is expected to be done (never sooner than `first_poll_s`),
then the interval grows by half each time up to `max_interval_s`. A 404 within
`not_found_grace_s` of acceptance means Kinsta has not registered the operation yet (documented
for site creation, seen on other actions); after that it is a failure. Past `deadline_s` we stop
polling and report TIMED_OUT: Kinsta may still finish it, which is recorded as such.

A failure is believed only when FAILURE_CONFIRMATIONS polls in a row say so: Kinsta documents a
failed operation as HTTP 500 with {"message": "Error occurred while processing your request",
"status": 500}, which is word for word its generic server error too, so one such answer cannot
tell a failed operation from a passing fault. The answers in between are reported (with the
state last believed and the HTTP status seen), never final.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from scheduler.clock import Clock
from scheduler.domain import FINAL_OPERATION_STATES, OperationState, Polling
from scheduler.errors import KinstaAPIError, KinstaError, PollingCancelled
from scheduler.kinsta.client import KinstaClient, OperationStatus

GROWTH = 1.5
# A "failed" answer must be repeated by this many polls in a row before it is believed: one HTTP
# 500 may be a hiccup of the API (or a proxy), and a later 202 or 200 proves it was.
FAILURE_CONFIRMATIONS = 3


def next_delay_s(polls_done: int, expected_s: float, polling: Polling) -> float:
    """Seconds to wait before poll number `polls_done + 1`."""
    if polls_done == 0:
        return max(polling.first_poll_s, expected_s)
    interval = max(polling.first_poll_s, expected_s / 4) * GROWTH ** (polls_done - 1)
    return min(polling.max_interval_s, interval)


@dataclass(frozen=True)
class PollResult:
    state: OperationState
    message: str
    polls: int
    http_status: int | None


def wait_for_operation(
    client: KinstaClient,
    operation_id: str,
    polling: Polling,
    clock: Clock,
    *,
    expected_s: float = 0.0,
    on_status: Callable[[OperationStatus, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> PollResult:
    """Poll to a final state. `on_status` hears every answer that differs from the one before
    (state or HTTP status), so a timeline shows unconfirmed failures and failed polls too."""
    started = clock.monotonic()
    polls = 0
    judge = _Judge(polling)
    last: OperationStatus | None = None
    reported: OperationStatus | None = None
    while True:
        delay = next_delay_s(polls, expected_s, polling)
        elapsed = clock.monotonic() - started
        if elapsed + delay > polling.deadline_s:
            if clock.sleep(max(0.0, polling.deadline_s - elapsed), cancel):
                raise PollingCancelled(polls)
            return PollResult(
                OperationState.TIMED_OUT,
                f"no final state after {polling.deadline_s:.0f}s of polling",
                polls,
                last.http_status if last else None,
            )
        if clock.sleep(delay, cancel):
            raise PollingCancelled(polls)
        polls += 1
        try:
            answer = client.get_operation(operation_id)
        except KinstaError as exc:  # retries are exhausted inside the client; go on polling
            status = judge.poll_failed(exc)
        else:
            status = judge.answer(answer, clock.monotonic() - started)
        if on_status is not None and _differs(status, reported):
            on_status(status, polls)
            reported = status
        last = status
        if status.state in FINAL_OPERATION_STATES:
            return PollResult(status.state, status.message, polls, status.http_status)


@dataclass
class _Judge:
    """What each answer means, given the answers before it."""

    polling: Polling
    believed: OperationState = OperationState.PENDING  # the last state we took Kinsta's word for
    failures: int = 0  # answers in a row saying the operation failed

    def answer(self, status: OperationStatus, elapsed_s: float) -> OperationStatus:
        if status.state is OperationState.PENDING and elapsed_s > self.polling.not_found_grace_s:
            message = f"operation not found: {status.message}"
            status = replace(status, state=OperationState.FAILED, message=message)
        elif status.state is OperationState.FAILED:
            self.failures += 1
            if self.failures < FAILURE_CONFIRMATIONS:
                note = f"not final until confirmed ({self.failures} of {FAILURE_CONFIRMATIONS})"
                status = replace(status, state=self.believed, message=f"{note}: {status.message}")
        else:
            self.failures = 0
        self.believed = status.state
        return status

    def poll_failed(self, error: KinstaError) -> OperationStatus:
        """No answer at all (the API or a proxy failed): proves nothing either way."""
        http_status = error.status if isinstance(error, KinstaAPIError) else 0
        return OperationStatus(self.believed, http_status, f"poll failed: {error}")


def _differs(status: OperationStatus, before: OperationStatus | None) -> bool:
    if before is None:
        return True
    return (status.state, status.http_status) != (before.state, before.http_status)
