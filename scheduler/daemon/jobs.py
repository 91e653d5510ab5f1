"""Which jobs a reload changes (pure): old configuration and new -> what to schedule, what to
remove. Only scheduled jobs count (a job without a schedule runs only by hand)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from scheduler.domain import Config, Job


def scheduled(config: Config | None) -> dict[str, Job]:
    """A configuration's jobs that have a schedule, by id (none for no configuration)."""
    return {job.id: job for job in (config.jobs if config else ()) if job.schedule is not None}


@dataclass(frozen=True)
class JobChanges:
    """What a new configuration changes: `changed` holds every job to (re)schedule, new or
    edited, in the new file's order; `removed` the ids no longer scheduled."""

    before: Mapping[str, Job]
    changed: Mapping[str, Job]
    removed: tuple[str, ...]

    def summary(self) -> dict[str, list[str]]:
        """The ids added, changed and removed (for the log and the daemon's event)."""
        return {
            "added": [i for i in self.changed if i not in self.before],
            "changed": [i for i in self.changed if i in self.before],
            "removed": list(self.removed),
        }


def diff(old: Config | None, new: Config) -> JobChanges:
    """Only what differs: an unchanged job keeps its trigger (and its next fire time)."""
    before, after = scheduled(old), scheduled(new)
    changed = {i: j for i, j in after.items() if before.get(i) != j}
    removed = tuple(i for i in before if i not in after)
    return JobChanges(before, changed, removed)
