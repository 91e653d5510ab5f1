"""Executes one run: claim its slot, resolve its targets, plan its tasks, run each target's
pipeline (targets concurrently, up to the job's concurrency), settle the run's status, and end
with one summary log line. The run's heartbeat beats from start to finish."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import structlog

from scheduler.actions import Scope, registry
from scheduler.actions.specs import company_target_name
from scheduler.domain import MAX_CONCURRENCY, Job, Run, RunStatus, RunTrigger, Target, TaskStatus
from scheduler.errors import (
    Interrupted,
    KinstaError,
    OwnershipLost,
    SlotNotClaimedError,
    StoreError,
)
from scheduler.history import PlannedTask
from scheduler.kinsta.models import Site
from scheduler.rollout import WaveRecord
from scheduler.run import policy
from scheduler.run.admission import Admission
from scheduler.run.context import TaskRef, Toolkit
from scheduler.run.leases import Heartbeats, RunControl
from scheduler.run.pipeline import Ended, Pipeline
from scheduler.run.rollout import Breaker, WaveBook, wave_chains
from scheduler.targets import select_targets

log = structlog.get_logger("scheduler.runner")

Resolve = Callable[[Job], list[Target]]


@dataclass(frozen=True)
class Progress:
    """What trigger's progress display is told: a target's pipeline ended."""

    targets_total: int
    targets_done: int
    target: str
    failed: bool


OnProgress = Callable[[Progress], None]
OnStart = Callable[[Job, Run], None]


def resolve_targets(sites: Callable[[], list[Site]], job: Job) -> list[Target]:
    """The environments the job acts on now, from the live site list (`sites`)."""
    if all(registry()[a.name].scope is Scope.COMPANY for a in job.actions):
        # Acts on the company: one pseudo-target named after what it creates.
        name = company_target_name(job.actions[0], job.id)
        return [Target(site_id="", site_name=name, environment_id="", environment_name="-")]
    return select_targets(sites(), job.targets)


class Executor:
    """Runs claimed runs with the runner's tools; `resolve` (the job's targets) and
    `on_progress` (told as each target's pipeline ends) are passed per call."""

    def __init__(
        self,
        tools: Toolkit,
        heartbeats: Heartbeats,
        pipeline: Pipeline,
        *,
        started_by: str,
        draining: threading.Event,
    ) -> None:
        self._tools = tools
        self._store = tools.store
        self._clock = tools.clock
        self._heartbeats = heartbeats
        self._pipeline = pipeline
        self._started_by = started_by
        self._draining = draining

    def claim(
        self,
        job: Job,
        trigger: RunTrigger,
        scheduled_for: datetime,
        config_revision: str | None,
        owner_token: str,
        *,
        requested_by: str | None = None,
    ) -> Run | None:
        """Claim (job, slot) with `owner_token` (counted as this process's: see
        leases.holding). None when the slot was already claimed."""
        try:
            run = self._store.runs.claim_run(
                job.id,
                trigger,
                scheduled_for,
                self._clock.now(),
                started_by=self._started_by,
                config_revision=config_revision,
                owner_token=owner_token,
                requested_by=requested_by,
            )
        except StoreError as exc:
            raise SlotNotClaimedError(str(exc), transient=exc.transient) from exc
        if run is None:
            log.info("run.already_claimed", job_id=job.id, scheduled_for=scheduled_for.isoformat())
        return run

    def execute(
        self,
        job: Job,
        run: Run,
        *,
        resolve: Resolve,
        on_progress: OnProgress | None = None,
        on_start: OnStart | None = None,
    ) -> Run:
        """Execute a claimed run, beating its heartbeat from start to finish (resolving the
        targets may wait for rate budget, `on_start` may wait for a notification: a live run
        must never look orphaned meanwhile)."""
        assert run.owner_token is not None, "a claimed run has an owner token"
        with self._heartbeats.control(run.run_id, run.owner_token) as control:
            try:
                with self._heartbeats.beating(control):
                    if on_start is not None:
                        on_start(job, run)
                    return self._execute(job, run, control, resolve, on_progress)
            except OwnershipLost as exc:
                return self._lost(run, str(exc))

    def _lost(self, run: Run, why: str) -> Run:
        """Another process adopted the run: leave it to that one, writing nothing more."""
        log.error("run.adopted_elsewhere", run_id=run.run_id, job_id=run.job_id, reason=why)
        return self._store.queries.get_run(run.run_id) or run

    def _execute(
        self,
        job: Job,
        run: Run,
        control: RunControl,
        resolve: Resolve,
        on_progress: OnProgress | None,
    ) -> Run:
        try:
            targets = resolve(job)
        except Interrupted:
            why = f"{policy.STOPPING}: before its targets were resolved"
            return self._finish(run, RunStatus.INTERRUPTED, why, control)
        except KinstaError as exc:
            return self._finish(run, RunStatus.FAILED, f"could not resolve targets: {exc}", control)
        if not targets:
            return self._finish(
                run, RunStatus.SKIPPED, "no environment matched the job's targets", control
            )
        # The runner serves every job of its company, possibly at once: merge, never replace.
        self._tools.learner.learn(
            self._store.queries.typical_durations([a.name for a in job.actions])
        )
        chains = self._plan(job, run, control, targets)
        deadline = self._clock.monotonic() + job.timeout_s
        failed = self._waves(job, run, control, chains, deadline=deadline, on_progress=on_progress)
        if control.lost is not None:
            raise OwnershipLost(control.lost)
        total = sum(len(chain) for chain in chains)
        return self._settle(job, run, control, failed=failed, total=total, deadline=deadline)

    def _plan(
        self, job: Job, run: Run, control: RunControl, targets: Sequence[Target]
    ) -> list[list[TaskRef]]:
        """Record the run's tasks (every action on every target); one chain per target."""
        planned = [PlannedTask(t, a.name) for t in targets for a in job.actions]
        ids = self._store.runs.plan_tasks(run.run_id, planned)
        leases: list[list[str]] = [[] for _ in targets]  # one list per target's pipeline
        refs = [
            TaskRef(
                task_id,
                run.run_id,
                p.target,
                p.action,
                i % len(job.actions),
                holder=f"{self._started_by}/run-{run.run_id}/{p.target.environment_id}",
                label=f"job {job.id}, run {run.run_id}, {p.target.key}",
                control=control,
                holders=leases[i // len(job.actions)],
            )
            for i, (task_id, p) in enumerate(zip(ids, planned, strict=True))
        ]
        return [refs[i : i + len(job.actions)] for i in range(0, len(refs), len(job.actions))]

    def _waves(
        self,
        job: Job,
        run: Run,
        control: RunControl,
        chains: Sequence[Sequence[TaskRef]],
        *,
        deadline: float,
        on_progress: OnProgress | None,
    ) -> int:
        """Run the targets wave by wave (one wave without a rollout); a wave starts when the
        one before ended and the rollout's pause passed. How many tasks failed."""

        def report(done: int, target: str, failed: bool) -> None:
            if on_progress is not None:
                on_progress(Progress(len(chains), done, target, failed))

        breaker = Breaker(job.halt_after, control, report)
        groups, failed, rollout = wave_chains(job, chains), 0, job.rollout
        book = None if rollout is None else WaveBook(groups, rollout)
        for index, group in enumerate(groups):
            if index and rollout is not None and rollout.pause_s > 0:
                self._clock.sleep(rollout.pause_s, control.stop)
            if self._stopping(control, deadline):
                for wave in book.not_started(index) if book is not None else []:
                    self._record_wave(run, control, wave)
                break
            before, started_at = breaker.tally, self._clock.now()
            failed += self._pipelines(job, run, group, deadline, breaker)
            if book is not None:
                span = (started_at, self._clock.now())
                cut = self._stopping(control, deadline)
                self._record_wave(
                    run, control, book.ended(index, before, breaker.tally, span, cut=cut)
                )
        return failed

    def _record_wave(self, run: Run, control: RunControl, wave: WaveRecord) -> None:
        self._tools.store.runs.record_wave(run.run_id, wave, owner=control.owner)
        log.info("run.wave_ended", run_id=run.run_id, job_id=run.job_id, wave=wave.summary())

    def _stopping(self, control: RunControl, deadline: float) -> bool:
        if control.stop.is_set() or control.winding_down is not None:
            return True
        return self._draining.is_set() or self._clock.monotonic() > deadline

    def _pipelines(
        self,
        job: Job,
        run: Run,
        chains: Sequence[Sequence[TaskRef]],
        deadline: float,
        breaker: Breaker,
    ) -> int:
        """Run every target's pipeline, starting each as the rate budget allows (up to the
        job's concurrency, if it sets one); how many tasks failed. A target whose environment
        another holder has goes to the back of the line once (its place in flight goes to one
        that can work now). Targets not started when the run must stop, winds down (a cancel)
        or passed its deadline stay pending, for _settle."""
        cap = job.concurrency or MAX_CONCURRENCY
        client = self._tools.client
        admission = Admission(client.backlog, client.next_arrival, cap)
        line = _Line(chains)
        control = chains[0][0].control if chains else None

        def stop() -> bool:
            return control is not None and self._stopping(control, deadline)

        def pipeline(chain: Sequence[TaskRef], may_defer: bool) -> None:
            ended: Ended | None = Ended()  # what a pipeline that raised counts (the run raises)
            try:
                ended = self._pipeline.run(job, chain, deadline, may_defer=may_defer)
            finally:
                admission.done()
                line.ended(chain, None if ended is None else ended.failed)
            if ended is not None:
                breaker.ended(chain, ended)

        with ThreadPoolExecutor(
            max_workers=min(cap, len(chains)) or 1, thread_name_prefix=f"run-{run.run_id}"
        ) as pool:
            while (waiting := line.waiting()) and admission.wait_turn(waiting, stop):
                chain, may_defer = line.next()
                line.started(pool.submit(pipeline, chain, may_defer))
            line.wait_all()  # raises what a pipeline raised
        log.debug("run.targets_in_flight", run_id=run.run_id, peak=admission.peak, cap=cap)
        return line.failed

    def _settle(
        self, job: Job, run: Run, control: RunControl, *, failed: int, total: int, deadline: float
    ) -> Run:
        """The run's final status once every pipeline ended."""
        now, owner = self._clock.now(), control.owner
        # A task still `running` was cut short (the process is stopping, or its client closed):
        # its operation is left at Kinsta for recovery to follow, and the run is interrupted.
        tasks = self._store.tasks.run_tasks(run.run_id)
        running = sum(1 for t in tasks if t.status is TaskStatus.RUNNING)
        if control.stop.is_set() or self._draining.is_set() or running:
            left = self._store.runs.finish_pending(
                run.run_id, TaskStatus.INTERRUPTED, now, policy.NOT_STARTED_STOPPING, owner=owner
            )
            why = policy.stopped(left, running)
            if why is not None:
                return self._finish(run, RunStatus.INTERRUPTED, why, control)
        ending = control.winding_down
        if ending is not None:  # a cancel (or a breaker): what never started is skipped
            left = self._store.runs.finish_pending(
                run.run_id, TaskStatus.SKIPPED, now, policy.not_started(ending.reason), owner=owner
            )
            why = policy.wound_down(ending.reason, left, failed)
            return self._finish(run, ending.status, why, control)
        if self._clock.monotonic() > deadline:
            left = self._store.runs.finish_pending(
                run.run_id, TaskStatus.SKIPPED, now, policy.NOT_STARTED_TIMEOUT, owner=owner
            )
            why = policy.timed_out(job.timeout_s, left, failed)
            return self._finish(run, RunStatus.FAILED, why, control)
        status = policy.run_status(failed=failed, interrupted=0, total=total)
        return self._finish(run, status, f"{failed} task(s) failed" if failed else None, control)

    def _finish(self, run: Run, status: RunStatus, error: str | None, control: RunControl) -> Run:
        final = self._store.runs.finish_run(
            run.run_id, status, self._clock.now(), error, owner=control.owner
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


class _Line:
    """A run's targets waiting to start, in order; one whose environment was busy comes back
    at the end, once. Thread-safe: pipelines report back from their threads."""

    def __init__(self, chains: Sequence[Sequence[TaskRef]]) -> None:
        self._cond = threading.Condition()
        self._queue = collections.deque((chain, True) for chain in chains)
        self._running: list[Future[None]] = []
        self._in_flight = 0
        self.failed = 0
        self.done = 0

    def waiting(self) -> int:
        """How many targets wait to start, once none is in flight that might come back; 0:
        none will."""
        with self._cond:
            while not self._queue and self._in_flight:
                self._cond.wait()
            return len(self._queue)

    def next(self) -> tuple[Sequence[TaskRef], bool]:
        """The next target and whether it may be deferred (once, with others waiting)."""
        with self._cond:
            chain, may_defer = self._queue.popleft()
            self._in_flight += 1
            return chain, may_defer and bool(self._queue)

    def started(self, future: Future[None]) -> None:
        self._running.append(future)

    def ended(self, chain: Sequence[TaskRef], failed: int | None) -> int | None:
        """A pipeline returned: how many have ended, or None when it was deferred (`failed`
        None: it goes to the end of the line)."""
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()
            if failed is None:
                self._queue.append((chain, False))
                return None
            self.failed += failed
            self.done += 1
            return self.done

    def wait_all(self) -> None:
        for future in self._running:
            future.result()
