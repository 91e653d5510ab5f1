"""Crash recovery: finishing runs whose process is gone.

A run carries a heartbeat while it executes. A run still `running` whose heartbeat is older than
four beats, or whose recorded owner is a process of this host that no longer exists (restart
after `kill -9`: adopted at once), or an `interrupted` run with a task left `running` at
shutdown, is an orphan. Any daemon may adopt it: one conditional UPDATE on the run's owner token
decides who, and gives the adopter a new token that fences every later write, so the process
that lost the run (if it still lives) can change nothing more. The adopter beats the run's
heartbeat while it recovers it, so nobody adopts it a second time. Then:

1. every operation it had started and that has no final state is polled, by its stored operation
   id, to its end (or to the polling deadline), and recorded, holding the environment's lock
   meanwhile (taking it over from the dead run). If the id may now name another operation (a
   newer operation with the same id is recorded, or the environment is busy with someone else:
   Kinsta's ids may repeat per environment), its outcome is recorded `unknown`, never guessed;
2. a task that was running ends with its operation's outcome when the action is that single
   operation (clear_cache, backup, push_to_live...); a multi-step action (an update, which
   reads, updates, verifies and may restore) ends `failed` if an operation failed, else
   `interrupted`, its later steps not run;
3. a task that had not started ends `interrupted`: recovery never starts new work, and never
   repeats a request (the next slot does the work again);
4. the run ends `failed` if any task failed, else `interrupted` if any was interrupted, else
   `succeeded`, saying it was recovered and by whom. A run an operator cancelled (before or
   during its recovery) ends `cancelled` instead, its tasks not started `skipped` saying so.

Operations seen finished by recovery are marked late: nobody saw when they really ended, so they
never teach the duration estimate that schedules first polls.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

import structlog

from scheduler.actions import registry
from scheduler.domain import OperationEvent, OperationState, Run, RunStatus, Task, TaskStatus
from scheduler.errors import EnvironmentBusy, Interrupted, OwnershipLost
from scheduler.history import HistoryStore, UnresolvedOperation, new_owner_token
from scheduler.run import policy
from scheduler.run.leases import STALE_BEATS, RunControl, holding, holds
from scheduler.runner import Runner

log = structlog.get_logger("scheduler.recovery")

__all__ = ["STALE_BEATS", "find_and_recover", "owner_gone", "recover"]

NOT_STARTED = "not started before its process stopped; recovery starts no new work"
REUSED_ID = (
    "its outcome cannot be known: a newer operation has the same id (Kinsta's ids repeat per "
    "environment), so polling it would describe the newer one"
)


def recover(run: Run, runner: Runner, store: HistoryStore, owner: str) -> Run | None:
    """Finish an adopted orphan run (see the module's rules). `run.owner_token` is the token
    the adoption gave. None when another process adopted it from us meanwhile."""
    assert run.owner_token is not None
    with runner.heartbeats.control(run.run_id, run.owner_token) as control:
        try:
            with runner.heartbeats.beating(control):
                return _recover(run, runner, store, owner, control)
        except OwnershipLost as exc:
            log.warning("recovery.lost", run_id=run.run_id, reason=str(exc))
            return None


def _recover(run: Run, runner: Runner, store: HistoryStore, owner: str, control: RunControl) -> Run:
    polled = 0
    for operation in store.tasks.unresolved_operations(run.run_id):
        try:
            _follow(run, operation, runner, control, owner)
        except Interrupted:
            log.warning("recovery.interrupted", run_id=run.run_id)
            return store.runs.finish_run(
                run.run_id,
                RunStatus.INTERRUPTED,
                runner.clock.now(),
                "recovery interrupted: the process was stopping",
                owner=control.owner,
            )
        polled += 1
    now = runner.clock.now()
    interrupted = 0
    for task in store.tasks.run_tasks(run.run_id):
        if task.status is TaskStatus.RUNNING:
            outcome, message = _settle(task)
            store.tasks.finish_task(task.task_id, outcome, now, message, owner=control.owner)
            interrupted += outcome is TaskStatus.INTERRUPTED
    note = (
        f"recovered by {owner} after {run.started_by or 'its process'} stopped: "
        f"{polled} operation(s) followed to their end"
    )
    status, note = _outcome(run, store, control, now, note=note, interrupted=interrupted)
    final = store.runs.finish_run(run.run_id, status, now, note, owner=control.owner)
    log.info("run.recovered", run_id=run.run_id, job_id=run.job_id, status=status.value, note=note)
    return final


def _outcome(
    run: Run,
    store: HistoryStore,
    control: RunControl,
    now: datetime,
    *,
    note: str,
    interrupted: int,
) -> tuple[RunStatus, str]:
    """Settle the tasks never started and say how the run ends: cancelled if an operator
    asked (those tasks skipped), else by its tasks (those tasks interrupted)."""
    cancel = _cancel_of(run, control)
    if cancel is not None:
        message = policy.not_started(cancel)
        left = store.runs.finish_pending(
            run.run_id, TaskStatus.SKIPPED, now, message, owner=control.owner
        )
        return RunStatus.CANCELLED, f"{policy.wound_down(cancel, left, 0)}; {note}"
    interrupted += store.runs.finish_pending(
        run.run_id, TaskStatus.INTERRUPTED, now, NOT_STARTED, owner=control.owner
    )
    tasks = store.tasks.run_tasks(run.run_id)
    status = policy.run_status(
        failed=sum(t.status.is_failure for t in tasks),
        interrupted=sum(t.status is TaskStatus.INTERRUPTED for t in tasks),
        total=len(tasks),  # no task at all: it stopped before planning any (interrupted)
    )
    return status, f"{note}, {interrupted} task(s) interrupted"


def _cancel_of(run: Run, control: RunControl) -> str | None:
    """Why the run is cancelled, if an operator asked: before its adoption (the row read
    with it) or since (a heartbeat of the recovery read it back)."""
    if control.winding_down is not None:
        return control.winding_down.reason
    return None if run.cancel is None else policy.cancelled_by(run.cancel)


def _follow(
    run: Run, operation: UnresolvedOperation, runner: Runner, control: RunControl, owner: str
) -> None:
    """Follow one operation to its end, holding its environment's lock so that no new
    operation (with perhaps the same id) starts there meanwhile; or record it `unknown`.
    The lock is held as `owner` (now the run's `started_by`) for this run, the name a run's
    own locks have: if this recovery dies too, the next one takes the lock over likewise."""
    if operation.newer_with_same_id:
        _unknown(operation, runner, control, REUSED_ID)
        return
    env = operation.environment_id
    if not env:  # a company-level operation (site creation): no environment to hold
        runner.follow(operation.row_id, operation.operation_id, 0.0, control=control, late=True)
        return
    holder = f"{owner}/run-{run.run_id}/{env}"
    try:
        runner.locks.acquire(
            env,
            holder,
            f"recovery of run {run.run_id}",
            control.stop,
            deadline_s=0.0,  # one try: whoever holds it now may be running an operation
            take_from=f"{run.started_by}/run-{run.run_id}/",  # the dead run's own lock
        )
    except EnvironmentBusy as exc:
        _unknown(operation, runner, control, f"its outcome cannot be known: {exc}")
        return
    try:
        runner.follow(operation.row_id, operation.operation_id, 0.0, control=control, late=True)
    finally:
        runner.locks.release(env, holder)
        runner.locks.settle()


def _unknown(operation: UnresolvedOperation, runner: Runner, control: RunControl, why: str) -> None:
    event = OperationEvent(runner.clock.now(), OperationState.UNKNOWN, None, why, late=True)
    runner.store.tasks.operation_event(operation.row_id, event, 0, owner=control.owner)
    log.warning("recovery.operation_unknown", operation_id=operation.operation_id, reason=why)


def _settle(task: Task) -> tuple[TaskStatus, str]:
    definition = registry().get(task.action)
    one_operation = definition is not None and definition.one_operation
    return policy.recovered_task(task.operations, one_operation)


def owner_gone(run: Run, me: str) -> bool:
    """Whether a running run's recorded owner ("host:pid") is a process of this host (`me` is
    this process's "host:pid") that no longer runs it: its pid is gone, or it is our own pid
    (a restarted container reuses it) and the run is not one this process holds."""
    host, _, pid_text = (run.started_by or "").rpartition(":")
    my_host, _, my_pid = me.rpartition(":")
    if host != my_host or not pid_text.isdigit():
        return False
    if pid_text == my_pid:
        return not holds(run.owner_token)
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False  # PermissionError: it exists (another user's); OverflowError: not a pid
    return False


def find_and_recover(
    store: HistoryStore,
    runner_for: Callable[[str], Runner | None],
    *,
    owner: str,
    now: datetime,
    stale_before: datetime,
) -> list[Run]:
    """Adopt and finish every orphan this process can reach; return the finished runs."""
    host = owner.rpartition(":")[0] + ":"
    candidates: dict[int, tuple[Run, datetime | None]] = {
        run.run_id: (run, stale_before) for run in store.runs.orphaned_runs(stale_before)
    }
    for run in store.runs.running_runs_started_by(host):
        if run.run_id not in candidates and owner_gone(run, owner):
            candidates[run.run_id] = (run, None)  # its process is gone: no need to wait
    done = []
    for run, stale in candidates.values():
        runner = runner_for(run.job_id)
        if runner is None:
            log.warning("recovery.no_runner", run_id=run.run_id, job_id=run.job_id)
            continue
        with holding(new_owner_token()) as token:
            if store.runs.adopt_run(run, owner, now, stale, token) is None:
                continue  # another process took it
            log.info("recovery.adopted", run_id=run.run_id, job_id=run.job_id, was=run.started_by)
            final = recover(replace(run, owner_token=token), runner, store, owner)
        if final is not None:
            done.append(final)
    return done
