"""Polling an operation to its end, economically: every poll spends the same rate budget.

The first poll comes when the operation is expected to be done (never sooner than `first_poll_s`),
then the interval grows by half each time up to `max_interval_s`. A 404 within
`not_found_grace_s` of acceptance means Kinsta has not registered the operation yet (documented
for site creation, seen on other actions); after that it is a failure. Past `deadline_s` we stop
polling and report TIMED_OUT: Kinsta may still finish it, which is recorded as such.

Early polls: a caller may pass a Nudge whose `wake` event is set when rate budget would go
unused (the runner's bet that the operation is done). The poll then goes at once, `if_idle` (it
takes no budget a request waits for), and does not move the schedule: if the operation is still
running, the next scheduled poll comes when it would have. The Nudge hears what the early poll
found.

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
from typing import Protocol

from scheduler.clock import Clock
from scheduler.domain import FINAL_OPERATION_STATES, OperationState, Polling
from scheduler.errors import BudgetBusy, KinstaAPIError, KinstaError, PollingCancelled
from scheduler.kinsta.client import KinstaClient, OperationStatus
from scheduler.kinsta.governor import if_idle

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


class Nudge(Protocol):
    """Lets an operation be polled before its time, when budget would otherwise go unused."""

    @property
    def wake(self) -> threading.Event:
        """Set to poll now; also set whenever the wait must stop (a child of `cancel`)."""

    def polled_early(self, final: bool | None) -> None:
        """What an early poll found: final or not; None when no budget was free (not sent)."""


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
    nudge: Nudge | None = None,
) -> PollResult:
    """Poll to a final state. `on_status` hears every answer that differs from the one before
    (state or HTTP status), so a timeline shows unconfirmed failures and failed polls too."""
    started = clock.monotonic()
    polls = scheduled = 0
    judge = _Judge(polling)
    last: OperationStatus | None = None
    reported: OperationStatus | None = None
    due_at = started + next_delay_s(0, expected_s, polling)
    while True:
        if due_at - started > polling.deadline_s:
            if clock.sleep(max(0.0, started + polling.deadline_s - clock.monotonic()), cancel):
                raise PollingCancelled(polls)
            return _timed_out(polling, polls, last)
        woken = clock.sleep(due_at - clock.monotonic(), nudge.wake if nudge else cancel)
        if cancel is not None and cancel.is_set():
            raise PollingCancelled(polls)
        early = woken and nudge is not None
        try:
            answer = _ask(client, operation_id, early=early)
        except BudgetBusy:
            assert nudge is not None
            nudge.wake.clear()
            nudge.polled_early(None)
            continue
        status = judge.judge(answer, clock.monotonic() - started)
        polls += 1
        if on_status is not None and _differs(status, reported):
            on_status(status, polls)
            reported = status
        last = status
        final = status.state in FINAL_OPERATION_STATES
        _tell(nudge, early, final, cancel)
        if not early:
            scheduled += 1
            due_at = clock.monotonic() + next_delay_s(scheduled, expected_s, polling)
        if final:
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

    def judge(self, answer: OperationStatus | KinstaError, elapsed_s: float) -> OperationStatus:
        if isinstance(answer, KinstaError):  # retries are exhausted inside the client
            return self.poll_failed(answer)
        return self.answer(answer, elapsed_s)

    def poll_failed(self, error: KinstaError) -> OperationStatus:
        """No answer at all (the API or a proxy failed): proves nothing either way."""
        http_status = error.status if isinstance(error, KinstaAPIError) else 0
        return OperationStatus(self.believed, http_status, f"poll failed: {error}")


def _timed_out(polling: Polling, polls: int, last: OperationStatus | None) -> PollResult:
    return PollResult(
        OperationState.TIMED_OUT,
        f"no final state after {polling.deadline_s:.0f}s of polling",
        polls,
        last.http_status if last else None,
    )


def _ask(client: KinstaClient, operation_id: str, *, early: bool) -> OperationStatus | KinstaError:
    """One poll's answer, or the error that stood for one (polling goes on). An early poll
    raises BudgetBusy when no budget was free: it was not sent."""
    try:
        if early:
            with if_idle():
                return client.get_operation(operation_id)
        return client.get_operation(operation_id)
    except KinstaError as exc:
        return exc


def _tell(nudge: Nudge | None, early: bool, final: bool, cancel: threading.Event | None) -> None:
    """Tell the nudge what its early poll found (a scheduled poll answers one that came while
    it was out)."""
    if nudge is not None and (early or (nudge.wake.is_set() and not _set(cancel))):
        nudge.wake.clear()
        nudge.polled_early(final)


def _set(event: threading.Event | None) -> bool:
    return event is not None and event.is_set()


def _differs(status: OperationStatus, before: OperationStatus | None) -> bool:
    if before is None:
        return True
    return (status.state, status.http_status) != (before.state, before.http_status)
