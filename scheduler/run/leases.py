"""Leases: who may change what, kept alive while a run executes.

- The run: its owner token fences every write, and its heartbeat tells this process when
  another one adopted it (then it stops), when it could not be written for long enough to
  look orphaned elsewhere (then no change is sent until a beat lands again), or when an
  operator asked for it to be cancelled, from any host (then it winds down: no new target
  starts, what is in flight finishes): `RunControl`, beaten by `Heartbeats`.
- The environment: mutating work holds the environment's lock (a lease in the history
  database) from the first mutating task of a target's pipeline to its end; a lease that lapsed
  (not renewed in time: a paused process, an outage) or was taken is lost, and the pipeline
  sends no further change to it: `EnvironmentLocks`, renewed by its keeper thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import structlog

from scheduler.clock import CancelScope, Clock
from scheduler.domain import RunStatus
from scheduler.errors import (
    EnvironmentBusy,
    EnvironmentLockLost,
    Interrupted,
    OwnershipLost,
    PollingCancelled,
    StoreError,
)
from scheduler.history import HistoryStore
from scheduler.run import policy

log = structlog.get_logger("scheduler.runner")

HEARTBEAT_S = 15.0
LOCK_LEASE_S = 120.0  # a crashed holder's environment lock lapses after this
LOCK_POLL_S = (0.05, 2.0)  # first and longest pause between tries for a busy environment
WATCH_S = 0.2  # how often one query asks which awaited environments are free
# A lease counts as lost a little before it lapses, so that a change sent at the last moment
# still arrives while the lease holds.
LEASE_SAFETY = 0.9
STALE_BEATS = 4  # a run is orphaned (anyone may adopt it) after this many missed heartbeats
# After this many beats without a successful write, a run sends no change until one lands: by
# STALE_BEATS another process may adopt it.
PAUSE_AFTER_BEATS = 2
GATE_CHECK_S = 0.2  # how often a paused run looks again whether it may go on

# Owner tokens of the runs this process executes or recovers: a run recorded as ours (this
# host and pid) whose token is not here belongs to an earlier process with our pid (a restarted
# container) and may be adopted at once.
_held_tokens: set[str] = set()
_held_lock = threading.Lock()


def holds(token: str | None) -> bool:
    with _held_lock:
        return token is not None and token in _held_tokens


@contextmanager
def holding(token: str) -> Iterator[str]:
    """Count `token` as this process's from before the row that carries it is written (a
    claim, an adoption) until the block ends: a recovery pass in between must not take a run
    this process is starting for a dead process's."""
    with _held_lock:
        _held_tokens.add(token)
    try:
        yield token
    finally:
        with _held_lock:
            _held_tokens.discard(token)


@dataclass(frozen=True)
class WindDown:
    """How a run that stopped starting work ends, once what was in flight finished and was
    recorded: with `status` (cancelled, halted), saying `reason`; tasks never started are
    recorded skipped with the same reason."""

    status: RunStatus
    reason: str


class RunControl:
    """One run's standing in this process: its owner token (fencing its writes), a scope that
    stops its waits (the process's shutdown, or the run's loss to another process), and whether
    it may send changes: only while the last heartbeat that landed was *begun* less than
    `pause_after_s` ago (by the monotonic clock), so that a write that fails, and one that
    hangs on a half-open connection, both hold changes back long before anyone may adopt.

    A run may also wind down (`wind_down`: a cancel, a circuit breaker): unlike `stop`, its
    waits go on, so operations in flight are followed to their end; only new work is refused."""

    def __init__(
        self,
        run_id: int,
        owner: str,
        stop: CancelScope,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        pause_after_s: float = float("inf"),
    ) -> None:
        self.run_id = run_id
        self.owner = owner
        self.stop = stop
        self.lost: str | None = None
        self._monotonic = monotonic
        self._pause_after_s = pause_after_s
        self._fresh_until = monotonic() + pause_after_s  # the claim (or adoption) just landed
        self._winding = threading.Lock()
        self.winding_down: WindDown | None = None

    def __enter__(self) -> RunControl:
        with _held_lock:
            _held_tokens.add(self.owner)
        return self

    def __exit__(self, *exc: object) -> None:
        with _held_lock:
            _held_tokens.discard(self.owner)

    def lose(self, why: str) -> None:
        self.lost = why
        self.stop.set()  # wakes anyone waiting at the gate: they must stop, not wait

    def wind_down(self, status: RunStatus, reason: str) -> bool:
        """Start no new target, nor a new task on a target in flight; what runs finishes and is
        recorded, and the run ends with `status` and `reason`. The first call decides; True
        when this one did."""
        with self._winding:
            if self.winding_down is not None:
                return False
            self.winding_down = WindDown(status, reason)
            return True

    def beat_landed(self, begun: float) -> None:
        """A heartbeat write begun at monotonic `begun` landed."""
        self._fresh_until = max(self._fresh_until, begun + self._pause_after_s)

    def writable(self) -> bool:
        return self._monotonic() < self._fresh_until

    def gate(self) -> None:
        """Before a change leaves: raise OwnershipLost once the run was adopted elsewhere,
        Interrupted when the process is stopping; wait while the heartbeat is not fresh."""
        while not self.writable() and not self.stop.wait(GATE_CHECK_S):
            pass
        if self.lost is not None:
            raise OwnershipLost(self.lost)
        if self.stop.is_set():
            raise Interrupted("the process is stopping: no further change is sent")


class Heartbeats:
    """Gives each run of a runner its RunControl, and beats the run's heartbeat while it
    executes (or is recovered)."""

    def __init__(
        self, store: HistoryStore, clock: Clock, cancel: CancelScope, heartbeat_s: float
    ) -> None:
        self._store = store
        self._clock = clock
        self._cancel = cancel
        self.heartbeat_s = heartbeat_s

    def control(self, run_id: int, owner: str) -> RunControl:
        """A run's control: stopped by the runner's cancel scope, and holding changes back
        once PAUSE_AFTER_BEATS heartbeats have not landed."""
        return RunControl(
            run_id,
            owner,
            self._cancel.child(),
            monotonic=self._clock.monotonic,
            pause_after_s=PAUSE_AFTER_BEATS * self.heartbeat_s,
        )

    @contextmanager
    def beating(self, control: RunControl) -> Iterator[None]:
        """Beat the run's heartbeat while the block runs, so recovery can tell a live run from
        an orphan. A beat refused (the run is no longer ours) stops the run; beats that fail
        for PAUSE_AFTER_BEATS hold back every change until one lands again; a beat that reads
        back a cancel winds the run down (noticed within one beat, from any host)."""
        done = threading.Event()
        thread = threading.Thread(
            target=self._beat, args=(control, done), name=f"heartbeat-{control.run_id}", daemon=True
        )
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def _beat(self, control: RunControl, done: threading.Event) -> None:
        clock = self._clock
        landed = clock.monotonic()
        while not done.wait(self.heartbeat_s):
            begun = clock.monotonic()
            try:
                beat = self._store.runs.heartbeat(control.run_id, clock.now(), owner=control.owner)
            except StoreError as exc:
                log.warning(
                    "run.heartbeat_failed",
                    run_id=control.run_id,
                    silent_s=round(clock.monotonic() - landed, 1),
                    error=str(exc),
                )
                continue
            if not beat.ours:
                control.lose(f"run {control.run_id} was adopted by another process")
                return
            landed = begun
            control.beat_landed(begun)
            if beat.cancel is not None:
                _cancelled(control, policy.cancelled_by(beat.cancel))


def _cancelled(control: RunControl, reason: str) -> None:
    if control.wind_down(RunStatus.CANCELLED, reason):
        log.warning("run.cancel_noticed", run_id=control.run_id, reason=reason)


class EnvironmentLocks:
    """Environment locks held by a runner: taken with patience, renewed by a keeper thread
    while held, released at the end of the pipeline. A holder whose lease lapsed (its renewal
    did not land in time) or was taken is told so by `check` before it sends a change."""

    def __init__(self, store: HistoryStore, clock: Clock, lease_s: float) -> None:
        self._store = store
        self._clock = clock
        self.lease_s = lease_s
        self._held: dict[str, float] = {}  # holder -> when its lease was last renewed (monotonic)
        self._lost: dict[str, str] = {}  # holder -> why it lost its lease
        self._mutex = threading.Lock()
        self._keeper: _Loop | None = None
        self._awaited: dict[str, set[threading.Event]] = {}  # environment -> its waiters' wakes
        self._watcher: _Loop | None = None

    def acquire(
        self,
        environment_id: str,
        holder: str,
        label: str,
        stop: threading.Event,
        *,
        deadline_s: float,
        take_from: str | None = None,
        give_up: Callable[[], bool] = lambda: False,
    ) -> None:
        """Block until held. Raises EnvironmentBusy after `deadline_s`, PollingCancelled when
        `stop` is set (the process is stopping, or the run was lost) or `give_up()` says so."""
        clock = self._clock
        started = clock.monotonic()
        pause, longest = LOCK_POLL_S
        was_busy = False
        while True:
            taken_at = clock.monotonic()
            busy_with = self._store.locks.try_lock_environment(
                environment_id, holder, label, clock.now(), self.lease_s, take_from=take_from
            )
            if busy_with is None:
                break
            was_busy = True
            waited = clock.monotonic() - started
            if waited + pause > deadline_s:
                raise EnvironmentBusy(
                    f"the environment stayed busy for {waited:.0f}s (held by {busy_with})"
                )
            with self._awaiting(environment_id, stop) as wake:
                clock.sleep(pause, wake)  # woken early when the environment looks free
            if stop.is_set() or give_up():
                raise PollingCancelled(0)
            pause = min(pause * 1.5, longest)
        self._held_from(holder, taken_at)
        if was_busy:
            waited = clock.monotonic() - started
            log.info("environment.lock_waited", holder=holder, waited_s=round(waited, 3))

    @contextmanager
    def _awaiting(self, environment_id: str, stop: threading.Event) -> Iterator[threading.Event]:
        """An event set when `environment_id` looks free (released here, or the watcher saw no
        lease on it) or when `stop` is set: one query per WATCH_S for every lock this process
        waits for, instead of one per waiter."""
        if not isinstance(stop, CancelScope):
            yield stop  # nothing can wake it early: it tries again after its pause
            return
        wake = stop.child()
        with self._mutex:
            self._awaited.setdefault(environment_id, set()).add(wake)
            if self._watcher is None:
                self._watcher = _Loop(self._watch, "environment-lock-watcher")
        try:
            yield wake
        finally:
            with self._mutex:
                waiting = self._awaited.get(environment_id, set())
                waiting.discard(wake)
                if not waiting:
                    self._awaited.pop(environment_id, None)

    def _watch(self, pause: threading.Event) -> None:
        """Wake the waiters of every awaited environment nobody holds; end when none waits."""
        while True:
            pause.wait(WATCH_S)
            with self._mutex:
                pause.clear()
                awaited = list(self._awaited)
                if not awaited:
                    self._watcher = None
                    return
            try:
                held = self._store.locks.held_environments(awaited, self._clock.now())
            except StoreError as exc:  # the waiters try again after their own pause
                log.warning("environment.lock_watch_failed", error=str(exc))
                continue
            self._wake(set(awaited) - held)

    def _wake(self, environment_ids: set[str]) -> None:
        with self._mutex:
            events = [e for env in environment_ids for e in self._awaited.get(env, ())]
        for event in events:
            event.set()

    def _held_from(self, holder: str, taken_at: float) -> None:
        """`holder` took its lease at monotonic `taken_at`: keep it renewed from now on."""
        with self._mutex:
            self._held[holder] = taken_at
            self._lost.pop(holder, None)
            if self._keeper is None:
                self._keeper = _Loop(self._keep, "environment-locks")

    def release(self, environment_id: str, holder: str) -> None:
        with self._mutex:
            self._held.pop(holder, None)
            self._lost.pop(holder, None)
        self._store.locks.unlock_environment(environment_id, holder)
        self._wake({environment_id})  # a waiter in this process tries at once

    def check(self, holder: str) -> None:
        """Raise EnvironmentLockLost unless `holder` still holds its lease, with time to spare."""
        with self._mutex:
            why = self._lost.get(holder)
            renewed = self._held.get(holder)
        if why is None and renewed is not None:
            age = self._clock.monotonic() - renewed
            if age > self.lease_s * LEASE_SAFETY:
                why = f"its lease was last renewed {age:.0f}s ago (lease {self.lease_s:g}s)"
        if why is not None:
            raise EnvironmentLockLost(f"lost the environment's lock: {why}")

    def settle(self, timeout_s: float = 5.0) -> None:
        """When nothing is held or awaited any more, end the keeper and the watcher now and
        wait for them, so that no query of theirs is still on its way once a run returns (a
        store closed after it, at shutdown or a test's end, is not used behind its back). A
        lock taken meanwhile keeps them going."""
        with self._mutex:
            loops = [] if self._busy() else [self._keeper, self._watcher]
        for loop in loops:
            if loop is not None:
                loop.end(timeout_s, still_needed=self._busy)

    def _busy(self) -> bool:
        return bool(self._held or self._awaited)

    def _keep(self, pause: threading.Event) -> None:
        """Renew every held lease a few times per lease; end when nothing is held."""
        while True:
            pause.wait(self.lease_s / 4)
            with self._mutex:
                pause.clear()
                holders = list(self._held)
                if not holders:
                    self._keeper = None
                    return
            asked_at = self._clock.monotonic()
            try:
                renewed = self._store.locks.renew_locks(holders, self._clock.now(), self.lease_s)
            except StoreError as exc:  # retried next time; `check` sees a lease grow old
                log.warning("environment.lock_renew_failed", error=str(exc))
                continue
            with self._mutex:
                for holder in holders:
                    if holder not in self._held:
                        continue  # released meanwhile
                    if holder in renewed:
                        self._held[holder] = asked_at
                    elif holder not in self._lost:
                        self._lost[holder] = "it lapsed or another holder took it"
                        log.error("environment.lock_lost", holder=holder)


class _Loop:
    """A background loop of EnvironmentLocks: `body(pause)` runs in a daemon thread, waiting
    on `pause` between rounds; `end` cuts the current wait short and waits for the thread."""

    def __init__(self, body: Callable[[threading.Event], None], name: str) -> None:
        self.pause = threading.Event()
        self.thread = threading.Thread(target=body, args=(self.pause,), name=name, daemon=True)
        self.thread.start()

    def end(self, timeout_s: float, still_needed: Callable[[], bool]) -> None:
        self.pause.set()
        deadline = time.monotonic() + timeout_s
        while self.thread.is_alive() and not still_needed() and time.monotonic() < deadline:
            self.thread.join(0.05)
