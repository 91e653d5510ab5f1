"""jobs.yaml + environment -> a frozen domain.Config. The only package that imports yaml.

Every problem is collected and reported at once, each with file, line, job id and field.

    loading.py      parse / load: the whole file, every problem at once
    yaml_source.py  YAML with line numbers, duplicate keys and size bounds (imports yaml)
    interpolate.py  ${VAR} and ${VAR:-default}
    shape.py        the file's sections as pydantic models
    jobs.py         each job: schedule, and actions validated with the catalogue's options models
    settings.py     kinsta, companies, notify, database and the environment variables
    problems.py     a problem's file, line, job id and field

What an action accepts is declared beside the action (scheduler.actions.catalogue), which this
package reads without loading the Kinsta client.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from scheduler.actions import Options, registry
from scheduler.config.interpolate import MAX_VAR_NESTING
from scheduler.config.loading import load, parse, resolve_path
from scheduler.config.settings import (
    DEFAULT_CONFIG,
    DEFAULT_DATABASE_FILE,
    ENV_API_KEY,
    ENV_API_URL,
    ENV_COMPANY_ID,
    ENV_CONFIG,
    ENV_DATABASE_URL,
    ENV_SITE_BASE_URL,
    default_database_url,
)
from scheduler.config.shape import ENDPOINT, MAX_COUNT, url_problem
from scheduler.config.yaml_source import MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES, job_ids
from scheduler.values import MAX_DURATION_S, parse_duration, parse_positive_duration


class _ActionOptions(Mapping[str, type[Options]]):
    """Each action's options model, read live from the catalogue."""

    def __getitem__(self, name: str) -> type[Options]:
        return registry()[name].options

    def __iter__(self) -> Iterator[str]:
        return iter(registry())

    def __len__(self) -> int:
        return len(registry())


ACTION_OPTIONS: Mapping[str, type[Options]] = _ActionOptions()

__all__ = [
    "ACTION_OPTIONS",
    "DEFAULT_CONFIG",
    "DEFAULT_DATABASE_FILE",
    "ENDPOINT",
    "ENV_API_KEY",
    "ENV_API_URL",
    "ENV_COMPANY_ID",
    "ENV_CONFIG",
    "ENV_DATABASE_URL",
    "ENV_SITE_BASE_URL",
    "MAX_COUNT",
    "MAX_DEPTH",
    "MAX_DURATION_S",
    "MAX_FILE_BYTES",
    "MAX_VALUES",
    "MAX_VAR_NESTING",
    "default_database_url",
    "job_ids",
    "load",
    "parse",
    "parse_duration",
    "parse_positive_duration",
    "resolve_path",
    "url_problem",
]
