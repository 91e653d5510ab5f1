"""Executes one run: resolve targets, run each target's actions in order (targets concurrently,
up to the job's concurrency), record every task and operation, end with one summary log line.

Mutating work holds the environment's lock (a lease in the history database) from the first
mutating task of a target's pipeline to its end, so two jobs, or two processes, never change the
same environment at once: the second waits. Kinsta serialises such operations anyway, and a
pipeline such as backup -> update -> clear cache is meant to run as a unit."""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime

import structlog

from scheduler.actions import Action, ActionDef, ActionResult, Repeat, registry, uncertain
from scheduler.clock import Clock
from scheduler.config import COMPANY_ACTIONS
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
    Interrupted,
    KinstaAPIError,
    KinstaError,
    SlotNotClaimedError,
    StoreError,
    TransportError,
)
from scheduler.history import HistoryStore, PlannedTask
from scheduler.kinsta.client import KinstaClient, OperationAccepted, OperationStatus
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


class EnvironmentBusy(Exception):
    """The environment stayed locked by someone else until the deadline."""


class _Locks:
    """Environment locks held by this runner: taken with patience, renewed by a keeper thread
    while held, released at the end of the pipeline."""

    def __init__(self, runner: Runner, lease_s: float) -> None:
        self._runner = runner
        self.lease_s = lease_s
        self._held: dict[str, str] = {}  # holder -> environment id
        self._mutex = threading.Lock()
        self._keeper: threading.Thread | None = None

    def acquire(self, environment_id: str, holder: str, label: str) -> None:
        """Block until held. Raises EnvironmentBusy after the polling deadline,
        PollingCancelled when the process is stopping."""
        runner = self._runner
        started = runner.clock.monotonic()
        pause, longest = LOCK_POLL_S
        was_busy = False
        while True:
            busy_with = runner.store.try_lock_environment(
                environment_id, holder, label, runner.clock.now(), self.lease_s
            )
            if busy_with is None:
                break
            was_busy = True
            waited = runner.clock.monotonic() - started
            if waited + pause > runner.polling.deadline_s:
                raise EnvironmentBusy(
                    f"the environment stayed busy for {waited:.0f}s (held by {busy_with})"
                )
            if runner.clock.sleep(pause, runner.cancel):
                raise PollingCancelled(0)
            pause = min(pause * 1.5, longest)
        with self._mutex:
            self._held[holder] = environment_id
            if self._keeper is None:
                self._keeper = threading.Thread(
                    target=self._keep, name="environment-locks", daemon=True
                )
                self._keeper.start()
        if was_busy:
            waited = runner.clock.monotonic() - started
            log.info("environment.lock_waited", holder=holder, waited_s=round(waited, 3))

    def release(self, environment_id: str, holder: str) -> None:
        with self._mutex:
            self._held.pop(holder, None)
        self._runner.store.unlock_environment(environment_id, holder)

    def _keep(self) -> None:
        """Renew every held lease a few times per lease; end when nothing is held."""
        runner, pause = self._runner, threading.Event()
        while True:
            pause.wait(self.lease_s / 4)
            with self._mutex:
                holders = list(self._held)
                if not holders:
                    self._keeper = None
                    return
            try:
                runner.store.renew_locks(holders, runner.clock.now(), self.lease_s)
            except StoreError as exc:  # retried next time; the lease outlasts a few misses
                log.warning("environment.lock_renew_failed", error=str(exc))


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
        locks = self._runner.locks
        holder = f"{self._task.holder}+{environment_id}"
        locks.acquire(environment_id, holder, f"{self._task.label} -> {label}")
        try:
            yield
        finally:
            locks.release(environment_id, holder)

    def notify_user_id(self) -> str:
        return self._runner.notify_user_id()

    def wait(
        self, accepted: OperationAccepted, kind: str | None = None
    ) -> tuple[OperationState, str]:
        runner = self._runner
        kind = kind or self._task.action
        row_id = runner.store.start_operation(
            self._task.task_id, accepted.operation_id, kind, runner.clock.now()
        )
        return runner.follow(row_id, accepted.operation_id, runner.expected_s(kind), kind)

    def wait_until(self, check: Callable[[], bool]) -> bool:
        runner, polling = self._runner, self._runner.polling
        started = runner.clock.monotonic()
        for attempt in itertools.count():
            if check():
                return True
            delay = next_delay_s(attempt, 0.0, polling)
            if runner.clock.monotonic() - started + delay > polling.deadline_s:
                return False
            if runner.clock.sleep(delay, runner.cancel):
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
        cancel: threading.Event | None = None,
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
        self.cancel = cancel or threading.Event()
        # Set when the process is stopping: no new task starts; running ones go on until
        # `cancel` tells them to stop polling.
        self.draining = draining or threading.Event()
        self.heartbeat_s = heartbeat_s
        self.retry_pause_s = 0.5  # the base pause before trying an action again
        self.probe = probe or SiteProbe()
        self.locks = _Locks(self, lock_lease_s)
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
        self, row_id: int, operation_id: str, expected_s: float, kind: str | None = None
    ) -> tuple[OperationState, str]:
        """Poll an operation to its end, recording each status change on its history row; a
        success of `kind` also teaches this run how long such operations take."""
        clock = self.clock
        started = clock.now()
        running_s = 0.0

        def seen(status: OperationStatus, polls: int) -> None:
            nonlocal running_s
            # A poll's answer describes the moment it was sent, after any wait for the governor;
            # the wait is kept so that learned durations can discount late sightings.
            at = status.sent_at or clock.now()
            event = OperationEvent(
                at, status.state, status.http_status, status.message, status.waited_s
            )
            self.store.operation_event(row_id, event, polls)
            elapsed = (at - started).total_seconds()
            if status.state is OperationState.IN_PROGRESS:
                running_s = max(running_s, elapsed)
            elif status.state is OperationState.SUCCEEDED and kind is not None:
                self._observe(kind, max(running_s, elapsed - status.waited_s))

        result = wait_for_operation(
            self.client,
            operation_id,
            self.polling,
            clock,
            expected_s=expected_s,
            on_status=seen,
            cancel=self.cancel,
        )
        if result.state is OperationState.TIMED_OUT:
            event = OperationEvent(clock.now(), result.state, result.http_status, result.message)
            self.store.operation_event(row_id, event, result.polls)
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
        try:
            run = self.store.claim_run(
                job.id,
                trigger,
                scheduled_for,
                self.clock.now(),
                started_by=self.started_by,
                config_revision=config_revision,
            )
        except StoreError as exc:
            raise SlotNotClaimedError(str(exc), transient=exc.transient) from exc
        if run is None:
            log.info("run.already_claimed", job_id=job.id, scheduled_for=scheduled_for.isoformat())
            return None
        return self.execute(job, run)

    def targets(self, job: Job) -> list[Target]:
        """The environments the job acts on now, from the live site list."""
        if all(a.name in COMPANY_ACTIONS for a in job.actions):
            # Acts on the company: one pseudo-target named after what it creates.
            name = str(job.actions[0].options.get("display_name") or job.id)
            return [Target(site_id="", site_name=name, environment_id="", environment_name="-")]
        sites = self.client.list_sites(self.company_id, include_environments=True)
        return select_targets(sites, job.targets)

    def execute(self, job: Job, run: Run) -> Run:
        """Execute a claimed run, beating its heartbeat from start to finish (resolving the
        targets may wait for rate budget: a live run must never look orphaned meanwhile)."""
        with self._heartbeat(run.run_id):
            return self._execute(job, run)

    def _execute(self, job: Job, run: Run) -> Run:
        try:
            targets = self.targets(job)
        except KinstaError as exc:
            return self._finish(run, RunStatus.FAILED, f"could not resolve targets: {exc}")
        if not targets:
            return self._finish(run, RunStatus.SKIPPED, "no environment matched the job's targets")
        # The runner serves every job of its company, possibly at once: merge, never replace.
        learned = self.store.typical_durations([a.name for a in job.actions])
        with self._mutex:
            self._expected = {**self._expected, **learned}
            self._from_history |= set(learned)
        planned = [PlannedTask(t, a.name) for t in targets for a in job.actions]
        ids = self.store.plan_tasks(run.run_id, planned)
        refs = [
            _TaskRef(
                task_id,
                run.run_id,
                p.target,
                p.action,
                i % len(job.actions),
                holder=f"{self.started_by}/run-{run.run_id}/{p.target.environment_id}",
                label=f"job {job.id}, run {run.run_id}, {p.target.key}",
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
        failed = sum(outcomes)
        now = self.clock.now()
        if self.cancel.is_set() or self.draining.is_set():
            left = self.store.finish_pending(
                run.run_id, TaskStatus.INTERRUPTED, now, NOT_STARTED_STOPPING
            )
            tasks = self.store.run_tasks(run.run_id)
            running = sum(1 for t in tasks if t.status is TaskStatus.RUNNING)
            if left or running:
                parts = [f"{left} task(s) not started"] if left else []
                if running:
                    parts.append(
                        f"{running} operation(s) left running at Kinsta, for recovery to follow"
                    )
                return self._finish(run, RunStatus.INTERRUPTED, f"{STOPPING}: {', '.join(parts)}")
        if self.clock.monotonic() > deadline:
            left = self.store.finish_pending(
                run.run_id, TaskStatus.SKIPPED, now, NOT_STARTED_TIMEOUT
            )
            if left:
                return self._finish(
                    run,
                    RunStatus.FAILED,
                    f"timed out after {job.timeout_s:g}s: {left} task(s) not started"
                    + (f", {failed} failed" if failed else ""),
                )
        status = RunStatus.FAILED if failed else RunStatus.SUCCEEDED
        return self._finish(run, status, f"{failed} task(s) failed" if failed else None)

    @contextmanager
    def _heartbeat(self, run_id: int) -> Iterator[None]:
        """Beat while the run executes, so recovery can tell a live run from an orphan."""
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.heartbeat_s):
                try:
                    self.store.heartbeat(run_id, self.clock.now())
                except StoreError as exc:
                    log.warning("run.heartbeat_failed", run_id=run_id, error=str(exc))

        thread = threading.Thread(target=beat, name=f"heartbeat-{run_id}", daemon=True)
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
        settles them."""
        failed = 0
        locked: _TaskRef | None = None
        try:
            for ref in chain:
                if self.cancel.is_set() or self.draining.is_set():
                    break
                if self.clock.monotonic() > deadline:
                    break
                if failed and job.on_failure == "stop":
                    now = self.clock.now()
                    self.store.finish_task(
                        ref.task_id, TaskStatus.SKIPPED, now, SKIPPED_AFTER_FAILURE
                    )
                    continue
                definition = self._actions[ref.action]
                if locked is None and definition.mutating and ref.target.environment_id:
                    try:
                        self.locks.acquire(ref.target.environment_id, ref.holder, ref.label)
                    except PollingCancelled:
                        break
                    except EnvironmentBusy as exc:
                        self.store.start_task(ref.task_id, self.clock.now())
                        self.store.finish_task(
                            ref.task_id, TaskStatus.FAILED, self.clock.now(), str(exc)
                        )
                        failed += 1
                        continue
                    locked = ref
                try:
                    result = self._task(job, ref)
                except _Interrupted:
                    break
                failed += result.status.is_failure
        finally:
            if locked is not None:
                self.locks.release(locked.target.environment_id, locked.holder)
        return failed

    def _attempt(self, job: Job, ref: _TaskRef, action: Action) -> ActionResult:
        """Run an action (or its reconcile step); every error becomes the task's result, except
        an uncertain change request (KinstaError.uncertain), which is the caller's to decide."""
        try:
            return action(_Context(self, ref), ref.target, job.actions[ref.index].options)
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
        except EnvironmentBusy as exc:
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
                result = self._attempt(job, ref, definition.run)
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
            if self.clock.sleep(min(2.0**attempt, 10.0) * self.retry_pause_s, self.cancel):
                raise _Interrupted
        if result.status is TaskStatus.FAILED and attempt > 1:
            return replace(result, message=f"{result.message} (after {attempt} attempts)")
        return result

    def _task(self, job: Job, ref: _TaskRef) -> ActionResult:
        started = self.clock.monotonic()
        self.store.start_task(ref.task_id, self.clock.now())
        result = self._run_action(job, ref)
        self.store.finish_task(
            ref.task_id,
            result.status,
            self.clock.now(),
            result.message,
            result=dict(result.details) or None,
            versions_before=result.versions_before,
            versions_after=result.versions_after,
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

    def _finish(self, run: Run, status: RunStatus, error: str | None) -> Run:
        final = self.store.finish_run(run.run_id, status, self.clock.now(), error)
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
