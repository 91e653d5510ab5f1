"""One target's pipeline: its actions in order, each a task, asking the policy what comes next.

The environment is locked from the first mutating action to the end of the pipeline. No task
starts once the process is stopping, the run winds down (a cancel) or passed its deadline:
those stay pending, and the executor settles them. Every change a pipeline sends is checked at
the last moment before it leaves (kinsta/guard.py): the run must still be ours with a fresh
heartbeat (RunControl), and every environment lease the pipeline holds must still hold."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import structlog

from scheduler.actions import ActionDef, ActionResult
from scheduler.domain import Job, TaskStatus
from scheduler.errors import EnvironmentBusy, OwnershipLost, PollingCancelled, TaskInterrupted
from scheduler.kinsta.governor import work_ahead
from scheduler.kinsta.guard import guarded
from scheduler.run import policy
from scheduler.run.context import TaskContext, TaskRef, Toolkit
from scheduler.run.policy import Fate, Step

log = structlog.get_logger("scheduler.runner")


@dataclass(frozen=True)
class Ended:
    """How a target's pipeline ended: how many of its tasks failed, and were rolled back (a
    rolled-back task counts as failed too)."""

    failed: int = 0
    rolled_back: int = 0


class Pipeline:
    """Runs targets' chains of tasks with the runner's tools."""

    def __init__(
        self,
        tools: Toolkit,
        actions: Mapping[str, ActionDef],
        *,
        draining: threading.Event,
        retry_pause_s: float,
    ) -> None:
        self._tools = tools
        self._store = tools.store
        self._clock = tools.clock
        self._actions = actions
        # Set when the process is stopping: no new task starts.
        self._draining = draining
        self._retry_pause_s = retry_pause_s  # the base pause before trying an action again

    def run(
        self, job: Job, chain: Sequence[TaskRef], deadline: float, *, may_defer: bool = False
    ) -> Ended | None:
        """Run one target's actions in order; return how many failed. With `may_defer`, a
        chain whose first action must lock an environment another holder has returns None at
        once, having done nothing: the run tries it again later, rather than hold a thread
        (and a place among the targets in flight) waiting."""
        control, holders = chain[0].control, chain[0].holders
        locks = self._tools.locks

        def guard(_method: str, _path: str) -> None:
            control.gate()
            for holder in list(holders):
                locks.check(holder)

        with guarded(guard):
            return self._steps(job, chain, deadline, may_defer)

    def _steps(
        self, job: Job, chain: Sequence[TaskRef], deadline: float, may_defer: bool
    ) -> Ended | None:
        failed = rolled_back = 0
        locked: TaskRef | None = None
        control = chain[0].control
        try:
            for ref in chain:
                step = policy.next_step(
                    stopping=control.stop.is_set()
                    or self._draining.is_set()
                    or control.winding_down is not None,
                    past_deadline=self._clock.monotonic() > deadline,
                    failed=failed,
                    on_failure=job.on_failure,
                )
                if step is Step.STOP:
                    break
                if step is Step.SKIP:
                    self._skip(ref)
                    continue
                mutating = self._actions[ref.action].mutating
                if locked is None and mutating and ref.target.environment_id:
                    first = may_defer and ref is chain[0]
                    try:
                        self._lock(ref, at_once=first)
                    except PollingCancelled:
                        break
                    except EnvironmentBusy as exc:
                        if first:
                            return None  # nothing done: the run comes back to it
                        self._busy(ref, exc)
                        failed += 1
                        continue
                    locked = ref
                    ref.holders.append(ref.holder)
                try:  # the action sees the run's deadline (a safe update's isolation steps)
                    result = self._task(job, replace(ref, deadline=deadline))
                except TaskInterrupted:
                    break
                failed += result.status.is_failure
                rolled_back += result.status is TaskStatus.ROLLED_BACK
        except OwnershipLost as exc:
            control.lose(str(exc))
        finally:
            if locked is not None:
                locked.holders.remove(locked.holder)
                self._tools.locks.release(locked.target.environment_id, locked.holder)
        return Ended(failed, rolled_back)

    def _skip(self, ref: TaskRef) -> None:
        now, owner = self._clock.now(), ref.control.owner
        self._store.tasks.finish_task(
            ref.task_id, TaskStatus.SKIPPED, now, policy.SKIPPED_AFTER_FAILURE, owner=owner
        )

    def _busy(self, ref: TaskRef, exc: EnvironmentBusy) -> None:
        now, owner = self._clock.now(), ref.control.owner
        self._store.tasks.start_task(ref.task_id, now, owner=owner)
        self._store.tasks.finish_task(ref.task_id, TaskStatus.FAILED, now, str(exc), owner=owner)

    def _lock(self, ref: TaskRef, *, at_once: bool = False) -> None:
        """Take the target's lock. Waiting stops (PollingCancelled) when the run must stop, and
        when the process drains (shutdown's first phase lets started tasks finish; one still
        waiting for its environment has not started). `at_once`: one try, EnvironmentBusy if
        another holder has it."""
        self._tools.locks.acquire(
            ref.target.environment_id,
            ref.holder,
            ref.label,
            ref.control.stop,
            deadline_s=0.0 if at_once else self._tools.polling.deadline_s,
            give_up=lambda: self._draining.is_set() or ref.control.winding_down is not None,
        )

    def _task(self, job: Job, ref: TaskRef) -> ActionResult:
        started = self._clock.monotonic()
        owner = ref.control.owner
        self._store.tasks.start_task(ref.task_id, self._clock.now(), owner=owner)
        # The operations still to come in this pipeline, this one's included: its requests
        # queue for budget ahead of those of shorter chains (the governor's order).
        learner = self._tools.learner
        ahead = sum(learner.expected_s(a.name) for a in job.actions[ref.index :])
        with work_ahead(ahead):
            result = self._run_action(job, ref)
        self._store.tasks.finish_task(
            ref.task_id,
            result.status,
            self._clock.now(),
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
            duration_s=round(self._clock.monotonic() - started, 3),
        )
        return result

    def _run_action(self, job: Job, ref: TaskRef) -> ActionResult:
        """Run the action as its `repeat` allows: again after a transient failure. A change
        request that may have reached Kinsta is never sent again (unless repeating it is
        harmless); actions read the state back where they can (actions.change), and what is
        left uncertain fails saying so."""
        definition = self._actions[ref.action]
        attempts = policy.attempts_allowed(definition.repeat)
        for attempt in range(1, attempts + 1):
            result, final = self._attempt(job, ref, definition)
            if final:
                return result
            if not policy.should_retry(result, attempt, attempts):
                break
            log.warning(
                "task.retrying",
                job_id=job.id,
                action=ref.action,
                target=ref.target.key,
                attempt=attempt,
                error=result.message,
            )
            self._store.tasks.count_attempt(ref.task_id)
            pause_s = policy.retry_pause_s(attempt, self._retry_pause_s)
            if self._clock.sleep(pause_s, ref.control.stop):
                raise TaskInterrupted
        return policy.final_result(result, attempt)

    def _attempt(self, job: Job, ref: TaskRef, definition: ActionDef) -> tuple[ActionResult, bool]:
        """Run an action (or its reconcile step) once; every error becomes the task's result
        as the policy says, and whether it is final. Raises TaskInterrupted when the process
        is stopping, and what is not the task's to decide (the run lost, the store failed)."""
        try:
            return definition.invoke(
                TaskContext(self._tools, ref), ref.target, job.actions[ref.index].options
            ), False
        except Exception as exc:
            verdict = policy.classify(exc, definition.repeat)
            if verdict.fate is Fate.PROPAGATE:
                raise
            if verdict.fate is Fate.INTERRUPTED:
                log.warning(
                    "task.interrupted", job_id=job.id, action=ref.action, target=ref.target.key
                )
                raise TaskInterrupted from exc
            if verdict.fate is Fate.CRASHED:  # an action's bug must fail its task, not the run
                log.exception(
                    "task.crashed", job_id=job.id, action=ref.action, target=ref.target.key
                )
            assert verdict.result is not None
            return verdict.result, verdict.fate is Fate.FINAL
