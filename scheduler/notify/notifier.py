"""The Notifier: subscribes to RunStarted, RunFinished and SlotsMissed; asks the pure policy
what to send, and the dispatcher to deliver it on every configured channel."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from scheduler.domain import Job, Notify, Run, RunStatus, Task
from scheduler.events import Bus, RunFinished, RunStarted, SlotsMissed
from scheduler.notify import policy
from scheduler.notify.channels import Heartbeat, message_channels
from scheduler.notify.dispatch import Dispatcher
from scheduler.notify.policy import Message

# A start ping is tried once: the run waits for it (a start ping after the run's end would
# tell the switch a run is under way), so a receiver that is down delays a run by at most the
# dispatcher's timeout, not by every retry.
START_ATTEMPTS = 1


class Outcomes(Protocol):
    """What the notifier asks history: the job's run before this one, to tell a recovery."""

    def previous_outcome(self, job_id: str, before_run_id: int) -> RunStatus | None: ...


class Notifier:
    """Turns runs and missed slots into messages on every configured channel."""

    def __init__(self, settings: Notify, store: Outcomes, dispatcher: Dispatcher) -> None:
        self.settings = settings
        self._store = store
        self._dispatcher = dispatcher
        self._channels = message_channels(settings)

    def subscribe(self, bus: Bus) -> None:
        bus.subscribe(RunStarted, lambda e: self.run_started(e.job, e.run))
        bus.subscribe(RunFinished, lambda e: self.run_finished(e.job, e.run, e.tasks))
        bus.subscribe(SlotsMissed, lambda e: self.missed(e.job_id, e.slots, e.reason))

    def close(self) -> None:
        self._dispatcher.close()

    def run_started(self, job: Job, run: Run) -> None:
        ping = policy.started(self.settings, job, run)
        if ping is not None:
            url, message = ping
            channel = Heartbeat(url, self.settings.heartbeat_start)
            self._dispatcher.deliver(channel, message, attempts=START_ATTEMPTS)

    def run_finished(self, job: Job | None, run: Run, tasks: Sequence[Task]) -> None:
        ping = policy.heartbeat(self.settings, job, run)
        if ping is not None:
            url, message = ping
            self._dispatcher.deliver(Heartbeat(url), message)
        previous = None
        if policy.wants_previous(self.settings, run):
            previous = self._store.previous_outcome(run.job_id, run.run_id)
        self._send(policy.after_run(self.settings, run, tasks, previous))

    def missed(self, job_id: str, slots: Sequence[datetime], reason: str) -> None:
        self._send(policy.after_missed(self.settings, job_id, slots, reason))

    def _send(self, message: Message | None) -> None:
        if message is None:
            return
        for channel in self._channels:
            self._dispatcher.deliver(channel, message)
