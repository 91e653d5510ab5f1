"""Polling an operation to its end, economically: every poll spends the same rate budget.

The first poll comes when the operation is expected to be done (never sooner than `first_poll_s`),
then the interval grows by half each time up to `max_interval_s`. A 404 within
`not_found_grace_s` of acceptance means Kinsta has not registered the operation yet (documented
for site creation, seen on other actions); after that it is a failure. Past `deadline_s` we stop
polling and report TIMED_OUT: Kinsta may still finish it, which is recorded as such.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from scheduler.clock import Clock
from scheduler.domain import FINAL_OPERATION_STATES, OperationState, Polling
from scheduler.errors import Interrupted, KinstaError
from scheduler.kinsta.client import KinstaClient, OperationStatus

GROWTH = 1.5
FINAL = FINAL_OPERATION_STATES


def next_delay_s(polls_done: int, expected_s: float, polling: Polling) -> float:
    """Seconds to wait before poll number `polls_done + 1`."""
    if polls_done == 0:
        return max(polling.first_poll_s, expected_s)
    interval = max(polling.first_poll_s, expected_s / 4) * GROWTH ** (polls_done - 1)
    return min(polling.max_interval_s, interval)


class PollingCancelled(Interrupted):
    """Polling stopped because the process is shutting down; the operation may still run."""

    def __init__(self, polls: int) -> None:
        self.polls = polls
        super().__init__(f"polling stopped after {polls} poll(s)")


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
    started = clock.monotonic()
    polls = 0
    last: OperationStatus | None = None
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
        try:
            status = client.get_operation(operation_id)
        except KinstaError as exc:
            # Retries are exhausted inside the client; count it and go on until the deadline.
            polls += 1
            last = OperationStatus(OperationState.IN_PROGRESS, 0, f"poll failed: {exc}")
            continue
        polls += 1
        if (
            status.state is OperationState.PENDING
            and clock.monotonic() - started > polling.not_found_grace_s
        ):
            status = OperationStatus(
                OperationState.FAILED, status.http_status, f"operation not found: {status.message}"
            )
        if on_status is not None and (last is None or last.state is not status.state):
            on_status(status, polls)
        last = status
        if status.state in FINAL:
            return PollResult(status.state, status.message, polls, status.http_status)
