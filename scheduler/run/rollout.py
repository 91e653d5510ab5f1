"""A run's targets in waves, and its circuit breaker (the decisions are pure, in waves.py).

The breaker counts every target whose pipeline ended, whatever its wave: when `halt_after`
trips, the run winds down (RunControl.wind_down with status `halted`): no new target starts,
what is in flight finishes and is recorded, and the run ends `halted` with the reason. Each
wave is recorded in history (`run_waves`: `show` and `history`) with its outcome; waves the run
never began are recorded `not started`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

import structlog

from scheduler.domain import Job, RunStatus, Target
from scheduler.rollout import (
    WAVE_ENDED,
    WAVE_NOT_STARTED,
    WAVE_STOPPED,
    HaltAfter,
    Rollout,
    WaveRecord,
)
from scheduler.run.context import TaskRef
from scheduler.run.leases import RunControl
from scheduler.run.pipeline import Ended
from scheduler.run.waves import Tally, tripped, wave_names, waves

log = structlog.get_logger("scheduler.runner")

Chain = Sequence[TaskRef]


def wave_chains(job: Job, chains: Sequence[Chain]) -> list[list[Chain]]:
    """The run's chains grouped into its waves, in order (one group without a rollout)."""
    if job.rollout is None:
        return [list(chains)]
    by_key = {chain[0].target.key: chain for chain in chains}
    targets: list[Target] = [chain[0].target for chain in chains]
    return [[by_key[t.key] for t in wave] for wave in waves(targets, job.rollout)]


class Breaker:
    """Counts the run's targets as their pipelines end; winds the run down when `halt_after`
    trips. Thread-safe: pipelines end on their own threads."""

    def __init__(
        self,
        halt_after: HaltAfter | None,
        control: RunControl,
        report: Callable[[int, str, bool], None] | None = None,
    ) -> None:
        self._halt_after = halt_after
        self._control = control
        self._report = report
        self._lock = threading.Lock()
        self.tally = Tally()

    def ended(self, chain: Chain, ended: Ended) -> None:
        with self._lock:
            tally = self.tally = replace(
                self.tally,
                done=self.tally.done + 1,
                failed=self.tally.failed + bool(ended.failed - ended.rolled_back),
                rolled_back=self.tally.rolled_back + bool(ended.rolled_back),
            )
        why = tripped(self._halt_after, tally)
        if why is not None and self._control.wind_down(RunStatus.HALTED, f"halted: {why}"):
            log.error("run.halted", run_id=self._control.run_id, reason=why)
        if self._report is not None:  # targets done so far in the run, this one, failed?
            self._report(tally.done, chain[0].target.key, bool(ended.failed))


class WaveBook:
    """The run's waves as history records them: a wave's record once it ended (with how its
    targets ended: the breaker's tally's change over the wave), and the waves never begun."""

    def __init__(self, groups: Sequence[Sequence[Chain]], rollout: Rollout) -> None:
        self._sizes = [len(group) for group in groups]
        self._names = wave_names([[chain[0].target for chain in g] for g in groups], rollout)

    def ended(
        self, index: int, before: Tally, after: Tally, span: tuple[datetime, datetime], *, cut: bool
    ) -> WaveRecord:
        """Wave `index`, run over `span` (`cut`: the run stopped before all its targets)."""
        done = after.done - before.done
        return WaveRecord(
            index,
            self._names[index],
            self._sizes[index],
            WAVE_STOPPED if cut and done < self._sizes[index] else WAVE_ENDED,
            done=done,
            failed=after.failed - before.failed,
            rolled_back=after.rolled_back - before.rolled_back,
            started_at=span[0],
            ended_at=span[1],
        )

    def not_started(self, first: int) -> list[WaveRecord]:
        """The waves from `first` on, which the run never began."""
        return [
            WaveRecord(i, self._names[i], self._sizes[i], WAVE_NOT_STARTED)
            for i in range(first, len(self._sizes))
        ]
