"""Following an operation: poll it to its end, record each status change on its history row,
and teach the duration learner how long such operations take (so that first polls come when
an operation is expected to be done).

A kind of operation nobody knows yet (no history, nothing seen) is learned by scouts: the first
SCOUTS operations of the kind poll from half the duration the action declares, with backoff,
which costs a few polls each; every other operation of the kind waits, sending nothing, until
the scouts have seen it done (then it polls when they say it should be) or no scout is left
(then it scouts itself). A cold night so pays for discovery a few times per kind, not once per
operation."""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime

from scheduler.clock import Clock
from scheduler.domain import OperationEvent, OperationState, Polling
from scheduler.durations import MIN_DURATION_SAMPLES, typical
from scheduler.errors import PollingCancelled
from scheduler.history import HistoryStore
from scheduler.kinsta.client import KinstaClient, OperationStatus
from scheduler.kinsta.operations import Nudge, wait_for_operation
from scheduler.run.early import EarlyPolls
from scheduler.run.leases import RunControl

EXPECTED_SHRINK = 0.98
OBSERVED_SAMPLES = 50  # durations seen in this process, per kind of operation
MIN_OBSERVED = MIN_DURATION_SAMPLES  # as many as history needs
SCOUTS = 3  # operations of an unknown kind polled from a prior with backoff, to learn it
SCOUT_PRIOR_SHARE = 0.5  # a scout first polls at this share of the action's declared duration
COLD_MARGIN = 1.25  # until MIN_OBSERVED are seen: the longest seen, times this
HOLD_CHECK_S = 0.5  # an operation waiting for its scouts looks at `stop` this often


class DurationLearner:
    """How long each kind of operation takes: learned from history when a run starts, and
    from what this process sees until history knows a kind. Shared by every run of a runner
    (every job of its company, possibly at once)."""

    def __init__(self) -> None:
        # Guards learned durations and scouts, held only briefly; told when either changes.
        self._changed = threading.Condition()
        self._expected: dict[str, float] = {}
        self._observed: dict[str, deque[float]] = {}
        self._from_history: set[str] = set()
        self._scouts: Counter[str] = Counter()  # scouts running or succeeded, per kind

    def learn(self, learned: Mapping[str, float]) -> None:
        """Take durations learned from history; merge, never replace (other jobs run too)."""
        with self._changed:
            self._expected = {**self._expected, **learned}
            self._from_history |= set(learned)
            self._changed.notify_all()

    def expected_s(self, kind: str) -> float:
        """When an operation of `kind` is expected to be done (0.0: nobody knows yet)."""
        with self._changed:
            return self._expected_s(kind)

    def _expected_s(self, kind: str) -> float:
        """Learned from history: a little under its typical duration (a high percentile of
        recent estimates), so the estimate settles instead of creeping up by the poll latency
        each run. Until history knows a kind, what this process has seen of it: the typical
        duration once MIN_OBSERVED were seen, before that the longest seen, with a margin."""
        if kind in self._expected:
            return EXPECTED_SHRINK * self._expected[kind]
        seen = self._observed.get(kind)
        return COLD_MARGIN * max(seen) if seen else 0.0

    def _settled_s(self, kind: str) -> float | None:
        """The estimate an operation may poll by without scouting: known from history, or
        from at least SCOUTS operations seen. None: not yet."""
        if kind in self._expected or len(self._observed.get(kind, ())) >= SCOUTS:
            return self._expected_s(kind)
        return None

    def observe(self, kind: str, seconds: float) -> None:
        """Learn from an operation that just succeeded (the same estimate history makes)."""
        if seconds <= 0:
            return
        with self._changed:
            seen = self._observed.setdefault(kind, deque(maxlen=OBSERVED_SAMPLES))
            seen.append(seconds)
            if len(seen) >= MIN_OBSERVED and kind not in self._from_history:
                self._expected[kind] = typical(seen)
            self._changed.notify_all()

    @contextmanager
    def turn(self, kind: str, stop: threading.Event, prior_s: float = 0.0) -> Iterator[Turn]:
        """An operation of `kind` about to be followed: its Turn says when it is expected to
        be done (`prior_s` for a scout: its first poll). While its kind is unsettled and
        SCOUTS others scout (or scouted), it waits for them; PollingCancelled when `stop` is
        set meanwhile. A scout whose operation did not succeed frees its place."""
        with self._changed:
            while (settled := self._settled_s(kind)) is None and self._scouts[kind] >= SCOUTS:
                self._changed.wait(HOLD_CHECK_S)
                if stop.is_set():
                    raise PollingCancelled(0)
            turn = Turn(prior_s if settled is None else settled, scout=settled is None)
            self._scouts[kind] += turn.scout
        try:
            yield turn
        finally:
            with self._changed:
                # A scout that learned nothing (its operation failed, or no duration could be
                # told) frees its place, or the operations waiting for it would wait forever.
                if turn.scout and not (turn.succeeded and self._observed.get(kind)):
                    self._scouts[kind] -= 1
                    self._changed.notify_all()


@dataclass
class Turn:
    """How an operation is followed: when it is expected to be done, whether it scouts; the
    follower says whether it succeeded (a scout that learned nothing frees its place)."""

    expected_s: float
    scout: bool
    succeeded: bool = False


class Follower:
    """Follows operations to their end, recording them, feeding the learner."""

    def __init__(
        self,
        client: KinstaClient,
        store: HistoryStore,
        clock: Clock,
        polling: Polling,
        learner: DurationLearner,
        *,
        priors_s: Mapping[str, float] | None = None,
        early: EarlyPolls | None = None,
    ) -> None:
        self._client = client
        self._store = store
        self._clock = clock
        self._polling = polling
        self._learner = learner
        # Per kind, when a scout polls first (then backs off): a share of what the action
        # declares, so that discovering a backup costs a few polls, not one every few seconds.
        self._priors_s = priors_s or {}
        self._early = early  # polls early when budget would go unused (None: never)

    def track(
        self, task_id: int, operation_id: str, kind: str, control: RunControl
    ) -> tuple[OperationState, str]:
        """Record an operation a task started, then follow it (first poll when `kind` is
        expected to be done)."""
        clock, accepted = self._clock, self._clock.now()
        row_id = self._store.tasks.start_operation(
            task_id, operation_id, kind, accepted, owner=control.owner
        )
        since = clock.monotonic()
        with self._learner.turn(kind, control.stop, self._priors_s.get(kind, 0.0)) as turn:
            # The estimate counts from acceptance: time spent waiting for scouts is part of it.
            waited_s = clock.monotonic() - since
            due_s = max(0.0, turn.expected_s - waited_s)
            with ExitStack() as stack:
                nudge = None
                if self._early is not None:
                    wake = control.stop.child()
                    nudge = stack.enter_context(self._early.waiting(kind, since, wake))
                state, message = self.follow(
                    row_id, operation_id, due_s, kind, control=control, since=accepted, nudge=nudge
                )
            turn.succeeded = state is OperationState.SUCCEEDED
            return state, message

    def follow(
        self,
        row_id: int,
        operation_id: str,
        expected_s: float,
        kind: str | None = None,
        *,
        control: RunControl,
        late: bool = False,
        since: datetime | None = None,
        nudge: Nudge | None = None,
    ) -> tuple[OperationState, str]:
        """Poll an operation to its end, recording each status change on its history row; a
        success of `kind` teaches the learner how long such operations take (from `since`, its
        acceptance), unless followed `late` (by recovery: nobody saw when it really ended)."""
        clock = self._clock
        started = since or clock.now()
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
            nudge=nudge,
        )
        if result.state is OperationState.TIMED_OUT:
            event = OperationEvent(
                clock.now(), result.state, result.http_status, result.message, late=late
            )
            self._store.tasks.operation_event(row_id, event, result.polls, owner=control.owner)
        return result.state, result.message
