"""The runs page's view logic, pure: each job's runs placed on a strip of the last days, and
the progress of the runs still running."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any

from scheduler.httpd import number

MAX_DAYS = 31


@dataclass(frozen=True)
class Mark:
    run_id: int
    status: str
    left_pct: float  # where the run was scheduled on the strip, 0 (oldest) to 100 (now)
    title: str


@dataclass(frozen=True)
class Lane:
    job_id: str
    marks: list[Mark]
    counts: dict[str, int]  # runs per status on the strip


def days_from(query: Mapping[str, str], default: int = 7) -> int:
    days = number(query.get("days"))
    return min(days, MAX_DAYS) if days else default


def lanes(runs: Sequence[Mapping[str, Any]], now: datetime, days: int) -> list[Lane]:
    """One lane per job (by id), from `history --format json`'s runs."""
    start, span = now - timedelta(days=days), days * 86400.0
    by_job: dict[str, list[Mark]] = {}
    counts: dict[str, dict[str, int]] = {}
    for run in runs:
        at = datetime.fromisoformat(run["scheduled_for"])
        left = min(100.0, max(0.0, (at - start).total_seconds() / span * 100))
        title = f"run {run['run_id']} · {run['status']} · {run['scheduled_for']}"
        by_job.setdefault(run["job_id"], []).append(
            Mark(run["run_id"], run["status"], round(left, 2), title)
        )
        per = counts.setdefault(run["job_id"], {})
        per[run["status"]] = per.get(run["status"], 0) + 1
    return [Lane(job, sorted(by_job[job], key=lambda m: m.left_pct), counts[job])
            for job in sorted(by_job)]  # fmt: skip


def day_ticks(now: datetime, days: int, zone: tzinfo = UTC) -> list[tuple[float, str]]:
    """(left %, "Mon 24") for each midnight in `zone` (the page's) on the strip; a day of 23
    or 25 hours (DST) is placed by its real instant."""
    start = now - timedelta(days=days)
    local = start.astimezone(zone).date() + timedelta(days=1)
    ticks = []
    while (midnight := datetime.combine(local, time(), zone).astimezone(UTC)) < now:
        left = round((midnight - start).total_seconds() / (days * 864.0), 2)
        ticks.append((left, f"{local:%a %d}"))
        local += timedelta(days=1)
    return ticks


def progress(tasks: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """(tasks finished, tasks planned) of a run, from its tasks."""
    done = sum(1 for t in tasks if t["status"] not in ("pending", "running"))
    return done, len(tasks)
