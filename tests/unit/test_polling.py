"""Operation polling decisions, with a scripted client and a fake clock (no sleeping)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from scheduler.domain import OperationState, Polling
from scheduler.kinsta.client import OperationStatus
from scheduler.kinsta.operations import PollingCancelled, next_delay_s, wait_for_operation
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


def test_failure_is_final(fake_clock: FakeClock) -> None:
    result = wait(ScriptedClient((OperationState.FAILED, 500)), fake_clock)
    assert result.state is OperationState.FAILED and result.http_status == 500 and result.polls == 1


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
