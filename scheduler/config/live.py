"""What `validate` can check in jobs.yaml only against Kinsta's answer: that the environment a
job names exists on some site. Reported like every other problem (file, line, job, field);
offline, `unchecked` says what was not checked, so a typo such as `lve` is never passed
silently (the job would find no target at any run)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path

from scheduler.actions import Scope, registry
from scheduler.config.yaml_source import line_of, load_yaml
from scheduler.domain import Config, Job
from scheduler.errors import ConfigError, Problem

# The words targets.environment takes besides an environment's name (scheduler/targets.py).
KINDS = ("live", "staging", "all")
FIELD = "targets.environment"


def named_environments(config: Config) -> list[Job]:
    """The jobs whose targets.environment is an environment's name, not one of KINDS (jobs of
    a company-level action have no targets)."""
    catalogue = registry()
    return [
        job
        for job in config.jobs
        if job.targets.environment not in KINDS
        and not any(catalogue[a.name].scope is Scope.COMPANY for a in job.actions)
    ]


def environment_problems(
    config: Config, environments: Mapping[str, Iterable[str]]
) -> list[Problem]:
    """A problem for each job whose environment no site has. `environments`: company -> the
    names and display names of its sites' environments (a company left out: not checked)."""
    found = []
    for job in named_environments(config):
        known = environments.get(job.company)
        if known is None:
            continue
        names = {name.casefold(): name for name in known if name}
        wanted = job.targets.environment
        if wanted.casefold() in names:
            continue
        message = f"no site has an environment named {wanted!r}{_hint(wanted, names.values())}"
        found.append(_located(config.path, job.id, f"{message}: the job would find no target"))
    return found


def unchecked(config: Config) -> list[str]:
    """What --offline leaves unchecked, one line per job (printed as notes)."""
    return [
        f"job {job.id!r}: {FIELD} {job.targets.environment!r} is an environment's name, "
        f"checked against the site list only online{_hint(job.targets.environment, ())}"
        for job in named_environments(config)
    ]


def _hint(wanted: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(wanted, [*KINDS, *sorted(set(names))], n=1)
    return f" (did you mean {close[0]!r}?)" if close and close[0] != wanted else ""


def _located(file: str, job_id: str, message: str) -> Problem:
    return Problem(file, _line(file, job_id), message, job_id, FIELD)


def _line(file: str, job_id: str) -> int | None:
    """The line of the job's targets.environment, the file read again (None when it can no
    longer be read, or no longer holds the job)."""
    try:
        located, _ = load_yaml(Path(file).read_text(encoding="utf-8"), file)
    except (OSError, UnicodeDecodeError, ConfigError):
        return None
    jobs = located.data.get("jobs") if isinstance(located.data, dict) else None
    for index, item in enumerate(jobs if isinstance(jobs, list) else []):
        if isinstance(item, dict) and item.get("id") == job_id:
            return line_of(located, ("jobs", index, "targets", "environment"))
    return None
