"""jobs.yaml + environment -> a frozen domain.Config. The only module that imports yaml.

Every problem is collected and reported at once, each with file, line, job id and field.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from scheduler import schedules
from scheduler.domain import (
    DEFAULT_API_URL,
    DEFAULT_COMPANY,
    DEFAULT_HOSTING_API_URL,
    ActionSpec,
    Company,
    Config,
    CronSchedule,
    DaemonSettings,
    IntervalSchedule,
    Job,
    KinstaSettings,
    Notify,
    Polling,
    RateLimits,
    Retention,
    SandboxSettings,
    Schedule,
    Secret,
    TargetSelector,
    Webhook,
    freeze,
    token_problem,
)
from scheduler.errors import ConfigError, Problem

ENV_API_KEY = "KINSTA_API_KEY"
ENV_COMPANY_ID = "KINSTA_COMPANY_ID"
ENV_API_URL = "KINSTA_API_URL"
ENV_SITE_BASE_URL = "KINSTA_SCHEDULER_SITE_BASE_URL"
ENV_CONFIG = "KINSTA_SCHEDULER_CONFIG"
ENV_DATABASE_URL = "KINSTA_SCHEDULER_DATABASE_URL"
DEFAULT_CONFIG = "jobs.yaml"
DEFAULT_DATABASE_FILE = "kinsta-scheduler.db"

_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_VAR_NESTING = 8
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION_S = 36_500 * 86_400.0  # 100 years: far enough, and far from datetime's year 9999
MAX_COUNT = 1_000_000  # for rate limits and counts: no sane value is near it, SQL holds it
ENDPOINT = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) /[A-Za-z0-9_{}/.-]*$")
_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


def parse_duration(value: str | float) -> float:
    """'30s', '5m', '6h', '3d', '1w' or a number of seconds -> seconds (0 to 100 years)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an integer too large for a float
            seconds = math.inf
    else:
        match = _DURATION.match(str(value)[:100])
        if not match:
            raise ValueError(f"{str(value)[:40]!r} is not a duration such as 30s, 5m, 6h or 3d")
        seconds = float(match.group(1)) * _UNIT_S[match.group(2) or "s"]
    if math.isnan(seconds):
        raise ValueError("a duration must be a number")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_DURATION_S:
        raise ValueError("a duration can be at most 36500d (100 years)")
    return seconds


def parse_positive_duration(value: str | float) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("must be more than 0")
    return seconds


def url_problem(value: str) -> str | None:
    """What keeps `value` from being an http(s) URL a request can go to, said without quoting
    it (webhook URLs are credentials); None when it is one."""
    if not value.strip():
        return "is empty"
    if any(char.isspace() or not char.isprintable() for char in value):
        return "contains spaces or control characters"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (reading it validates it)
    except ValueError as exc:
        return f"cannot be parsed ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return "is not an http:// or https:// URL"
    if not parts.hostname:
        return "has no host"
    return None


def _url(value: str | None) -> str | None:
    """A pydantic validator: None, or an http(s) URL."""
    problem = url_problem(value) if value is not None else None
    if problem is not None:
        raise ValueError(f"the URL {problem}")
    return value


Duration = Annotated[str | float, Field()]


# --- the file's shape (pydantic); nothing outside this module sees these models ---------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _RateLimits(_Model):
    per_minute: int = Field(120, gt=0, le=MAX_COUNT)
    creation_per_minute: int = Field(5, gt=0, le=MAX_COUNT)
    logs_per_minute: int = Field(35, gt=0, le=MAX_COUNT)
    per_ip_per_minute: int = Field(1000, gt=0, le=MAX_COUNT)
    ip_key: str | None = Field(None, max_length=200)
    window: Duration = 60.0
    creation_endpoints: list[str] = list(RateLimits.creation_endpoints)

    @field_validator("ip_key")
    @classmethod
    def _ip_key(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must name the egress address (or be left out for the host name)")
        return value.strip() if value is not None else None

    @field_validator("creation_endpoints")
    @classmethod
    def _endpoints(cls, values: list[str]) -> list[str]:
        for value in values:
            if not ENDPOINT.match(value):
                example = "POST /sites/{site_id}/environments"
                raise ValueError(f"{value!r} is not 'METHOD /path' (for example {example!r})")
        return values

    @field_validator("window")
    @classmethod
    def _duration(cls, value: str | float) -> float:
        return parse_positive_duration(value)


class _Polling(_Model):
    first_poll: Duration = 3.0
    max_interval: Duration = 30.0
    not_found_grace: Duration = 30.0
    deadline: Duration = 1800.0
    read_back: Duration | None = None

    @field_validator("first_poll", "max_interval", "deadline")
    @classmethod
    def _positive(cls, value: str | float) -> float:
        return parse_positive_duration(value)

    @field_validator("not_found_grace")
    @classmethod
    def _duration(cls, value: str | float) -> float:
        return parse_duration(value)

    @field_validator("read_back")
    @classmethod
    def _optional_positive(cls, value: str | float | None) -> float | None:
        return None if value is None else parse_positive_duration(value)


class _Company(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    api_key: str | None = None
    company_id: str | None = None


class _Kinsta(_Model):
    api_key: str | None = None
    company_id: str | None = None
    api_url: str | None = None
    hosting_api_url: str | None = None
    site_base_url: str | None = None
    companies: list[_Company] = []
    rate_limits: _RateLimits = _RateLimits()
    polling: _Polling = _Polling()
    timeout: Duration = 30.0

    @field_validator("timeout")
    @classmethod
    def _duration(cls, value: str | float) -> float:
        return parse_positive_duration(value)

    @field_validator("api_url", "hosting_api_url", "site_base_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return _url(value)


class _Sandbox(_Model):
    sites: int = Field(6, ge=1, le=5000)
    seed: int = Field(1, ge=-(2**63), lt=2**63)
    time_scale: float = Field(1.0, gt=0, le=100)


class _Schedule(_Model):
    cron: str | None = None
    every: Duration | None = None
    timezone: str | None = None
    jitter: Duration = 0.0


class _Targets(_Model):
    sites: list[str] = ["*"]
    labels: list[str] = []
    exclude: list[str] = []
    environment: str = "live"


class _Job(_Model):
    id: str
    schedule: _Schedule | None = None
    targets: _Targets = _Targets()
    actions: list[str | dict[str, Any]] = Field(min_length=1)
    concurrency: int = Field(4, ge=1, le=64)
    on_failure: Literal["stop", "continue"] = "stop"
    misfire_grace: Duration = 300.0
    company: str | None = None
    allow_scheduled: bool = False
    catch_up: Duration | Literal[False] = 3600.0
    timeout: Duration = 7200.0
    heartbeat_url: str | None = None
    sandbox_only: bool = False  # a demonstration: left out unless --sandbox

    @field_validator("catch_up")
    @classmethod
    def _catch_up(cls, value: str | float | bool) -> float | bool:
        if value is False:
            return False
        if value is True:
            raise ValueError("give a duration such as 1h, or false")
        return parse_duration(value)

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str | float) -> float:
        return parse_positive_duration(value)

    @field_validator("heartbeat_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return _url(value)


class _Retention(_Model):
    older_than: Duration
    keep_last: int = Field(20, ge=0, le=MAX_COUNT)

    @field_validator("older_than")
    @classmethod
    def _duration(cls, value: str | float) -> float:
        return parse_duration(value)


class _Notify(_Model):
    slack: str | list[str] = []
    webhooks: list[str] = []
    on: list[Literal["failure", "recovery", "missed"]] = ["failure", "recovery", "missed"]
    heartbeat_url: str | None = None

    @field_validator("slack", "webhooks")
    @classmethod
    def _urls(cls, value: str | list[str]) -> str | list[str]:
        for url in [value] if isinstance(value, str) else value:
            problem = url_problem(url)
            if problem is not None:
                raise ValueError(f"a webhook is an http(s):// URL; this one {problem}")
        return value

    @field_validator("heartbeat_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return _url(value)


class _Daemon(_Model):
    shutdown_timeout: Duration = 30.0
    heartbeat: Duration = 15.0
    db_retry: Duration = 120.0

    @field_validator("shutdown_timeout", "heartbeat", "db_retry")
    @classmethod
    def _duration(cls, value: str | float) -> float:
        seconds = parse_duration(value)
        if seconds <= 0:
            raise ValueError("must be more than 0")
        return seconds


class _File(_Model):
    version: Literal[1]
    timezone: str = "UTC"
    database: str | None = None
    kinsta: _Kinsta = _Kinsta()
    sandbox: _Sandbox = _Sandbox()
    retention: _Retention | None = None
    notify: _Notify = _Notify()
    daemon: _Daemon = _Daemon()
    jobs: list[Any] = []  # each job is validated on its own, so one bad job hides no other


# --- options each action accepts ---------------------------------------------------------------


class _NoOptions(_Model):
    pass


class _PhpVersion(_Model):
    version: str = Field(pattern=r"^\d+\.\d+$", description="for example 8.3")


class _Backup(_Model):
    tag: str = Field("kinsta-scheduler", max_length=200)
    find_id: bool = False  # list the backups afterwards to record the new one's id


class _PruneBackups(_Model):
    keep: int = Field(ge=0, le=100)


class _Verify(_Model):
    paths: list[str] = Field(["/"], min_length=1)
    status: int = Field(200, ge=100, le=599)
    contains: str | None = None

    @field_validator("paths")
    @classmethod
    def _paths(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value.startswith("/"):
                raise ValueError(f"{value!r}: a path starts with / (for example /shop/)")
        return values


class _Update(_Model):
    include: list[str] = ["*"]
    exclude: list[str] = []
    only: Literal["patch", "minor", "all"] = "all"
    min_age: Duration = 0.0
    safe: bool = False
    verify: _Verify = _Verify()
    check_php_errors: bool = True

    @field_validator("min_age")
    @classmethod
    def _duration(cls, value: str | float) -> float:
        return parse_duration(value)


class _FetchLogs(_Model):
    file: Literal["error", "access", "kinsta-cache-perf"] = "error"
    lines: int = Field(1000, ge=1, le=20000)


class _PushToLive(_Model):
    push_db: bool = True
    push_files: bool = True
    run_search_and_replace: bool = True
    file_list: list[str] = []


class _CreateStaging(_Model):
    display_name: str = Field("Staging", min_length=1, max_length=100)
    premium: bool = False


class _RestoreBackup(_Model):
    backup: Literal["latest_manual", "latest"] | Annotated[int, Field(ge=1, lt=2**63)] = (
        "latest_manual"
    )
    tag: str | None = None


class _CreateSite(_Model):
    display_name: str = Field(min_length=1, max_length=100)
    region: str = Field(min_length=1, description="a Kinsta region, for example us-central1")
    admin_email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    admin_user: str = Field(min_length=1)
    admin_password: str = Field(min_length=8, description="use ${VAR}, never the plain value")
    site_title: str | None = None
    wp_language: str = "en_US"
    woocommerce: bool | None = None
    wordpressseo: bool | None = None
    is_multisite: bool | None = None


class _CloneSite(_Model):
    display_name: str = Field(min_length=1, max_length=100)


class _Domain(_Model):
    domain: str = Field(pattern=r"^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
    wildcardless: bool | None = None


ACTION_OPTIONS: Mapping[str, type[_Model]] = {
    "clear_cache": _NoOptions,
    "clear_edge_cache": _NoOptions,
    "clear_cdn_cache": _NoOptions,
    "restart_php": _NoOptions,
    "set_php_version": _PhpVersion,
    "backup": _Backup,
    "prune_backups": _PruneBackups,
    "update_plugins": _Update,
    "update_themes": _Update,
    "fetch_logs": _FetchLogs,
    "inventory": _NoOptions,
    "push_to_live": _PushToLive,
    "create_staging": _CreateStaging,
    "restore_backup": _RestoreBackup,
    "create_site": _CreateSite,
    "clone_site": _CloneSite,
    "add_domain": _Domain,
    "remove_domain": _Domain,
}
# Actions that change or create something on request, not routine maintenance: only in jobs
# without a schedule (run with `trigger`), or with `allow_scheduled: true`.
ON_DEMAND_ACTIONS = frozenset(
    {
        "push_to_live",
        "create_staging",
        "restore_backup",
        "create_site",
        "clone_site",
        "add_domain",
        "remove_domain",
    }
)
# Actions that act on the company, not on an environment: they run once per run, and a job
# holding one holds nothing else (its targets are ignored).
COMPANY_ACTIONS = frozenset({"create_site"})


# --- YAML with line numbers --------------------------------------------------------------------


@dataclass
class _Located:
    data: Any
    lines: dict[tuple[str | int, ...], int]
    duplicates: list[str]


_BOOL_TAG = "tag:yaml.org,2002:bool"
_STR_TAG = "tag:yaml.org,2002:str"


def _walk(
    node: yaml.Node, path: tuple[str | int, ...], lines: dict[Any, int], out: list[str]
) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _BOOL_TAG:
                # Every key of jobs.yaml is a name: `on:` (notify.on) is the word, not YAML
                # 1.1's boolean true.
                key_node.tag = _STR_TAG
            key = str(key_node.value)
            if key in seen:
                out.append(f"{node.start_mark.line + 1}:{key_node.start_mark.line + 1}:{key}")
            seen.add(key)
            _walk(value_node, (*path, key), lines, out)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines, out)


_BASE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BASE_LOADER):  # type: ignore[misc]
    """libyaml's parser when PyYAML was built with it (a 1,000-job file parses ten times
    faster). Nothing in jobs.yaml is a date: 2026-02-30 stays text for the field to judge,
    instead of failing inside the YAML library."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, Any]]]] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in _BASE_LOADER.yaml_implicit_resolvers.items()
    }


_LOADER: Any = _Loader

# Bounds on what a jobs.yaml may hold. A node tree shares aliased nodes, so composing a "billion
# laughs" is cheap; everything after it (line numbers, ${VAR}, validation) walks the expanded
# tree. A real file is far inside these: 1,000 jobs are about 30,000 values, 8 levels deep.
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_VALUES = 250_000
MAX_DEPTH = 40
_TOO_LARGE = f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB: not read"


def _compose_and_construct(text: str, file: str) -> _Located:
    """Parse once: the node tree (for line numbers and duplicate keys) and, once the tree is
    known to be within bounds, the data built from it."""
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return _Located(None, {}, [])
        _check_bounds(node, file)
        located = _Located(None, {}, [])
        # Walk before constructing: construction merges `<<` keys into the node, where a key
        # that overrides a merged one would look like a duplicate.
        _walk(node, (), located.lines, located.duplicates)
        located.data = loader.construct_document(node)
        return located
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_bounds(root: yaml.Node, file: str) -> None:
    """Measure the tree as it is once aliases are expanded, without expanding it: each distinct
    collection once (post-order, iteratively), its expanded size and height from its children's.
    Scalars (most nodes) count 1 and are not visited on their own."""
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    path: set[int] = set()  # collections entered and not yet left: the current one's ancestors
    stack: list[tuple[yaml.Node, list[yaml.Node] | None]] = [(root, None)]
    distinct = 0  # values written out in the file (an aliased scalar counts at each alias)
    while stack:
        node, children = stack.pop()
        key = id(node)
        if children is not None:  # leaving: every child collection is measured
            path.discard(key)
            size[key] = 1 + sum(size.get(id(c), 1) for c in children)
            height[key] = 1 + max((height.get(id(c), 1) for c in children), default=0)
            _check_node(node, size[key], height[key], distinct, file)
        elif key not in size:
            children = _children(node)
            distinct += 1 + sum(isinstance(c, yaml.ScalarNode) for c in children)
            path.add(key)
            stack.append((node, children))
            for child in children:
                if isinstance(child, yaml.ScalarNode):
                    continue
                if id(child) in path:
                    raise _bounds_error(child, file, "an alias refers to itself (a cycle)")
                stack.append((child, None))


def _check_node(node: yaml.Node, size: int, height: int, distinct: int, file: str) -> None:
    if height > MAX_DEPTH:
        raise _bounds_error(node, file, f"values are nested more than {MAX_DEPTH} levels deep")
    if size > MAX_VALUES:
        why = (
            f"more than {MAX_VALUES} values"
            if distinct > MAX_VALUES
            else f"aliases expand the value here to more than {MAX_VALUES} values (an alias bomb?)"
        )
        raise _bounds_error(node, file, f"too large: {why}")


def _bounds_error(node: yaml.Node, file: str, message: str) -> ConfigError:
    return ConfigError([Problem(file, node.start_mark.line + 1, message)])


def _load_yaml(text: str, file: str) -> tuple[_Located, list[Problem]]:
    if len(text) > MAX_FILE_BYTES:
        raise ConfigError([Problem(file, None, _TOO_LARGE)])
    try:
        located = _compose_and_construct(text, file)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        # libyaml appends where ("in <unicode string>, position 872") on lines of its own.
        problem = str(exc.problem or exc).splitlines()[0]
        raise ConfigError([Problem(file, line, f"invalid YAML: {problem}")]) from exc
    except yaml.YAMLError as exc:
        problem = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError([Problem(file, None, f"invalid YAML: {problem}")]) from exc
    except RecursionError as exc:  # the pure-Python parser recurses per level (libyaml stops)
        message = f"values are nested more than {MAX_DEPTH} levels deep"
        raise ConfigError([Problem(file, None, message)]) from exc
    except (ValueError, TypeError, OverflowError) as exc:  # an explicit tag it cannot build
        message = f"invalid YAML: a tagged value cannot be read ({type(exc).__name__})"
        raise ConfigError([Problem(file, None, message)]) from exc
    problems = [
        Problem(file, int(d.split(":")[1]), f"duplicate key '{d.split(':', 2)[2]}'")
        for d in located.duplicates
    ]
    return located, problems


def _line(located: _Located, path: tuple[str | int, ...]) -> int | None:
    """The line of `path`, or of its nearest ancestor below the root (the root is line 1, which
    says nothing about a section that is absent)."""
    if not path:
        return located.lines.get(())
    for end in range(len(path), 0, -1):
        if path[:end] in located.lines:
            return located.lines[path[:end]]
    return None


# --- ${VAR} interpolation ----------------------------------------------------------------------


def _interpolate(
    value: Any, env: Mapping[str, str], path: tuple[str | int, ...], missing: list[Any]
) -> Any:
    """${VAR} and ${VAR:-default} in every string; a default may hold references itself. What
    cannot be resolved goes to `missing` as (path, message)."""
    if isinstance(value, str):
        if "${" not in value:
            return value
        try:
            return _expand(value, env, path, missing, 0)
        except ValueError as exc:
            missing.append((path, str(exc)))
            return ""
    if isinstance(value, dict):
        return {k: _interpolate(v, env, (*path, str(k)), missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env, (*path, i), missing) for i, v in enumerate(value)]
    return value


def _expand(
    text: str, env: Mapping[str, str], path: tuple[str | int, ...], missing: list[Any], depth: int
) -> str:
    if depth > MAX_VAR_NESTING:
        raise ValueError(f"${{...}} defaults nested more than {MAX_VAR_NESTING} deep")
    out: list[str] = []
    position = 0
    while (start := text.find("${", position)) != -1:
        out.append(text[position:start])
        end = _closing_brace(text, start + 2)
        name, colon_dash, default = text[start + 2 : end].partition(":-")
        if not _VAR_NAME.match(name):
            reference = "${" + name[:40] + "}"
            raise ValueError(f"{reference} is not a variable reference (${{NAME}} or ${{NAME:-d}})")
        if name in env:
            out.append(env[name])
        elif colon_dash:
            out.append(_expand(default, env, path, missing, depth + 1))
        else:
            missing.append((path, f"environment variable {name} is not set (in ${{{name}}})"))
        position = end + 1
    out.append(text[position:])
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    """The index of the } that closes a ${ whose body starts at `start` (nested ${...} count)."""
    depth = 1
    for index in range(start, len(text)):
        if text.startswith("${", index):
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    raise ValueError("a ${ without its closing }")


# --- building domain objects -------------------------------------------------------------------


class _Problems:
    def __init__(self, file: str, located: _Located, data: Any) -> None:
        self.file = file
        self.located = located
        self.data = data
        self.items: list[Problem] = []
        self.settled: set[tuple[str | int, ...]] = set()  # paths already reported

    def job_id_at(self, path: tuple[str | int, ...]) -> str | None:
        if len(path) >= 2 and path[0] == "jobs" and isinstance(path[1], int):
            jobs = self.data.get("jobs") if isinstance(self.data, dict) else None
            if isinstance(jobs, list) and path[1] < len(jobs) and isinstance(jobs[path[1]], dict):
                job_id = jobs[path[1]].get("id")
                return str(job_id) if job_id is not None else f"#{path[1] + 1}"
        return None

    def sorted(self) -> list[Problem]:
        return sorted(self.items, key=lambda p: (p.line is None, p.line or 0))

    def add(self, path: tuple[str | int, ...], message: str) -> None:
        if path in self.settled:
            return
        job_id = self.job_id_at(path)
        field_path = path[2:] if job_id is not None else path
        field = ".".join(str(p) for p in field_path) or None
        self.items.append(Problem(self.file, _line(self.located, path), message, job_id, field))


def _validation_messages(exc: ValidationError) -> list[tuple[tuple[str | int, ...], str]]:
    out = []
    for error in exc.errors():
        loc = tuple(
            p for p in error["loc"] if not (isinstance(p, str) and p.startswith(("str", "dict")))
        )
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "literal_error" and loc == ("version",):
            message = "unsupported version; expected 1"
        out.append((loc, message.removeprefix("Value error, ")))
    return out


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


def _schedule(raw: _Schedule, default_zone: str) -> Schedule:
    if (raw.cron is None) == (raw.every is None):
        raise ValueError("give exactly one of cron or every")
    jitter = parse_duration(raw.jitter)
    if raw.every is not None:
        every = parse_duration(raw.every)
        if every < 1:
            raise ValueError("every must be at least 1s")
        if raw.timezone is not None:
            raise ValueError("timezone applies to cron schedules only")
        if jitter >= every:
            raise ValueError("jitter must be shorter than the interval")
        return IntervalSchedule(every_s=every, jitter_s=jitter)
    assert raw.cron is not None
    zone = _zone(raw.timezone or default_zone)
    try:
        fires = schedules.cron_fires(raw.cron)
    except ValueError as exc:
        raise ValueError(f"invalid cron expression {raw.cron[:100]!r}: {exc}") from exc
    if not fires:
        raise ValueError(f"cron expression {raw.cron!r} never fires (no such date)")
    gap = schedules.cron_gap_within(raw.cron, jitter)
    if gap is not None:
        raise ValueError(
            f"jitter must be shorter than the time between two firings ({_describe_s(gap)} "
            f"in {raw.cron!r})"
        )
    return CronSchedule(expression=raw.cron, timezone=zone, jitter_s=jitter)


def _describe_s(gap: timedelta) -> str:
    seconds = int(gap.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _actions(
    raw: list[str | dict[str, Any]], at: tuple[str | int, ...], problems: _Problems
) -> tuple[ActionSpec, ...]:
    specs = []
    for index, item in enumerate(raw):
        path = (*at, index)
        options: Any
        if isinstance(item, str):
            name, options = item, {}
        elif len(item) == 1:
            name, options = next(iter(item.items()))
            options = options or {}
        else:
            problems.add(
                path, "an action with options is a mapping with one key, the action's name"
            )
            continue
        model = ACTION_OPTIONS.get(name)
        if model is None:
            close = difflib.get_close_matches(str(name), list(ACTION_OPTIONS), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            known = ", ".join(sorted(ACTION_OPTIONS))
            problems.add(path, f"unknown action {name!r} ({hint}known: {known})")
            continue
        if not isinstance(options, dict):
            problems.add((*path, name), "options must be a mapping")
            continue
        try:
            parsed = model.model_validate(options)
        except ValidationError as exc:
            for loc, message in _validation_messages(exc):
                problems.add((*path, name, *loc), message)
            continue
        specs.append(ActionSpec(name=name, options=freeze(parsed.model_dump())))
    return tuple(specs)


def _job(raw: _Job, index: int, default_zone: str, problems: _Problems) -> Job | None:
    at: tuple[str | int, ...] = ("jobs", index)
    before = len(problems.items)
    if not _JOB_ID.match(raw.id):
        problems.add((*at, "id"), "job ids are letters, digits and - _ . : (no spaces)")
    schedule = None
    if raw.schedule is not None:
        try:
            schedule = _schedule(raw.schedule, default_zone)
        except ValueError as exc:
            problems.add((*at, "schedule"), str(exc))
    actions = _actions(raw.actions, (*at, "actions"), problems)
    _check_action_mix(raw, at, problems)
    try:
        grace = parse_duration(raw.misfire_grace)
    except ValueError as exc:
        problems.add((*at, "misfire_grace"), str(exc))
        grace = 0.0
    if len(problems.items) > before:
        return None
    targets = TargetSelector(
        sites=tuple(raw.targets.sites),
        labels=tuple(raw.targets.labels),
        exclude=tuple(raw.targets.exclude),
        environment=raw.targets.environment,
    )
    return Job(
        id=raw.id,
        schedule=schedule,
        targets=targets,
        actions=actions,
        concurrency=raw.concurrency,
        on_failure=raw.on_failure,
        misfire_grace_s=grace,
        company=raw.company or DEFAULT_COMPANY,
        allow_scheduled=raw.allow_scheduled,
        catch_up_s=None if raw.catch_up is False else float(raw.catch_up),
        timeout_s=float(raw.timeout),
        heartbeat_url=Secret(raw.heartbeat_url) if raw.heartbeat_url else None,
    )


def _check_action_mix(raw: _Job, at: tuple[str | int, ...], problems: _Problems) -> None:
    names = [str(a) if isinstance(a, str) else str(next(iter(a), "")) for a in raw.actions]
    for index, name in enumerate(names):
        path = (*at, "actions", index)
        if name in ON_DEMAND_ACTIONS and raw.schedule is not None and not raw.allow_scheduled:
            problems.add(
                path,
                f"{name} is an on-demand action: use it in a job without a schedule (run it with "
                "`trigger`), or set allow_scheduled: true",
            )
        if name == "push_to_live" and raw.targets.environment == "live":
            problems.add(
                (*at, "targets", "environment"),
                "push_to_live pushes a staging environment to live: set environment: staging "
                "(or the staging environment's name)",
            )
    company_level = [n for n in names if n in COMPANY_ACTIONS]
    if company_level and len(names) > len(company_level) and raw.actions:
        problems.add(
            (*at, "actions"),
            f"{', '.join(company_level)} acts on the company, not on environments: put it in a "
            "job of its own",
        )


def default_database_url(config_path: Path) -> str:
    """The history when jobs.yaml names none: a SQLite file beside it."""
    return f"sqlite:///{(config_path.parent / DEFAULT_DATABASE_FILE).resolve()}"


def _database_url(raw: str | None, config_path: Path, override: str | None) -> str:
    if override:
        return override
    if raw is None:
        return default_database_url(config_path)
    # A relative SQLite path in jobs.yaml is relative to the file, not to the working directory.
    if raw.startswith("sqlite:///") and not raw.startswith("sqlite:////") and ":memory:" not in raw:
        return f"sqlite:///{(config_path.parent / raw.removeprefix('sqlite:///')).resolve()}"
    return raw


def _kinsta(raw: _Kinsta, env: Mapping[str, str]) -> KinstaSettings:
    # With a companies list each company's key comes from its own entry (${VAR} in jobs.yaml);
    # KINSTA_API_KEY and KINSTA_COMPANY_ID describe the single company otherwise.
    key = None if raw.companies else env.get(ENV_API_KEY) or raw.api_key or None
    polling = raw.polling
    companies = tuple(
        Company(c.name, Secret(c.api_key) if c.api_key else None, c.company_id or None)
        for c in raw.companies
    )
    return KinstaSettings(
        api_key=Secret(key) if key else None,
        company_id=None if raw.companies else env.get(ENV_COMPANY_ID) or raw.company_id or None,
        companies=companies,
        hosting_api_url=(raw.hosting_api_url or DEFAULT_HOSTING_API_URL).rstrip("/"),
        api_url=(env.get(ENV_API_URL) or raw.api_url or DEFAULT_API_URL).rstrip("/"),
        site_base_url=env.get(ENV_SITE_BASE_URL) or raw.site_base_url or None,
        rate_limits=RateLimits(
            per_minute=raw.rate_limits.per_minute,
            creation_per_minute=raw.rate_limits.creation_per_minute,
            logs_per_minute=raw.rate_limits.logs_per_minute,
            per_ip_per_minute=raw.rate_limits.per_ip_per_minute,
            ip_key=raw.rate_limits.ip_key,
            window_s=float(raw.rate_limits.window),
            creation_endpoints=tuple(raw.rate_limits.creation_endpoints),
        ),
        polling=Polling(
            first_poll_s=float(polling.first_poll),
            max_interval_s=float(polling.max_interval),
            not_found_grace_s=float(polling.not_found_grace),
            deadline_s=float(polling.deadline),
            read_back_s=float(polling.read_back) if polling.read_back is not None else None,
        ),
        timeout_s=float(raw.timeout),
    )


def parse(
    text: str,
    file: str,
    env: Mapping[str, str],
    *,
    database_override: str | None = None,
    require_api_key: bool = False,
    sandbox: bool = False,
) -> Config:
    """Validate the text of a jobs.yaml; raise ConfigError listing every problem. Jobs marked
    `sandbox_only` are validated but left out unless `sandbox`."""
    located, problems_found = _load_yaml(text, file)
    problems = _Problems(file, located, located.data)
    problems.items.extend(problems_found)
    if not isinstance(located.data, dict):
        problems.add((), "the file must be a mapping with at least 'version: 1'")
        raise ConfigError(problems.sorted())
    missing: list[Any] = []
    data = _interpolate(located.data, env, (), missing)
    for path, message in missing:
        problems.add(path, message)
    # A value whose ${...} failed is reported once: not again for what it became.
    problems.settled = {path for path, _ in missing}
    try:
        raw: _File | None = _File.model_validate(data)
    except ValidationError as exc:
        raw = None
        for loc, message in _validation_messages(exc):
            problems.add(loc, message)
    zone = _top_zone(data.get("timezone", "UTC"), problems)
    jobs = _jobs(data.get("jobs"), zone, problems, sandbox=sandbox)
    if raw is None:
        raise ConfigError(problems.sorted())
    override = database_override or env.get(ENV_DATABASE_URL)
    kinsta = _kinsta(raw.kinsta, env)
    _check_keys(raw.kinsta, env, problems)
    _check_env_urls(env, problems)
    _check_companies(raw, kinsta, jobs, problems, require_api_key=require_api_key)
    if problems.items:
        raise ConfigError(problems.sorted())
    return Config(
        path=file,
        revision=hashlib.sha256(text.encode()).hexdigest()[:12],
        timezone=zone,
        database_url=_database_url(raw.database, Path(file), override),
        kinsta=kinsta,
        sandbox=SandboxSettings(**raw.sandbox.model_dump()),
        jobs=tuple(jobs),
        retention=Retention(float(raw.retention.older_than), raw.retention.keep_last)
        if raw.retention
        else None,
        notify=_notify(raw.notify),
        daemon=DaemonSettings(
            shutdown_timeout_s=float(raw.daemon.shutdown_timeout),
            heartbeat_s=float(raw.daemon.heartbeat),
            db_retry_s=float(raw.daemon.db_retry),
        ),
    )


def _check_keys(raw: _Kinsta, env: Mapping[str, str], problems: _Problems) -> None:
    """An API key goes into an HTTP header: one that cannot (a line break pasted with it, a
    curly quote) is reported here, never echoed, rather than failing at the first request."""
    if not raw.companies and env.get(ENV_API_KEY):
        _check_key(env[ENV_API_KEY], (), problems, variable=ENV_API_KEY)
    elif not raw.companies and raw.api_key:
        _check_key(raw.api_key, ("kinsta", "api_key"), problems)
    for index, company in enumerate(raw.companies):
        if company.api_key:
            _check_key(company.api_key, ("kinsta", "companies", index, "api_key"), problems)


def _check_env_urls(env: Mapping[str, str], problems: _Problems) -> None:
    for variable in (ENV_API_URL, ENV_SITE_BASE_URL):
        problem = url_problem(env[variable]) if variable in env else None
        if problem is not None:  # no line in the file to point at
            problems.items.append(Problem(problems.file, None, f"{variable}: the URL {problem}"))


def _check_key(
    key: str, at: tuple[str | int, ...], problems: _Problems, *, variable: str | None = None
) -> None:
    problem = token_problem(key)
    if problem is None:
        return
    if variable is None:
        problems.add(at, f"the API key {problem}")
    else:  # from the environment: there is no line in the file to point at
        problems.items.append(Problem(problems.file, None, f"{variable}: the API key {problem}"))


def _notify(raw: _Notify) -> Notify:
    slack = [raw.slack] if isinstance(raw.slack, str) else raw.slack
    hooks = [Webhook("slack", Secret(u)) for u in slack] + [
        Webhook("json", Secret(u)) for u in raw.webhooks
    ]
    return Notify(
        webhooks=tuple(hooks),
        on=frozenset(raw.on),
        heartbeat_url=Secret(raw.heartbeat_url) if raw.heartbeat_url else None,
    )


def _check_companies(
    raw: _File,
    kinsta: KinstaSettings,
    jobs: list[Job],
    problems: _Problems,
    *,
    require_api_key: bool,
) -> None:
    listed = bool(raw.kinsta.companies)
    if listed and raw.kinsta.api_key:
        problems.add(("kinsta", "api_key"), "with a companies list, give each company its api_key")
    names = [c.name for c in kinsta.all_companies()]
    for index, company in enumerate(kinsta.all_companies()):
        if company.name in names[:index]:
            problems.add(
                ("kinsta", "companies", index, "name"), f"duplicate company name {company.name!r}"
            )
        if require_api_key and company.api_key is None:
            if listed:
                problems.add(
                    ("kinsta", "companies", index), f"company {company.name!r} has no api_key"
                )
            else:
                problems.add(("kinsta",), f"no API key: set {ENV_API_KEY} (or use --sandbox)")
    _assign_companies(raw.jobs, jobs, names, problems)


def _assign_companies(
    raw_jobs: list[Any], jobs: list[Job], names: list[str], problems: _Problems
) -> None:
    """Each job names its company; with exactly one company it may leave it out."""
    by_id = {job.id: position for position, job in enumerate(jobs)}
    for index, raw_job in enumerate(raw_jobs):
        position = by_id.get(str(raw_job.get("id"))) if isinstance(raw_job, dict) else None
        if position is None:
            continue  # the job itself is invalid and already reported
        named = "company" in raw_job
        if not named and len(names) > 1:
            problems.add(
                ("jobs", index),
                f"several companies are listed: name one with company: ({', '.join(names)})",
            )
        elif named and jobs[position].company not in names:
            problems.add(
                ("jobs", index, "company"),
                f"unknown company {jobs[position].company!r} (known: {', '.join(names)})",
            )
        elif not named:
            jobs[position] = replace(jobs[position], company=names[0])


def _top_zone(value: Any, problems: _Problems) -> str:
    if not isinstance(value, str):
        return "UTC"  # the model reports the wrong type
    try:
        return _zone(value)
    except ValueError as exc:
        problems.add(("timezone",), str(exc))
        return "UTC"


def _jobs(raw_jobs: Any, zone: str, problems: _Problems, *, sandbox: bool) -> list[Job]:
    if not isinstance(raw_jobs, list):
        return []
    jobs: list[Job] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw_jobs):
        try:
            raw_job = _Job.model_validate(item)
        except ValidationError as exc:
            for loc, message in _validation_messages(exc):
                problems.add(("jobs", index, *loc), message)
            continue
        if raw_job.id in seen:
            first = seen[raw_job.id] + 1
            problems.add(("jobs", index, "id"), f"duplicate job id (first at job #{first})")
            continue
        seen[raw_job.id] = index
        job = _job(raw_job, index, zone, problems)
        if job is not None and (sandbox or not raw_job.sandbox_only):
            jobs.append(job)
    return jobs


_NOT_FOUND = (
    f"file not found: name it with --config PATH or {ENV_CONFIG} (in a container, mount the "
    'directory that holds it, for example -v "$PWD/data:/data")'
)


def resolve_path(flag: str | None, env: Mapping[str, str]) -> Path:
    return Path(flag or env.get(ENV_CONFIG) or DEFAULT_CONFIG)


def load(
    path: Path,
    env: Mapping[str, str] | None = None,
    *,
    database_override: str | None = None,
    require_api_key: bool = False,
    sandbox: bool = False,
) -> Config:
    environ = dict(os.environ) if env is None else env
    try:
        with path.open("rb") as stream:  # read no more than the bound (a device never ends)
            raw = stream.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise ConfigError([Problem(str(path), None, _TOO_LARGE)])
        text = raw.decode("utf-8")
    except FileNotFoundError as exc:
        raise ConfigError([Problem(str(path), None, _NOT_FOUND)]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(str(path), None, f"cannot read: {exc}")]) from exc
    return parse(
        text,
        str(path),
        environ,
        database_override=database_override,
        require_api_key=require_api_key,
        sandbox=sandbox,
    )
