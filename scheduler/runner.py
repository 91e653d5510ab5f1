"""Executes one run: resolve targets, run each target's actions in order (targets concurrently,
up to the job's concurrency), record every task and operation, end with one summary log line.

Mutating work holds the environment's lock (a lease in the history database) from the first
mutating task of a target's pipeline to its end, so two jobs, or two processes, never change the
same environment at once: the second waits. Kinsta serialises such operations anyway, and a
pipeline such as backup -> update -> clear cache is meant to run as a unit.

Who may change what is checked at the last moment before each change leaves (kinsta/guard.py):
- the run: every write of a running run is fenced by its owner token, and its heartbeat tells
  this process when another one adopted it (then it stops) or when it could not be written for
  long enough to look orphaned elsewhere (then no change is sent until a beat lands again);
- the environment: a lease that lapsed (not renewed in time: a paused process, an outage) or was
  taken is lost, and the pipeline sends no further change to it."""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime

import structlog

from scheduler.actions import Action, ActionDef, ActionResult, Repeat, Scope, registry, uncertain
from scheduler.actions.specs import company_target_name
from scheduler.clock import CancelScope, Clock
from scheduler.domain import (
    InventorySnapshot,
    Job,
    OperationEvent,
    OperationState,
    Polling,
    Run,
    RunStatus,
    RunTrigger,
    Target,
    TaskStatus,
)
from scheduler.errors import (
    EnvironmentLockLost,
    Interrupted,
    KinstaAPIError,
    KinstaError,
    OwnershipLost,
    SlotNotClaimedError,
    StoreError,
    TransportError,
)
from scheduler.history import HistoryStore, PlannedTask, new_owner_token
from scheduler.kinsta.client import KinstaClient, OperationAccepted, OperationStatus
from scheduler.kinsta.guard import guarded
from scheduler.kinsta.operations import PollingCancelled, next_delay_s, wait_for_operation
from scheduler.kinsta.probe import SiteProbe
from scheduler.targets import select_targets

log = structlog.get_logger("scheduler.runner")

SKIPPED_AFTER_FAILURE = "not run: an earlier action on this target failed"
EXPECTED_SHRINK = 0.98
STOPPING = "stopped early: the process was stopping"
NOT_STARTED_STOPPING = "not started: the process was stopping"
NOT_STARTED_TIMEOUT = "not started: the run reached its timeout"
HEARTBEAT_S = 15.0
IDEMPOTENT_ATTEMPTS = 4  # attempts in all of an action that may be repeated
OBSERVED_SAMPLES = 50  # durations seen in this process, per kind of operation
MIN_OBSERVED = 5
LOCK_LEASE_S = 120.0  # a crashed holder's environment lock lapses after this
LOCK_POLL_S = (0.05, 2.0)  # first and longest pause between tries for a busy environment
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


class RunControl:
    """One run's standing in this process: its owner token (fencing its writes), a scope that
    stops its waits (the process's shutdown, or the run's loss to another process), and whether
    it may send changes: only while the last heartbeat that landed was *begun* less than
    `pause_after_s` ago (by the monotonic clock), so that a write that fails, and one that
    hangs on a half-open connection, both hold changes back long before anyone may adopt."""

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


@dataclass(frozen=True)
class Progress:
    """What trigger's progress display is told: a target's pipeline ended."""

    targets_total: int
    targets_done: int
    target: str
    failed: bool


class _Interrupted(Exception):
    """The process is stopping: leave the task as it is (running, with its operation id)."""


@dataclass(frozen=True)
class _TaskRef:
    task_id: int
    run_id: int
    target: Target
    action: str
    index: int  # position of the action in the job
    holder: str  # who holds the environment's lock for this pipeline
    label: str  # job, run and target, for "busy" messages
    control: RunControl
    holders: list[str]  # the leases the target's pipeline holds (one list per pipeline)


class EnvironmentBusy(Exception):
    """The environment stayed locked by someone else until the deadline."""


class _Locks:
    """Environment locks held by this runner: taken with patience, renewed by a keeper thread
    while held, released at the end of the pipeline. A holder whose lease lapsed (its renewal
    did not land in time) or was taken is told so by `check` before it sends a change."""

    def __init__(self, store: HistoryStore, clock: Clock, lease_s: float) -> None:
        self._store = store
        self._clock = clock
        self.lease_s = lease_s
        self._held: dict[str, float] = {}  # holder -> when its lease was last renewed (monotonic)
        self._lost: dict[str, str] = {}  # holder -> why it lost its lease
        self._mutex = threading.Lock()
        self._keeper: threading.Thread | None = None

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
            busy_with = self._store.try_lock_environment(
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
            if clock.sleep(pause, stop) or give_up():
                raise PollingCancelled(0)
            pause = min(pause * 1.5, longest)
        with self._mutex:
            self._held[holder] = taken_at
            self._lost.pop(holder, None)
            if self._keeper is None:
                self._keeper = threading.Thread(
                    target=self._keep, name="environment-locks", daemon=True
                )
                self._keeper.start()
        if was_busy:
            waited = clock.monotonic() - started
            log.info("environment.lock_waited", holder=holder, waited_s=round(waited, 3))

    def release(self, environment_id: str, holder: str) -> None:
        with self._mutex:
            self._held.pop(holder, None)
            self._lost.pop(holder, None)
        self._store.unlock_environment(environment_id, holder)

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

    def _keep(self) -> None:
        """Renew every held lease a few times per lease; end when nothing is held."""
        pause = threading.Event()
        while True:
            pause.wait(self.lease_s / 4)
            with self._mutex:
                holders = list(self._held)
                if not holders:
                    self._keeper = None
                    return
            asked_at = self._clock.monotonic()
            try:
                renewed = self._store.renew_locks(holders, self._clock.now(), self.lease_s)
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


class _Context:
    """ActionContext for one task: polls operations and records their timeline."""

    def __init__(self, runner: Runner, task: _TaskRef) -> None:
        self._runner = runner
        self._task = task

    @property
    def client(self) -> KinstaClient:
        return self._runner.client

    @property
    def probe(self) -> SiteProbe:
        return self._runner.probe

    @property
    def company_id(self) -> str:
        return self._runner.company_id

    def now(self) -> datetime:
        return self._runner.clock.now()

    def note_available(
        self, kind: str, offered: Iterable[tuple[str, str]]
    ) -> Mapping[tuple[str, str], datetime]:
        return self._runner.store.note_available(kind, offered, self.now())

    def record_inventory(self, snapshot: InventorySnapshot) -> None:
        self._runner.store.record_inventory(
            self._task.task_id, self._task.run_id, self._task.target, snapshot
        )

    @contextmanager
    def exclusive(self, environment_id: str, label: str) -> Iterator[None]:
        runner = self._runner
        holder = f"{self._task.holder}+{environment_id}"
        runner.locks.acquire(
            environment_id,
            holder,
            f"{self._task.label} -> {label}",
            self._task.control.stop,
            deadline_s=runner.polling.deadline_s,
        )
        self._task.holders.append(holder)
        try:
            yield
        finally:
            self._task.holders.remove(holder)
            runner.locks.release(environment_id, holder)

    def notify_user_id(self) -> str:
        return self._runner.notify_user_id()

    def wait(
        self, accepted: OperationAccepted, kind: str | None = None
    ) -> tuple[OperationState, str]:
        runner, control = self._runner, self._task.control
        kind = kind or self._task.action
        row_id = runner.store.start_operation(
            self._task.task_id, accepted.operation_id, kind, runner.clock.now(), owner=control.owner
        )
        return runner.follow(
            row_id, accepted.operation_id, runner.expected_s(kind), kind, control=control
        )

    def wait_until(self, check: Callable[[], bool]) -> bool:
        runner, polling = self._runner, self._runner.polling
        # At least twice as long as the task's action typically takes (learned), if longer.
        typical = runner.expected_s(self._task.action)
        window = min(polling.deadline_s, max(polling.read_back_window_s, 2 * typical))
        started = runner.clock.monotonic()
        for attempt in itertools.count():
            if check():
                return True
            delay = next_delay_s(attempt, 0.0, polling)
            if runner.clock.monotonic() - started + delay > window:
                return False
            if runner.clock.sleep(delay, self._task.control.stop):
                raise PollingCancelled(attempt)
        return False  # pragma: no cover - count() never ends


class Runner:
    def __init__(
        self,
        client: KinstaClient,
        store: HistoryStore,
        clock: Clock,
        polling: Polling,
        company_id: str,
        *,
        started_by: str,
        cancel: CancelScope | None = None,
        probe: SiteProbe | None = None,
        lock_lease_s: float = LOCK_LEASE_S,
        draining: threading.Event | None = None,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self.client = client
        self.store = store
        self.clock = clock
        self.polling = polling
        self.company_id = company_id
        self.started_by = started_by
        self.cancel = cancel or CancelScope()
        # Set when the process is stopping: no new task starts; running ones go on until
        # `cancel` tells them to stop polling.
        self.draining = draining or threading.Event()
        self.heartbeat_s = heartbeat_s
        self.retry_pause_s = 0.5  # the base pause before trying an action again
        self.probe = probe or SiteProbe()
        self.locks = _Locks(store, clock, lock_lease_s)
        self.on_progress: Callable[[Progress], None] | None = None
        self._actions = registry()
        self._expected: dict[str, float] = {}
        self._notify_user: str | None = None
        self._users_lock = threading.Lock()  # held across the request that finds a user
        self._mutex = threading.Lock()  # guards learned durations, held only briefly
        self._observed: dict[str, deque[float]] = {}
        self._from_history: set[str] = set()

    def notify_user_id(self) -> str:
        """The first user of the company (endpoints such as restore must name one to notify)."""
        with self._users_lock:
            if self._notify_user is None:
                users = self.client.list_company_users(self.company_id)
                if not users:
                    raise KinstaError("the company has no users to notify")
                self._notify_user = users[0].id
            return self._notify_user

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
        success of `kind` also teaches this run how long such operations take, unless the
        operation is followed `late` (by recovery: nobody saw when it really ended)."""
        clock = self.clock
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
            self.store.operation_event(row_id, event, polls, owner=control.owner)
            elapsed = (at - started).total_seconds()
            if status.state is OperationState.IN_PROGRESS:
                running_s = max(running_s, elapsed)
            elif status.state is OperationState.SUCCEEDED and kind is not None and not late:
                self._observe(kind, max(running_s, elapsed - status.waited_s))

        result = wait_for_operation(
            self.client,
            operation_id,
            self.polling,
            clock,
            expected_s=expected_s,
            on_status=seen,
            cancel=control.stop,
        )
        if result.state is OperationState.TIMED_OUT:
            event = OperationEvent(
                clock.now(), result.state, result.http_status, result.message, late=late
            )
            self.store.operation_event(row_id, event, result.polls, owner=control.owner)
        return result.state, result.message

    def expected_s(self, kind: str) -> float:
        """When an operation of `kind` is expected to be done, learned from history: a little
        under the recent 90th percentile, so the estimate settles instead of creeping up by the
        poll latency each run. Until history knows a kind, what this process has seen of it
        (five operations are enough); before that, polls start at `polling.first_poll_s`."""
        with self._mutex:
            return EXPECTED_SHRINK * self._expected.get(kind, 0.0)

    def _observe(self, kind: str, seconds: float) -> None:
        """Learn from an operation that just succeeded (the same estimate history makes)."""
        if seconds <= 0:
            return
        with self._mutex:
            seen = self._observed.setdefault(kind, deque(maxlen=OBSERVED_SAMPLES))
            seen.append(seconds)
            if len(seen) >= MIN_OBSERVED and kind not in self._from_history:
                ordered = sorted(seen)
                self._expected[kind] = ordered[int(0.9 * (len(ordered) - 1))]

    def run(
        self,
        job: Job,
        trigger: RunTrigger,
        scheduled_for: datetime,
        config_revision: str | None = None,
    ) -> Run | None:
        """Claim (job, slot) and execute it. None when the slot was already claimed."""
        with holding(new_owner_token()) as token:
            try:
                run = self.store.claim_run(
                    job.id,
                    trigger,
                    scheduled_for,
                    self.clock.now(),
                    started_by=self.started_by,
                    config_revision=config_revision,
                    owner_token=token,
                )
            except StoreError as exc:
                raise SlotNotClaimedError(str(exc), transient=exc.transient) from exc
            if run is None:
                log.info(
                    "run.already_claimed", job_id=job.id, scheduled_for=scheduled_for.isoformat()
                )
                return None
            return self.execute(job, run)

    def targets(self, job: Job) -> list[Target]:
        """The environments the job acts on now, from the live site list."""
        if all(self._actions[a.name].scope is Scope.COMPANY for a in job.actions):
            # Acts on the company: one pseudo-target named after what it creates.
            name = company_target_name(job.actions[0], job.id)
            return [Target(site_id="", site_name=name, environment_id="", environment_name="-")]
        sites = self.client.list_sites(self.company_id, include_environments=True)
        return select_targets(sites, job.targets)

    def execute(self, job: Job, run: Run) -> Run:
        """Execute a claimed run, beating its heartbeat from start to finish (resolving the
        targets may wait for rate budget: a live run must never look orphaned meanwhile)."""
        assert run.owner_token is not None, "a claimed run has an owner token"
        with self.control(run.run_id, run.owner_token) as control:
            try:
                with self.beating(control):
                    return self._execute(job, run, control)
            except OwnershipLost as exc:
                return self._lost(run, str(exc))

    def _lost(self, run: Run, why: str) -> Run:
        """Another process adopted the run: leave it to that one, writing nothing more."""
        log.error("run.adopted_elsewhere", run_id=run.run_id, job_id=run.job_id, reason=why)
        return self.store.get_run(run.run_id) or run

    def _execute(self, job: Job, run: Run, control: RunControl) -> Run:
        try:
            targets = self.targets(job)
        except Interrupted:
            return self._finish(
                run, RunStatus.INTERRUPTED, f"{STOPPING}: before its targets were resolved", control
            )
        except KinstaError as exc:
            return self._finish(run, RunStatus.FAILED, f"could not resolve targets: {exc}", control)
        if not targets:
            return self._finish(
                run, RunStatus.SKIPPED, "no environment matched the job's targets", control
            )
        # The runner serves every job of its company, possibly at once: merge, never replace.
        learned = self.store.typical_durations([a.name for a in job.actions])
        with self._mutex:
            self._expected = {**self._expected, **learned}
            self._from_history |= set(learned)
        planned = [PlannedTask(t, a.name) for t in targets for a in job.actions]
        ids = self.store.plan_tasks(run.run_id, planned)
        leases: list[list[str]] = [[] for _ in targets]  # one list per target's pipeline
        refs = [
            _TaskRef(
                task_id,
                run.run_id,
                p.target,
                p.action,
                i % len(job.actions),
                holder=f"{self.started_by}/run-{run.run_id}/{p.target.environment_id}",
                label=f"job {job.id}, run {run.run_id}, {p.target.key}",
                control=control,
                holders=leases[i // len(job.actions)],
            )
            for i, (task_id, p) in enumerate(zip(ids, planned, strict=True))
        ]
        per_target = [refs[i : i + len(job.actions)] for i in range(0, len(refs), len(job.actions))]
        done = itertools.count(1)
        deadline = self.clock.monotonic() + job.timeout_s

        def pipeline(chain: Sequence[_TaskRef]) -> int:
            failed = self._pipeline(job, chain, deadline)
            if self.on_progress is not None:
                self.on_progress(
                    Progress(len(per_target), next(done), chain[0].target.key, failed > 0)
                )
            return failed

        with ThreadPoolExecutor(
            max_workers=job.concurrency, thread_name_prefix=f"run-{run.run_id}"
        ) as pool:
            outcomes = list(pool.map(pipeline, per_target))
        if control.lost is not None:
            raise OwnershipLost(control.lost)
        return self._settle(job, run, control, failed=sum(outcomes), deadline=deadline)

    def _settle(
        self, job: Job, run: Run, control: RunControl, *, failed: int, deadline: float
    ) -> Run:
        """The run's final status once every pipeline ended."""
        now, owner = self.clock.now(), control.owner
        # A task still `running` was cut short (the process is stopping, or its client closed):
        # its operation is left at Kinsta for recovery to follow, and the run is interrupted.
        running = sum(1 for t in self.store.run_tasks(run.run_id) if t.status is TaskStatus.RUNNING)
        if control.stop.is_set() or self.draining.is_set() or running:
            left = self.store.finish_pending(
                run.run_id, TaskStatus.INTERRUPTED, now, NOT_STARTED_STOPPING, owner=owner
            )
            if left or running:
                parts = [f"{left} task(s) not started"] if left else []
                if running:
                    parts.append(
                        f"{running} operation(s) left running at Kinsta, for recovery to follow"
                    )
                return self._finish(
                    run, RunStatus.INTERRUPTED, f"{STOPPING}: {', '.join(parts)}", control
                )
        if self.clock.monotonic() > deadline:
            # Past its timeout the run fails, whether or not every task had started by then.
            left = self.store.finish_pending(
                run.run_id, TaskStatus.SKIPPED, now, NOT_STARTED_TIMEOUT, owner=owner
            )
            details = [f"{left} task(s) not started"] if left else []
            details += [f"{failed} failed"] if failed else []
            return self._finish(
                run,
                RunStatus.FAILED,
                f"timed out after {job.timeout_s:g}s"
                + (f": {', '.join(details)}" if details else ""),
                control,
            )
        status = RunStatus.FAILED if failed else RunStatus.SUCCEEDED
        return self._finish(run, status, f"{failed} task(s) failed" if failed else None, control)

    def control(self, run_id: int, owner: str) -> RunControl:
        """A run's control in this runner: stopped by its cancel scope, and holding changes
        back once PAUSE_AFTER_BEATS heartbeats have not landed."""
        return RunControl(
            run_id,
            owner,
            self.cancel.child(),
            monotonic=self.clock.monotonic,
            pause_after_s=PAUSE_AFTER_BEATS * self.heartbeat_s,
        )

    @contextmanager
    def beating(self, control: RunControl) -> Iterator[None]:
        """Beat the run's heartbeat while the block runs, so recovery can tell a live run from
        an orphan. A beat refused (the run is no longer ours) stops the run; beats that fail
        for PAUSE_AFTER_BEATS hold back every change until one lands again."""
        done = threading.Event()

        def beat() -> None:
            landed = self.clock.monotonic()
            while not done.wait(self.heartbeat_s):
                begun = self.clock.monotonic()
                try:
                    ours = self.store.heartbeat(
                        control.run_id, self.clock.now(), owner=control.owner
                    )
                except StoreError as exc:
                    log.warning(
                        "run.heartbeat_failed",
                        run_id=control.run_id,
                        silent_s=round(self.clock.monotonic() - landed, 1),
                        error=str(exc),
                    )
                    continue
                if not ours:
                    control.lose(f"run {control.run_id} was adopted by another process")
                    return
                landed = begun
                control.beat_landed(begun)

        thread = threading.Thread(target=beat, name=f"heartbeat-{control.run_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def _pipeline(self, job: Job, chain: Sequence[_TaskRef], deadline: float) -> int:
        """Run one target's actions in order; return how many failed. The environment is locked
        from the first mutating action to the end of the pipeline. No task starts once the
        process is stopping or the run passed its deadline: those stay pending, and the run
        settles them. Every change it sends is checked first (see the module's docstring)."""
        control, holders = chain[0].control, chain[0].holders

        def guard(_method: str, _path: str) -> None:
            control.gate()
            for holder in list(holders):
                self.locks.check(holder)

        with guarded(guard):
            return self._steps(job, chain, deadline)

    def _steps(self, job: Job, chain: Sequence[_TaskRef], deadline: float) -> int:
        failed = 0
        locked: _TaskRef | None = None
        control = chain[0].control
        try:
            for ref in chain:
                if control.stop.is_set() or self.draining.is_set():
                    break
                if self.clock.monotonic() > deadline:
                    break
                if failed and job.on_failure == "stop":
                    now = self.clock.now()
                    self.store.finish_task(
                        ref.task_id,
                        TaskStatus.SKIPPED,
                        now,
                        SKIPPED_AFTER_FAILURE,
                        owner=control.owner,
                    )
                    continue
                definition = self._actions[ref.action]
                if locked is None and definition.mutating and ref.target.environment_id:
                    try:
                        self._lock(ref)
                    except PollingCancelled:
                        break
                    except EnvironmentBusy as exc:
                        now = self.clock.now()
                        self.store.start_task(ref.task_id, now, owner=control.owner)
                        self.store.finish_task(
                            ref.task_id, TaskStatus.FAILED, now, str(exc), owner=control.owner
                        )
                        failed += 1
                        continue
                    locked = ref
                    ref.holders.append(ref.holder)
                try:
                    result = self._task(job, ref)
                except _Interrupted:
                    break
                failed += result.status.is_failure
        except OwnershipLost as exc:
            control.lose(str(exc))
        finally:
            if locked is not None:
                locked.holders.remove(locked.holder)
                self.locks.release(locked.target.environment_id, locked.holder)
        return failed

    def _lock(self, ref: _TaskRef) -> None:
        """Take the target's lock. Waiting stops (PollingCancelled) when the run must stop, and
        when the process drains (shutdown's first phase lets started tasks finish; one still
        waiting for its environment has not started)."""
        self.locks.acquire(
            ref.target.environment_id,
            ref.holder,
            ref.label,
            ref.control.stop,
            deadline_s=self.polling.deadline_s,
            give_up=self.draining.is_set,
        )

    def _attempt(self, job: Job, ref: _TaskRef, action: Action) -> ActionResult:
        """Run an action (or its reconcile step); every error becomes the task's result, except
        an uncertain change request (KinstaError.uncertain), which is the caller's to decide."""
        try:
            return action(_Context(self, ref), ref.target, job.actions[ref.index].options)
        except OwnershipLost:
            raise  # the run is another process's now: the pipeline stops, writing nothing
        except Interrupted as exc:  # a poll, a wait for rate budget or a backoff cut short
            log.warning("task.interrupted", job_id=job.id, action=ref.action, target=ref.target.key)
            raise _Interrupted from exc
        except KinstaError as exc:
            if exc.uncertain:
                raise  # the caller decides: repeat, reconcile, or report the outcome as uncertain
            if isinstance(exc, TransportError):
                return ActionResult(TaskStatus.FAILED, str(exc), transient=True)
            if isinstance(exc, KinstaAPIError):
                return ActionResult(TaskStatus.FAILED, str(exc), transient=exc.status >= 500)
            return ActionResult(TaskStatus.FAILED, str(exc))
        except (EnvironmentBusy, EnvironmentLockLost) as exc:
            return ActionResult(TaskStatus.FAILED, str(exc))
        except StoreError:
            raise
        except Exception as exc:  # an action's bug must fail its task, not the whole run
            log.exception("task.crashed", job_id=job.id, action=ref.action, target=ref.target.key)
            return ActionResult(TaskStatus.FAILED, f"internal error: {type(exc).__name__}: {exc}")

    def _run_action(self, job: Job, ref: _TaskRef) -> ActionResult:
        """Run the action as its `repeat` allows. A change request that may have reached Kinsta
        is never sent again (unless repeating it is harmless); actions read the state back where
        they can (actions.change), and what is left uncertain fails saying so."""
        definition = self._actions[ref.action]
        try:
            return self._run_repeating(job, ref, definition)
        except KinstaError as exc:
            return uncertain(exc, "its effect cannot be read back")

    def _run_repeating(self, job: Job, ref: _TaskRef, definition: ActionDef) -> ActionResult:
        """Try again after a transient failure, as far as the action's `repeat` allows. Raises
        the KinstaError of an uncertain change request unless repeating it is harmless."""
        attempts = 1 if definition.repeat is Repeat.NEVER else IDEMPOTENT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                result = self._attempt(job, ref, definition.invoke)
            except KinstaError as exc:
                if definition.repeat is not Repeat.ALWAYS:
                    raise
                result = ActionResult(TaskStatus.FAILED, str(exc), transient=True)
            if not result.transient or attempt == attempts:
                break
            log.warning(
                "task.retrying",
                job_id=job.id,
                action=ref.action,
                target=ref.target.key,
                attempt=attempt,
                error=result.message,
            )
            self.store.count_attempt(ref.task_id)
            if self.clock.sleep(min(2.0**attempt, 10.0) * self.retry_pause_s, ref.control.stop):
                raise _Interrupted
        if result.status is TaskStatus.FAILED and attempt > 1:
            return replace(result, message=f"{result.message} (after {attempt} attempts)")
        return result

    def _task(self, job: Job, ref: _TaskRef) -> ActionResult:
        started = self.clock.monotonic()
        owner = ref.control.owner
        self.store.start_task(ref.task_id, self.clock.now(), owner=owner)
        result = self._run_action(job, ref)
        self.store.finish_task(
            ref.task_id,
            result.status,
            self.clock.now(),
            result.message,
            result=dict(result.details) or None,
            versions_before=result.versions_before,
            versions_after=result.versions_after,
            owner=owner,
        )
        log.info(
            "task.finished",
            job_id=job.id,
            site=ref.target.site_name,
            environment=ref.target.environment_name,
            action=ref.action,
            status=result.status.value,
            message=result.message,
            duration_s=round(self.clock.monotonic() - started, 3),
        )
        return result

    def _finish(self, run: Run, status: RunStatus, error: str | None, control: RunControl) -> Run:
        final = self.store.finish_run(
            run.run_id, status, self.clock.now(), error, owner=control.owner
        )
        duration = (
            (final.finished_at - final.started_at).total_seconds()
            if final.started_at and final.finished_at
            else None
        )
        log.info(
            "run.finished",
            run_id=final.run_id,
            job_id=final.job_id,
            trigger=final.trigger.value,
            status=final.status.value,
            tasks_total=final.tasks_total,
            tasks_failed=final.tasks_failed,
            error=error,
            duration_s=duration,
        )
        return final
