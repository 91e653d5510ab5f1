"""The shape of jobs.yaml as pydantic models (each job validated on its own: one bad job hides
no other). Only the config package sees them; actions' options models live beside their actions."""

from __future__ import annotations

import itertools
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from scheduler.config.report import ReportModel
from scheduler.config.slack import SlackCommandsModel
from scheduler.domain import HEARTBEAT_START, MAX_CONCURRENCY, RateLimits
from scheduler.sandbox_values import (
    Effect,
    SandboxOffer,
    SandboxRelease,
    SandboxSettings,
    parse_version,
)
from scheduler.values import Duration, address_problem, parse_duration, parse_positive_duration

MAX_COUNT = 1_000_000  # for rate limits and counts: no sane value is near it, SQL holds it
RETENTION_MIN_S = 86_400.0  # a retention shorter than a day cannot be meant
ENDPOINT = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) /[A-Za-z0-9_{}/.-]*$")
START_SUFFIX = re.compile(r"[/?][A-Za-z0-9_.~=&/-]{1,100}")  # added to a heartbeat URL


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


class KinstaModel(_Model):
    api_key: str | None = None
    company_id: str | None = None
    api_url: str | None = None
    # No longer used (the hosting client is gone): still accepted and checked as a URL.
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


def _version(value: object, *, every: bool = False) -> str | None:
    """A pydantic validator: a version string (YAML makes a number of 2.0)."""
    return parse_version(value, every=every)


class _BadRelease(_Model):
    name: str = Field(min_length=1)
    version: str | None = None  # absent, null or "*": every version an update installs
    effect: str

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: object) -> str | None:
        return _version(value, every=True)

    @field_validator("effect", mode="before")
    @classmethod
    def _effect(cls, value: object) -> str:
        return str(Effect.parse(str(value)))


class _Offer(_Model):
    name: str = Field(min_length=1)
    version: str | None  # null: no update on offer
    sites: list[str] = Field(["*"], min_length=1)
    environment: str | None = None
    installed: str | None = None
    kind: Literal["plugin", "theme"] | None = None

    @field_validator("version", "installed", mode="before")
    @classmethod
    def _version(cls, value: object) -> str | None:
        return _version(value)

    @model_validator(mode="after")
    def _exact_name(self) -> _Offer:
        if self.installed is not None and set(self.name) & set("*?["):
            raise ValueError("a plugin or theme to install is named exactly, not by a pattern")
        return self


class _Sandbox(_Model):
    sites: int = Field(6, ge=1, le=5000)
    seed: int = Field(1, ge=-(2**63), lt=2**63)
    time_scale: float = Field(1.0, gt=0, le=100)
    duration_spread: float = Field(SandboxSettings.duration_spread, ge=0, le=2)
    seeded_updates: bool = True
    bad_releases: list[_BadRelease] = []
    offers: list[_Offer] = []

    def settings(self) -> SandboxSettings:
        return SandboxSettings(
            sites=self.sites,
            seed=self.seed,
            time_scale=self.time_scale,
            duration_spread=self.duration_spread,
            seeded_updates=self.seeded_updates,
            bad_releases=tuple(
                SandboxRelease(r.name, r.version, r.effect) for r in self.bad_releases
            ),
            offers=tuple(
                SandboxOffer(o.name, o.version, tuple(o.sites), o.environment, o.installed, o.kind)
                for o in self.offers
            ),
        )


class ScheduleModel(_Model):
    cron: str | None = None
    every: Duration | None = None
    timezone: str | None = None
    jitter: Duration = 0.0


class _Targets(_Model):
    sites: list[str] = ["*"]
    labels: list[str] = []
    exclude: list[str] = []
    environment: str = "live"


_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_COUNT = {"type": "integer", "minimum": 1, "maximum": MAX_COUNT}
_SHARE = {
    "anyOf": [_COUNT, {"type": "string", "pattern": _PERCENT.pattern}],
    "description": 'a number of targets (3) or a percentage of them ("5%")',
}
_CONCURRENCY = {"anyOf": [{"const": "auto"}, {**_COUNT, "maximum": MAX_CONCURRENCY}]}
ShareValue = Annotated[int | str, Field(union_mode="left_to_right"), WithJsonSchema(_SHARE)]
Concurrency = Annotated[int | str, Field(union_mode="left_to_right"), WithJsonSchema(_CONCURRENCY)]


def share_parts(value: object) -> tuple[int | None, float | None]:
    """A count (3) or a percentage ("5%") of targets, as (count, percent); ValueError else."""
    if isinstance(value, int) and not isinstance(value, bool):
        if 1 <= value <= MAX_COUNT:
            return value, None
        raise ValueError("a number of targets must be at least 1")
    if isinstance(value, str):
        found = _PERCENT.match(value)
        if found is not None:
            percent = float(found[1])
            if 0 < percent <= 100:
                return None, percent
            raise ValueError("a percentage must be above 0% and at most 100%")
    raise ValueError('give a number of targets (3) or a percentage of them ("5%")')


def _share(value: object) -> object:
    share_parts(value)
    return value


class CanaryModel(_Model):
    labels: list[str] = []
    sites: list[str] = []


class RolloutModel(_Model):
    """`rollout:` of a job: canary first, then waves, each after the one before ended."""

    canary: ShareValue | CanaryModel | None = None
    waves: list[ShareValue] = Field(default=["100%"], min_length=1)
    pause: Duration = 0.0

    @field_validator("canary", mode="before")
    @classmethod
    def _canary(cls, value: object) -> object:
        if isinstance(value, dict):
            if not value or len([k for k, v in value.items() if v]) != 1:
                raise ValueError("give a number, a percentage, {labels: [...]} or {sites: [...]}")
            return value
        return None if value is None else _share(value)

    @field_validator("waves", mode="before")
    @classmethod
    def _waves(cls, value: object) -> object:
        if not isinstance(value, list):
            return value  # the model says what is wrong
        shares = [share_parts(item) for item in value]
        percents = [p for _, p in shares if p is not None]
        counts = [c for c, _ in shares if c is not None]
        if percents and counts:
            raise ValueError("give every wave as a percentage, or every wave as a number")
        steps = percents or counts
        if any(later <= earlier for earlier, later in itertools.pairwise(steps)):
            raise ValueError("each wave must reach further than the one before (they add up)")
        return value

    @field_validator("pause")
    @classmethod
    def _pause(cls, value: str | float) -> float:
        return parse_duration(value)


class HaltAfterModel(_Model):
    """`halt_after:` of a job: the circuit breaker."""

    rolled_back: ShareValue | None = None
    failed: ShareValue | None = None

    @field_validator("rolled_back", "failed", mode="before")
    @classmethod
    def _limit(cls, value: object) -> object:
        return None if value is None else _share(value)


class JobModel(_Model):
    id: str
    schedule: ScheduleModel | None = None
    targets: _Targets = _Targets()
    actions: list[str | dict[str, Any]] = Field(min_length=1)
    # auto: targets start while the rate budget has room for them (scheduler/run/admission.py);
    # a number caps them as well.
    concurrency: Concurrency = "auto"
    on_failure: Literal["stop", "continue"] = "stop"
    misfire_grace: Duration = 300.0
    company: str | None = None
    allow_scheduled: bool = False
    catch_up: Duration | Literal[False] = 3600.0
    timeout: Duration = 7200.0
    heartbeat_url: str | None = None
    sandbox_only: bool = False  # a demonstration: left out unless --sandbox
    rollout: RolloutModel | None = None
    halt_after: HaltAfterModel | None = None
    overlap: Literal["skip", "buffer_one", "allow", "cancel_previous"] = "skip"
    enabled: bool = True  # false: every slot is recorded skipped
    blackouts: list[Any] = []  # each checked on its own (config/blackouts.py)

    @field_validator("concurrency", mode="before")
    @classmethod
    def _concurrency(cls, value: object) -> int | str:
        if value == "auto":
            return "auto"
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_CONCURRENCY:
            return value
        raise ValueError(f"must be auto or a whole number from 1 to {MAX_CONCURRENCY}")

    @field_validator("catch_up", mode="before")  # before: pydantic would read true as 1.0
    @classmethod
    def _catch_up(cls, value: object) -> object:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return parse_duration(value)
        if value is not False:
            raise ValueError("give a duration such as 1h, or false")
        return value

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
        seconds = parse_duration(value)
        if seconds < RETENTION_MIN_S:  # `6m` is six minutes, not months
            raise ValueError(
                f"must be at least 1d: {value!r} is {seconds / 60:g} minute(s), which would prune "
                "nearly all history (m means minutes; write months as days, e.g. 180d)"
            )
        return seconds


class NotifyModel(_Model):
    slack: str | list[str] = []
    webhooks: list[str] = []
    on: list[Literal["failure", "recovery", "missed", "cancelled", "halted"]] = [
        "failure",
        "recovery",
        "missed",
        "cancelled",
        "halted",
    ]
    heartbeat_url: str | None = None
    slack_commands: SlackCommandsModel | None = None  # Slack slash commands (config/slack.py)
    heartbeat_start: str | bool = HEARTBEAT_START  # false: no start ping
    email: str | list[str] = []  # recipients; the mail server comes from the environment

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

    @field_validator("heartbeat_start")
    @classmethod
    def _start(cls, value: str | bool) -> str | bool:
        if value is False or (isinstance(value, str) and START_SUFFIX.fullmatch(value)):
            return value
        raise ValueError("give what the start ping adds to the URL (/start, ?state=run) or false")

    @field_validator("email")
    @classmethod
    def _addresses(cls, value: str | list[str]) -> str | list[str]:
        for address in [value] if isinstance(value, str) else value:
            problem = address_problem(address)
            if problem is not None:
                raise ValueError(f"{address[:60]!r} {problem}")
        return value


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


class FileModel(_Model):
    version: Literal[1]
    timezone: str = "UTC"
    database: str | None = None
    kinsta: KinstaModel = KinstaModel()
    sandbox: _Sandbox = _Sandbox()
    retention: _Retention | None = None
    notify: NotifyModel = NotifyModel()
    daemon: _Daemon = _Daemon()
    blackouts: list[Any] = []  # each checked on its own (config/blackouts.py)
    report: ReportModel = ReportModel()  # client reports' branding (config/report.py)
    jobs: list[Any] = []  # each job is validated on its own, so one bad job hides no other
