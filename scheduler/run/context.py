"""What an action may use while its task runs (the ActionContext of scheduler/actions): a frozen
bundle of the runner's tools and the task it serves. It knows nothing of the executor."""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime

from scheduler.clock import Clock
from scheduler.domain import InventorySnapshot, OperationState, Polling, Target
from scheduler.errors import KinstaError, PollingCancelled
from scheduler.history import HistoryStore
from scheduler.kinsta.client import KinstaClient, OperationAccepted
from scheduler.kinsta.operations import next_delay_s
from scheduler.kinsta.probe import SiteProbe
from scheduler.ports import QuarantineEntry
from scheduler.run.follow import DurationLearner, Follower
from scheduler.run.leases import EnvironmentLocks, RunControl


@dataclass(frozen=True)
class TaskRef:
    """One planned task, as its pipeline runs it."""

    task_id: int
    run_id: int
    target: Target
    action: str
    index: int  # position of the action in the job
    holder: str  # who holds the environment's lock for this pipeline
    label: str  # job, run and target, for "busy" messages
    control: RunControl
    holders: list[str]  # the leases the target's pipeline holds (one list per pipeline)
    deadline: float = math.inf  # the run's timeout, on the monotonic clock


class FirstUser:
    """The first user of the company, asked once (endpoints such as restore must name one to
    notify)."""

    def __init__(self, client: KinstaClient, company_id: str) -> None:
        self._client = client
        self._company_id = company_id
        self._user: str | None = None
        self._lock = threading.Lock()  # held across the request that finds a user

    def __call__(self) -> str:
        with self._lock:
            if self._user is None:
                users = self._client.company.list_users(self._company_id)
                if not users:
                    raise KinstaError("the company has no users to notify")
                self._user = users[0].id
            return self._user


@dataclass(frozen=True)
class Toolkit:
    """What every task of a runner may draw on."""

    client: KinstaClient
    probe: SiteProbe
    company_id: str
    clock: Clock
    store: HistoryStore
    polling: Polling
    locks: EnvironmentLocks
    follower: Follower
    learner: DurationLearner
    first_user: Callable[[], str]


@dataclass(frozen=True)
class TaskContext:
    """ActionContext for one task: polls operations and records their timeline."""

    tools: Toolkit
    task: TaskRef

    @property
    def client(self) -> KinstaClient:
        return self.tools.client

    @property
    def probe(self) -> SiteProbe:
        return self.tools.probe

    @property
    def company_id(self) -> str:
        return self.tools.company_id

    def now(self) -> datetime:
        return self.tools.clock.now()

    def note_available(
        self, kind: str, offered: Iterable[tuple[str, str]]
    ) -> Mapping[tuple[str, str], datetime]:
        return self.tools.store.catalogue.note_available(kind, offered, self.now())

    def record_inventory(self, snapshot: InventorySnapshot) -> None:
        task = self.task
        self.tools.store.catalogue.record_inventory(
            task.task_id, task.run_id, task.target, snapshot
        )

    def quarantined(
        self, kind: str, offered: Iterable[tuple[str, str]]
    ) -> Mapping[tuple[str, str], QuarantineEntry]:
        return self.tools.store.quarantine.held(kind, offered)

    def quarantine(self, kind: str, name: str, version: str, reason: str) -> QuarantineEntry:
        task, target = self.task, self.task.target
        entry = QuarantineEntry(kind, name, version, reason, self.now())
        evidence = replace(
            entry,
            site=target.site_name,
            environment=target.environment_name,
            run_id=task.run_id,
            task_id=task.task_id,
        )
        return self.tools.store.quarantine.add(evidence)

    def time_left_s(self) -> float:
        return self.task.deadline - self.tools.clock.monotonic()

    def winding_down(self) -> str | None:
        control = self.task.control
        if control.stop.is_set():
            return "the process is stopping"
        return control.winding_down.reason if control.winding_down is not None else None

    @contextmanager
    def exclusive(self, environment_id: str, label: str) -> Iterator[None]:
        locks, task = self.tools.locks, self.task
        holder = f"{task.holder}+{environment_id}"
        locks.acquire(
            environment_id,
            holder,
            f"{task.label} -> {label}",
            task.control.stop,
            deadline_s=self.tools.polling.deadline_s,
        )
        task.holders.append(holder)
        try:
            yield
        finally:
            task.holders.remove(holder)
            locks.release(environment_id, holder)

    def notify_user_id(self) -> str:
        return self.tools.first_user()

    def wait(
        self, accepted: OperationAccepted, kind: str | None = None
    ) -> tuple[OperationState, str]:
        task = self.task
        return self.tools.follower.track(
            task.task_id, accepted.operation_id, kind or task.action, task.control
        )

    def wait_until(self, check: Callable[[], bool]) -> bool:
        clock, polling = self.tools.clock, self.tools.polling
        # At least twice as long as the task's action typically takes (learned), if longer.
        typical = self.tools.learner.expected_s(self.task.action)
        window = min(polling.deadline_s, max(polling.read_back_window_s, 2 * typical))
        started = clock.monotonic()
        for attempt in itertools.count():
            if check():
                return True
            delay = next_delay_s(attempt, 0.0, polling)
            if clock.monotonic() - started + delay > window:
                return False
            if clock.sleep(delay, self.task.control.stop):
                raise PollingCancelled(attempt)
        return False  # pragma: no cover - count() never ends
