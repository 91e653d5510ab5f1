"""Following an operation: poll it to its end, record each status change on its history row,
and teach the duration learner how long such operations take (so that first polls come when
an operation is expected to be done)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping

from scheduler.clock import Clock
from scheduler.domain import OperationEvent, OperationState, Polling
from scheduler.durations import MIN_DURATION_SAMPLES, p90
from scheduler.history import HistoryStore
from scheduler.kinsta.client import KinstaClient, OperationStatus
from scheduler.kinsta.operations import wait_for_operation
from scheduler.run.leases import RunControl

EXPECTED_SHRINK = 0.98
OBSERVED_SAMPLES = 50  # durations seen in this process, per kind of operation
MIN_OBSERVED = MIN_DURATION_SAMPLES  # as many as history needs


class DurationLearner:
    """How long each kind of operation takes: learned from history when a run starts, and
    from what this process sees until history knows a kind. Shared by every run of a runner
    (every job of its company, possibly at once)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()  # guards learned durations, held only briefly
        self._expected: dict[str, float] = {}
        self._observed: dict[str, deque[float]] = {}
        self._from_history: set[str] = set()

    def learn(self, learned: Mapping[str, float]) -> None:
        """Take durations learned from history; merge, never replace (other jobs run too)."""
        with self._mutex:
            self._expected = {**self._expected, **learned}
            self._from_history |= set(learned)

    def expected_s(self, kind: str) -> float:
        """When an operation of `kind` is expected to be done, learned from history: a little
        under the recent 90th percentile, so the estimate settles instead of creeping up by the
        poll latency each run. Until history knows a kind, what this process has seen of it
        (five operations are enough); before that, polls start at `polling.first_poll_s`."""
        with self._mutex:
            return EXPECTED_SHRINK * self._expected.get(kind, 0.0)

    def observe(self, kind: str, seconds: float) -> None:
        """Learn from an operation that just succeeded (the same estimate history makes)."""
        if seconds <= 0:
            return
        with self._mutex:
            seen = self._observed.setdefault(kind, deque(maxlen=OBSERVED_SAMPLES))
            seen.append(seconds)
            if len(seen) >= MIN_OBSERVED and kind not in self._from_history:
                self._expected[kind] = p90(seen)


class Follower:
    """Follows operations to their end, recording them, feeding the learner."""

    def __init__(
        self,
        client: KinstaClient,
        store: HistoryStore,
        clock: Clock,
        polling: Polling,
        learner: DurationLearner,
    ) -> None:
        self._client = client
        self._store = store
        self._clock = clock
        self._polling = polling
        self._learner = learner

    def track(
        self, task_id: int, operation_id: str, kind: str, control: RunControl
    ) -> tuple[OperationState, str]:
        """Record an operation a task started, then follow it (first poll when `kind` is
        expected to be done)."""
        row_id = self._store.tasks.start_operation(
            task_id, operation_id, kind, self._clock.now(), owner=control.owner
        )
        return self.follow(
            row_id, operation_id, self._learner.expected_s(kind), kind, control=control
        )

    def follow(
        self,
        row_id: int,
        operation_id: str,
        expected_s: float,
        kind: str | None = None,
        *,
        control: RunControl,
        late: bool = False,
    ) -> tuple[OperationState, str]:
        """Poll an operation to its end, recording each status change on its history row; a
        success of `kind` also teaches the learner how long such operations take, unless the
        operation is followed `late` (by recovery: nobody saw when it really ended)."""
        clock = self._clock
        started = clock.now()
        running_s = 0.0

        def seen(status: OperationStatus, polls: int) -> None:
            nonlocal running_s
            # A poll's answer describes the moment it was sent, after any wait for the governor;
            # the wait is kept so that learned durations can discount late sightings.
            at = status.sent_at or clock.now()
            event = OperationEvent(
                at, status.state, status.http_status, status.message, status.waited_s, late
            )
            self._store.tasks.operation_event(row_id, event, polls, owner=control.owner)
            elapsed = (at - started).total_seconds()
            if status.state is OperationState.IN_PROGRESS:
                running_s = max(running_s, elapsed)
            elif status.state is OperationState.SUCCEEDED and kind is not None and not late:
                self._learner.observe(kind, max(running_s, elapsed - status.waited_s))

        result = wait_for_operation(
            self._client,
            operation_id,
            self._polling,
            clock,
            expected_s=expected_s,
            on_status=seen,
            cancel=control.stop,
        )
        if result.state is OperationState.TIMED_OUT:
            event = OperationEvent(
                clock.now(), result.state, result.http_status, result.message, late=late
            )
            self._store.tasks.operation_event(row_id, event, result.polls, owner=control.owner)
        return result.state, result.message
