"""Crash recovery: finishing runs whose process is gone.

A run carries a heartbeat while it executes. A run still `running` whose heartbeat is older than
four beats, or an `interrupted` run with a task left `running` at shutdown, is an orphan. Any
daemon may adopt it (one conditional UPDATE decides who), then:

1. every operation it had started and that has no final state is polled, by its stored operation
   id, to its end (or to the polling deadline), and recorded;
2. a task that was running ends with its operation's outcome when the action is that single
   operation (clear_cache, backup, push_to_live...); a multi-step action (an update, which
   reads, updates, verifies and may restore) ends `failed` if an operation failed, else
   `interrupted`, its later steps not run;
3. a task that had not started ends `interrupted`: recovery never starts new work, and never
   repeats a request (the next slot does the work again);
4. the run ends `failed` if any task failed, else `interrupted` if any was interrupted, else
   `succeeded`, saying it was recovered and by whom.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from scheduler.actions import registry
from scheduler.domain import OperationState, Run, RunStatus, Task, TaskStatus
from scheduler.history import HistoryStore
from scheduler.kinsta.operations import PollingCancelled
from scheduler.runner import Runner

log = structlog.get_logger("scheduler.recovery")
_ACTIONS = registry()

STALE_BEATS = 4  # a run is orphaned after this many missed heartbeats
NOT_STARTED = "not started before its process stopped; recovery starts no new work"


def recover(run: Run, runner: Runner, store: HistoryStore, owner: str) -> Run:
    """Finish an adopted orphan run (see the module's rules)."""
    polled = 0
    for _task_id, row_id, operation_id, _kind in store.unresolved_operations(run.run_id):
        try:
            runner.follow(row_id, operation_id, 0.0)
        except PollingCancelled:
            log.warning("recovery.interrupted", run_id=run.run_id)
            return store.finish_run(
                run.run_id, RunStatus.INTERRUPTED, runner.clock.now(), "recovery interrupted"
            )
        polled += 1
    now = runner.clock.now()
    interrupted = 0
    for task in store.run_tasks(run.run_id):
        if task.status is TaskStatus.RUNNING:
            outcome, message = _settle(task)
            store.finish_task(task.task_id, outcome, now, message)
            interrupted += outcome is TaskStatus.INTERRUPTED
    interrupted += store.finish_pending(run.run_id, TaskStatus.INTERRUPTED, now, NOT_STARTED)
    tasks = store.run_tasks(run.run_id)
    if any(t.status.is_failure for t in tasks):
        status = RunStatus.FAILED
    elif not tasks or any(t.status is TaskStatus.INTERRUPTED for t in tasks):
        status = RunStatus.INTERRUPTED  # no task at all: it stopped before planning any
    else:
        status = RunStatus.SUCCEEDED
    note = (
        f"recovered by {owner} after {run.started_by or 'its process'} stopped: "
        f"{polled} operation(s) followed to their end, {interrupted} task(s) interrupted"
    )
    final = store.finish_run(run.run_id, status, now, note)
    log.info("run.recovered", run_id=run.run_id, job_id=run.job_id, status=status.value, note=note)
    return final


def _settle(task: Task) -> tuple[TaskStatus, str]:
    ops = task.operations
    states = [op.state for op in ops]
    summary = ", ".join(f"{op.action} {op.state.value}" for op in ops) or "no operation started"
    definition = _ACTIONS.get(task.action)
    if definition is not None and definition.one_operation and len(ops) == 1:
        if ops[0].state is OperationState.SUCCEEDED:
            return TaskStatus.SUCCEEDED, f"recovered: {summary} after its process stopped"
        return TaskStatus.FAILED, f"recovered: {summary}: {ops[0].message or ''}".strip()
    if any(s in (OperationState.FAILED, OperationState.TIMED_OUT) for s in states):
        return TaskStatus.FAILED, f"its process stopped mid-action ({summary})"
    return (
        TaskStatus.INTERRUPTED,
        f"its process stopped mid-action ({summary}); later steps not run, nothing repeated",
    )


def find_and_recover(
    store: HistoryStore,
    runner_for: Callable[[str], Runner | None],
    *,
    owner: str,
    now: datetime,
    stale_before: datetime,
) -> list[Run]:
    """Adopt and finish every orphan this process can reach; return the finished runs."""
    done = []
    for run in store.orphaned_runs(stale_before):
        runner = runner_for(run.job_id)
        if runner is None:
            log.warning("recovery.no_runner", run_id=run.run_id, job_id=run.job_id)
            continue
        if not store.adopt_run(run, owner, now, stale_before):
            continue  # another process took it
        log.info("recovery.adopted", run_id=run.run_id, job_id=run.job_id, was=run.started_by)
        done.append(recover(run, runner, store, owner))
    return done
