"""A company's runner: composes the parts in scheduler/run/ and executes runs with them.

Executes one run: resolve targets, run each target's actions in order (targets concurrently,
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

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from scheduler.actions import registry
from scheduler.clock import CancelScope, Clock
from scheduler.domain import Job, OperationState, Polling, RateLimits, Run, RunTrigger, Target
from scheduler.errors import EnvironmentBusy
from scheduler.history import HistoryStore, new_owner_token
from scheduler.kinsta.client import KinstaClient
from scheduler.kinsta.models import Site
from scheduler.kinsta.probe import SiteProbe
from scheduler.run.context import FirstUser, Toolkit
from scheduler.run.early import EarlyPolls
from scheduler.run.executor import Executor, Progress, resolve_targets
from scheduler.run.follow import SCOUT_PRIOR_SHARE, DurationLearner, Follower
from scheduler.run.leases import (
    HEARTBEAT_S,
    LOCK_LEASE_S,
    STALE_BEATS,
    EnvironmentLocks,
    Heartbeats,
    RunControl,
    holding,
    holds,
)
from scheduler.run.listing import SiteListing
from scheduler.run.pipeline import Pipeline
from scheduler.run.policy import NOT_STARTED_TIMEOUT, SKIPPED_AFTER_FAILURE

__all__ = [
    "NOT_STARTED_TIMEOUT",
    "SKIPPED_AFTER_FAILURE",
    "STALE_BEATS",
    "EnvironmentBusy",
    "OnDemand",
    "Progress",
    "RunControl",
    "Runner",
    "holding",
    "holds",
]


@dataclass(frozen=True)
class OnDemand:
    """What an on-demand run (a Slack command) adds: who asked; the targets it was narrowed to
    when asked (None: the job's, resolved as it starts); and who to tell once it is claimed
    (its id: progress reports read its tasks)."""

    requested_by: str
    targets: Sequence[Target] | None = None
    on_claimed: Callable[[Run], None] | None = None


class Runner:
    """Runs a company's jobs. Long-lived parts (environment locks, heartbeats, the duration
    learner, the company's first user) live as long as the runner; the rest is composed per
    run from its current settings (`polling`, `probe`, `retry_pause_s`, `on_progress`,
    `on_start`)."""

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
        self.retry_pause_s = 0.5  # the base pause before trying an action again
        self.probe = probe or SiteProbe()
        self.locks = EnvironmentLocks(store, clock, lock_lease_s)
        self.heartbeats = Heartbeats(store, clock, self.cancel, heartbeat_s)
        self.learner = DurationLearner()
        self._actions = registry()
        self._priors_s = self._scout_priors()
        self.early = EarlyPolls(
            client.backlog,
            self.learner.expected_s,
            clock,
            fallback_s=lambda kind: self._priors_s.get(kind, 0.0) / SCOUT_PRIOR_SHARE,
            stop=self.cancel,
        )
        self.on_progress: Callable[[Progress], None] | None = None
        self.on_start: Callable[[Job, Run], None] | None = None  # a claimed run begins
        self._first_user = FirstUser(client, company_id)
        self._sites = SiteListing(
            lambda: client.sites.list(company_id, include_environments=True), clock
        )

    def notify_user_id(self) -> str:
        """The first user of the company (endpoints such as restore must name one to notify)."""
        return self._first_user()

    def known_sites(self) -> list[Site]:
        """The company's sites as the last run's listing found them (sends no request)."""
        return self._sites.last()

    def targets(self, job: Job) -> list[Target]:
        """The environments the job acts on now, from the live site list."""
        return resolve_targets(self._sites, job)

    def run(
        self,
        job: Job,
        trigger: RunTrigger,
        scheduled_for: datetime,
        config_revision: str | None = None,
        on_demand: OnDemand | None = None,
    ) -> Run | None:
        """Claim (job, slot) and execute it. None when the slot was already claimed."""
        asked = on_demand or OnDemand("")
        with holding(new_owner_token()) as token:
            run = self._executor().claim(
                job,
                trigger,
                scheduled_for,
                config_revision,
                token,
                requested_by=asked.requested_by or None,
            )
            if run is None:
                return None
            if asked.on_claimed is not None:
                asked.on_claimed(run)
            return self.execute(job, run, asked.targets)

    def execute(self, job: Job, run: Run, targets: Sequence[Target] | None = None) -> Run:
        """Execute a claimed run (see Executor.execute) on the job's targets, or on `targets`
        when given. When it returns, no background work of the run's (lease renewals, lock
        watching) still uses the store."""
        pinned = list(targets) if targets is not None else None
        resolve = self.targets if pinned is None else lambda _job: pinned
        try:
            return self._executor().execute(
                job, run, resolve=resolve, on_progress=self.on_progress, on_start=self.on_start
            )
        finally:
            self.locks.settle()

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
        """Poll a recorded operation to its end (see Follower.follow)."""
        return self._follower().follow(
            row_id, operation_id, expected_s, kind, control=control, late=late
        )

    def _scout_priors(self) -> dict[str, float]:
        # Actions declare durations at Kinsta's pace; a key whose window is scaled (the
        # sandbox's benchmarks) scales them alike, and no scout waits longer than two of the
        # longest intervals between polls (`polling.max_interval`) before its first.
        pace = self.client.backlog().window_s / RateLimits().window_s
        return {
            name: min(SCOUT_PRIOR_SHARE * action.typical_s * pace, 2 * self.polling.max_interval_s)
            for name, action in self._actions.items()
        }

    def _follower(self) -> Follower:
        return Follower(
            self.client,
            self.store,
            self.clock,
            self.polling,
            self.learner,
            priors_s=self._priors_s,
            early=self.early,
        )

    def _executor(self) -> Executor:
        tools = Toolkit(
            client=self.client,
            probe=self.probe,
            company_id=self.company_id,
            clock=self.clock,
            store=self.store,
            polling=self.polling,
            locks=self.locks,
            follower=self._follower(),
            learner=self.learner,
            first_user=self._first_user,
        )
        pipeline = Pipeline(
            tools, self._actions, draining=self.draining, retry_pause_s=self.retry_pause_s
        )
        return Executor(
            tools, self.heartbeats, pipeline, started_by=self.started_by, draining=self.draining
        )
