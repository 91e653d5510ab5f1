"""Operation polling decisions, with a scripted client and a fake clock (no sleeping)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from scheduler.domain import OperationState, Polling
from scheduler.errors import BudgetBusy, PollingCancelled
from scheduler.kinsta.client import OperationStatus
from scheduler.kinsta.operations import FAILURE_CONFIRMATIONS, next_delay_s, wait_for_operation
from tests.conftest import FakeClock

POLLING = Polling(first_poll_s=2, max_interval_s=30, not_found_grace_s=30, deadline_s=300)


class ScriptedClient:
    def __init__(self, *answers: tuple[OperationState, int]) -> None:
        self.answers = list(answers)
        self.polled = 0

    def get_operation(self, operation_id: str) -> OperationStatus:
        self.polled += 1
        state, http = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return OperationStatus(state, http, f"http {http}")


def wait(client: Any, clock: FakeClock, **kwargs: Any) -> Any:
    return wait_for_operation(client, "cache:clear-x", POLLING, clock, **kwargs)


def test_first_poll_waits_for_the_expected_duration() -> None:
    assert next_delay_s(0, expected_s=40, polling=POLLING) == 40
    assert next_delay_s(0, expected_s=0, polling=POLLING) == 2
    assert next_delay_s(1, expected_s=0, polling=POLLING) == 2
    assert next_delay_s(3, expected_s=0, polling=POLLING) == 4.5
    assert next_delay_s(20, expected_s=0, polling=POLLING) == 30


def test_not_found_during_grace_is_pending_then_success(fake_clock: FakeClock) -> None:
    client = ScriptedClient(
        (OperationState.PENDING, 404),
        (OperationState.IN_PROGRESS, 202),
        (OperationState.SUCCEEDED, 200),
    )
    seen: list[OperationState] = []
    result = wait(client, fake_clock, on_status=lambda s, polls: seen.append(s.state))
    assert result.state is OperationState.SUCCEEDED and result.polls == 3
    assert seen == [OperationState.PENDING, OperationState.IN_PROGRESS, OperationState.SUCCEEDED]


def test_not_found_after_grace_is_a_failure(fake_clock: FakeClock) -> None:
    result = wait(ScriptedClient((OperationState.PENDING, 404)), fake_clock)
    assert result.state is OperationState.FAILED and "not found" in result.message
    assert sum(fake_clock.slept) > POLLING.not_found_grace_s


def test_failure_is_final_once_confirmed(fake_clock: FakeClock) -> None:
    client = ScriptedClient((OperationState.IN_PROGRESS, 202), (OperationState.FAILED, 500))
    seen: list[tuple[OperationState, int, str]] = []

    def record(status: OperationStatus, polls: int) -> None:
        seen.append((status.state, status.http_status, status.message))

    result = wait(client, fake_clock, on_status=record)
    assert result.state is OperationState.FAILED and result.http_status == 500
    assert result.polls == 1 + FAILURE_CONFIRMATIONS
    assert seen == [
        (OperationState.IN_PROGRESS, 202, "http 202"),
        (OperationState.IN_PROGRESS, 500, "not final until confirmed (1 of 3): http 500"),
        (OperationState.FAILED, 500, "http 500"),
    ]


def test_a_transient_failure_answer_is_not_final(fake_clock: FakeClock) -> None:
    """Issue 11 item 15: one 500 on a poll (a hiccup, or Kinsta's failed-operation body) is
    confirmed by further polls; a later 200 or 202 wins."""
    client = ScriptedClient(
        (OperationState.IN_PROGRESS, 202),
        (OperationState.FAILED, 500),
        (OperationState.FAILED, 500),
        (OperationState.IN_PROGRESS, 202),
        (OperationState.FAILED, 500),
        (OperationState.SUCCEEDED, 200),
    )
    seen: list[tuple[OperationState, int]] = []
    result = wait(client, fake_clock, on_status=lambda s, p: seen.append((s.state, s.http_status)))
    assert result.state is OperationState.SUCCEEDED and result.polls == 6
    assert seen == [
        (OperationState.IN_PROGRESS, 202),
        (OperationState.IN_PROGRESS, 500),  # recorded as it came, but not as the end
        (OperationState.IN_PROGRESS, 202),
        (OperationState.IN_PROGRESS, 500),
        (OperationState.SUCCEEDED, 200),
    ]
    assert all(d >= POLLING.first_poll_s for d in fake_clock.slept)  # confirmations spaced out


def test_a_failure_answer_on_the_first_poll_is_confirmed_too(fake_clock: FakeClock) -> None:
    client = ScriptedClient((OperationState.FAILED, 500), (OperationState.SUCCEEDED, 200))
    result = wait(client, fake_clock)
    assert result.state is OperationState.SUCCEEDED and result.polls == 2


def test_deadline_stops_polling(fake_clock: FakeClock) -> None:
    client = ScriptedClient((OperationState.IN_PROGRESS, 202))
    result = wait(client, fake_clock)
    assert result.state is OperationState.TIMED_OUT
    assert sum(fake_clock.slept) == pytest.approx(POLLING.deadline_s)
    assert client.polled < 20  # backoff keeps a 5-minute wait to a handful of polls


def test_cancel_stops_without_another_poll(fake_clock: FakeClock) -> None:
    cancel = threading.Event()
    cancel.set()
    client = ScriptedClient((OperationState.IN_PROGRESS, 202))
    with pytest.raises(PollingCancelled):
        wait(client, fake_clock, cancel=cancel)
    assert client.polled == 0


class Nudged:
    """A Nudge whose wake is set by the test (as EarlyPolls would)."""

    def __init__(self) -> None:
        self.wake = threading.Event()
        self.heard: list[bool | None] = []

    def polled_early(self, final: bool | None) -> None:
        self.heard.append(final)


class EarlyClient(ScriptedClient):
    """Raises BudgetBusy for early polls while `busy`; wakes the nudge at each sleep."""

    def __init__(self, nudge: Nudged, *answers: tuple[OperationState, int]) -> None:
        super().__init__(*answers)
        self.busy = False
        self.early: list[bool] = []

    def get_operation(self, operation_id: str) -> OperationStatus:
        from scheduler.kinsta import governor

        sent_early = governor._IF_IDLE.get()
        if sent_early and self.busy:
            self.busy = False
            raise BudgetBusy("no budget")
        self.early.append(sent_early)
        return super().get_operation(operation_id)


def test_an_early_poll_goes_if_idle_and_leaves_the_schedule_alone(fake_clock: FakeClock) -> None:
    nudge = Nudged()
    client = EarlyClient(nudge, (OperationState.IN_PROGRESS, 202), (OperationState.SUCCEEDED, 200))
    nudge.wake.set()  # budget would go unused: poll now, before the 40 s expected
    result = wait(client, fake_clock, expected_s=40, nudge=nudge)
    assert result.state is OperationState.SUCCEEDED and result.polls == 2
    assert client.early == [True, False] and nudge.heard == [False]
    assert fake_clock.slept == [40.0]  # the scheduled poll came when it would have


def test_an_early_poll_without_budget_is_not_sent_nor_counted(fake_clock: FakeClock) -> None:
    nudge = Nudged()
    client = EarlyClient(nudge, (OperationState.SUCCEEDED, 200))
    client.busy = True
    nudge.wake.set()
    result = wait(client, fake_clock, expected_s=40, nudge=nudge)
    assert result.polls == 1 and client.early == [False] and nudge.heard == [None]
    assert not nudge.wake.is_set()


def test_an_early_poll_that_finds_it_done_ends_the_wait(fake_clock: FakeClock) -> None:
    nudge = Nudged()
    client = EarlyClient(nudge, (OperationState.SUCCEEDED, 200))
    nudge.wake.set()
    result = wait(client, fake_clock, expected_s=40, nudge=nudge)
    assert result.polls == 1 and client.early == [True] and nudge.heard == [True]
    assert fake_clock.slept == []
