"""Running one slot of a job: claim it (unless a run of the job is still going anywhere) and
run it; every way this can end leaves the slot a row (a claimed run, or skipped/missed with
why). Work in flight is counted, so shutdown can wait for it before the clients close."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import structlog

from scheduler import recovery
from scheduler.clock import Clock
from scheduler.domain import Config, Job, Run, RunStatus, RunTrigger
from scheduler.errors import RunRefused, SchedulerError, SlotNotClaimedError, StoreError
from scheduler.events import Event, RunFinished
from scheduler.history import HistoryStore
from scheduler.runner import OnDemand, Runner

from .holds import Holds
from .outbox import Outbox
from .overlap import Overlaps

log = structlog.get_logger("scheduler.daemon")

AfterRun = Callable[[Job | None, Run], None]


def published_runs(store: HistoryStore, publish: Callable[[Event], None]) -> AfterRun:
    """After each recorded run: RunFinished, with its tasks, on the bus (metrics and
    notifications listen). Reading the tasks may fail while the database is away: said, and
    nothing published; the bus itself never raises."""

    def after(job: Job | None, run: Run) -> None:
        try:
            tasks = store.tasks.run_tasks(run.run_id)
        except StoreError as exc:  # the database is away: expected, no traceback
            log.warning("run.after_hook_failed", run_id=run.run_id, error=str(exc))
            return
        except Exception:  # a bug reading the tasks must not fail the run that finished
            log.exception("run.after_hook_failed", run_id=run.run_id)
            return
        publish(RunFinished(job, run, tuple(tasks)))

    return after


class InFlight:
    """Runs and recoveries under way: shutdown waits for them."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._count = 0
        self._cond = threading.Condition()

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._cond:
            self._count += 1
        try:
            yield
        finally:
            with self._cond:
                self._count -= 1
                self._cond.notify_all()

    def wait(self, seconds: float) -> int:
        """Wait up to `seconds` for everything to finish; return how many are still going."""
        deadline = self._clock.monotonic() + seconds
        with self._cond:
            while self._count and (left := deadline - self._clock.monotonic()) > 0:
                self._cond.wait(left)
            return self._count


class SlotRuns:
    """Claims and runs slots. `config()` is the daemon's current configuration (its revision
    is recorded with each run; its heartbeat says when another process's run is dead)."""

    def __init__(
        self,
        store: HistoryStore,
        clock: Clock,
        runner_for: Callable[[Job], Runner],
        outbox: Outbox,
        *,
        config: Callable[[], Config],
        after_run: AfterRun,
        decided: Callable[[str, str], None] = lambda _kind, _detail: None,
        stop: threading.Event | None = None,
        holds: Holds,
    ) -> None:
        self._store = store
        self._holds = holds
        self._clock = clock
        self._runner_for = runner_for
        self._outbox = outbox
        self._config = config
        self._after_run = after_run
        self.in_flight = InFlight(clock)
        self._overlaps = Overlaps(
            store,
            clock,
            alive_after=self.alive_after,
            decided=decided,
            stop=stop or threading.Event(),
        )

    def runner(self, job: Job) -> Runner | None:
        try:
            return self._runner_for(job)
        except KeyError:  # a company added to jobs.yaml after start has no client yet
            log.error(
                "run.unknown_company",
                job_id=job.id,
                company=job.company,
                action="restart to add it",
            )
            return None

    def alive_after(self) -> datetime:
        """A run whose heartbeat is older than this has lost its process."""
        beats = recovery.STALE_BEATS * self._config().daemon.heartbeat_s
        return self._clock.now() - timedelta(seconds=beats)

    def record(self, job_id: str, slot: datetime, status: RunStatus, reason: str) -> None:
        """A slot that did not run, with its reason: queued, then written at once if the
        database answers (off the scheduler's thread only)."""
        self._outbox.add(job_id, slot, status, reason)
        self._outbox.flush()

    def execute(self, job: Job, trigger: RunTrigger, slot: datetime) -> None:
        """Claim and run one slot of a job, unless a run of it is still going anywhere."""
        runner = self.runner(job)
        if runner is None:
            self.record(
                job.id,
                slot,
                RunStatus.MISSED,
                f"the daemon has no API client for company {job.company!r} "
                "(added to jobs.yaml after start): restart the daemon",
            )
            return
        with self.in_flight.held():
            try:
                self._claim_and_run(runner, job, trigger, slot)
            except SlotNotClaimedError as exc:
                log.error(
                    "run.not_claimed", job_id=job.id, scheduled_for=slot.isoformat(), error=str(exc)
                )
                reason = f"the history database was unreachable: {exc}"
                self._outbox.add(job.id, slot, RunStatus.MISSED, reason)
            except StoreError as exc:  # mid-run: its heartbeat stops, recovery finishes it later
                log.error(
                    "run.history_unavailable",
                    job_id=job.id,
                    scheduled_for=slot.isoformat(),
                    error=str(exc),
                    action="left for recovery",
                )
                reason = f"the history database failed: {exc}"
                self._outbox.add(job.id, slot, RunStatus.MISSED, reason)
            except SchedulerError as exc:
                log.error(
                    "run.error", job_id=job.id, scheduled_for=slot.isoformat(), error=str(exc)
                )
                self.record(job.id, slot, RunStatus.MISSED, f"the run could not start: {exc}")
            except Exception as exc:
                log.exception("run.crashed", job_id=job.id, scheduled_for=slot.isoformat())
                reason = f"the daemon failed: {exc.__class__.__name__}"
                self.record(job.id, slot, RunStatus.MISSED, reason)

    def run_now(
        self, job: Job, trigger: RunTrigger, asked: OnDemand, *, stopping: bool = False
    ) -> Run:
        """Run a job now for someone who asked (a Slack command): no slot, but as any run
        otherwise (this daemon's runner, counted in flight, published when it ends). Raises
        RunRefused, recording nothing, while stopping, for a company without a client, while
        the job is held (disabled, paused, or in a blackout now, as its slots would be) or
        while a run of the job is going anywhere; StoreError when history cannot be read."""
        runner = self.runner(job)
        if stopping or runner is None:
            why = "the daemon is stopping" if stopping else f"no API client for {job.company!r}"
            raise RunRefused(why)
        held = self._holds.reason(job, self._clock.now())
        if held is not None:
            raise RunRefused(f"{job.id} is held now: {held}")
        with self.in_flight.held():
            busy = self._store.runs.running_run(job.id, self.alive_after())
            if busy is not None:
                raise RunRefused(f"run {busy.run_id} of {job.id} is still running")
            now = self._clock.now()
            run = runner.run(job, trigger, now, self._config().revision, on_demand=asked)
            assert run is not None  # on-demand runs never collide on a slot
            self._after_run(job, run)
            return run

    def _claim_and_run(self, runner: Runner, job: Job, trigger: RunTrigger, slot: datetime) -> None:
        try:
            held = self._holds.reason(job, slot)
            busy = None if held else self._store.runs.running_run(job.id, self.alive_after())
        except StoreError as exc:
            raise SlotNotClaimedError(str(exc)) from exc
        if held is not None:  # disabled, paused or in a blackout: never claimed
            log.info("run.held", job_id=job.id, scheduled_for=slot.isoformat(), reason=held)
            self.record(job.id, slot, RunStatus.SKIPPED, held)
            return
        if busy is not None and (why := self._overlaps.go(job, slot, busy)) is not None:
            self.record(job.id, slot, RunStatus.SKIPPED, why)
            return
        run = runner.run(job, trigger, slot, self._config().revision)
        if run is not None:
            self._after_run(job, run)
