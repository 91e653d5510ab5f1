"""Frozen value objects shared by every layer. No I/O, no third-party imports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from scheduler.blackouts import Blackout
from scheduler.branding import ReportBranding
from scheduler.rollout import HaltAfter, Rollout
from scheduler.sandbox_values import SandboxSettings
from scheduler.secret import Secret as Secret  # noqa: PLC0414 (re-exported: its old home)
from scheduler.slack.settings import SlackCommands

DEFAULT_API_URL = "https://api.kinsta.com/v2"


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    MISSED = "missed"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"  # stopped by hand (`cancel`): what was in flight finished first
    HALTED = "halted"  # stopped by its circuit breaker: what was in flight finished first


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    ROLLED_BACK = "rolled_back"  # a safe update failed its checks and the backup was restored
    INTERRUPTED = "interrupted"  # its process stopped before the task could finish

    @property
    def is_failure(self) -> bool:
        return self in (TaskStatus.FAILED, TaskStatus.ROLLED_BACK)


class RunTrigger(StrEnum):
    SCHEDULE = "schedule"
    CATCH_UP = "catch_up"
    MANUAL = "manual"  # `trigger JOB` on the command line
    SLACK = "slack"  # a Slack slash command (scheduler.slack); who asked is the run's requested_by
    BACKFILL = "backfill"  # `backfill`: a past slot that never ran, run on purpose

    @property
    def on_demand(self) -> bool:
        """Asked for by someone, not a slot: such runs never claim or count as a job's slot."""
        return self in ON_DEMAND_TRIGGERS


ON_DEMAND_TRIGGERS = frozenset({RunTrigger.MANUAL, RunTrigger.SLACK})


class OperationState(StrEnum):
    PENDING = "pending"  # accepted; Kinsta may still answer 404 for a while
    IN_PROGRESS = "in_progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"  # our deadline passed; Kinsta may still finish it
    # Recovery cannot tell this operation's outcome: its id now names a newer operation on the
    # same environment (Kinsta's ids may repeat per environment).
    UNKNOWN = "unknown"


FINAL_OPERATION_STATES = frozenset(OperationState) - {
    OperationState.PENDING,
    OperationState.IN_PROGRESS,
}


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    timezone: str
    jitter_s: float = 0.0


@dataclass(frozen=True)
class IntervalSchedule:
    every_s: float
    jitter_s: float = 0.0


Schedule = CronSchedule | IntervalSchedule


@dataclass(frozen=True)
class TargetSelector:
    sites: tuple[str, ...] = ("*",)
    labels: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    environment: str = "live"
    # Narrowed for one run (`trigger --site/--environment`): only these of the job's targets.
    only_sites: tuple[str, ...] = ()
    only_environment: str | None = None


@dataclass(frozen=True)
class ActionSpec:
    """One of a job's actions: its name in the catalogue (scheduler.actions) and its options,
    an instance of the options model the catalogue declares for it (None: its defaults)."""

    name: str
    options: object = None


# The most targets a run works on at once: `concurrency: auto` stops there, and an explicit
# `concurrency: N` may not ask for more (each target in flight holds a thread and a lease).
MAX_CONCURRENCY = 512


@dataclass(frozen=True)
class Job:
    id: str
    schedule: Schedule | None
    targets: TargetSelector
    actions: tuple[ActionSpec, ...]
    concurrency: int | None = None  # targets at once at most; None: auto (follows the budget)
    on_failure: str = "stop"
    misfire_grace_s: float = 300.0
    company: str = "default"
    allow_scheduled: bool = False  # lets on-demand actions run on a schedule
    catch_up_s: float | None = 3600.0  # missed slots this recent run once on start; None: never
    timeout_s: float = 7200.0  # after this no new task starts and the run ends failed
    heartbeat_url: Secret | None = None  # this job's only (start, success); else notify's
    rollout: Rollout | None = None  # None: every target as the budget allows
    halt_after: HaltAfter | None = None  # None: no circuit breaker
    overlap: str = "skip"  # a slot due while a run goes: skip|buffer_one|allow|cancel_previous
    enabled: bool = True  # False: every slot is recorded skipped (scheduler.pauses)
    blackouts: tuple[Blackout, ...] = ()  # its own, besides the file's (Config.blackouts)


@dataclass(frozen=True)
class RateLimits:
    per_minute: int = 120
    creation_per_minute: int = 5
    logs_per_minute: int = 35
    per_ip_per_minute: int = 1000
    # What the per-IP bucket is keyed by: processes with the same key share one per-IP budget.
    # Kinsta counts requests per egress address, so replicas behind one NAT must share a key
    # (their egress IP, say). None: this host's name, which suits hosts with their own address.
    ip_key: str | None = None
    window_s: float = 60.0  # Kinsta's window; tests and benchmarks shrink it to scale time
    # Requests that count against the creation limit, as "METHOD /path/{param}" (the API docs'
    # notation). Kinsta does not list them; these create sites and environments.
    creation_endpoints: tuple[str, ...] = (
        "POST /sites",
        "POST /sites/clone",
        "POST /sites/plain",
        "POST /sites/{site_id}/environments",
        "POST /sites/{site_id}/environments/plain",
        "POST /sites/{site_id}/environments/clone",
    )


@dataclass(frozen=True)
class Polling:
    """How operations are polled. Durations are seconds of real time."""

    first_poll_s: float = 3.0
    max_interval_s: float = 30.0
    not_found_grace_s: float = 30.0
    deadline_s: float = 1800.0
    # How long state is read back after an uncertain answer (a change that may or may not have
    # reached Kinsta) before the task is recorded uncertain. None: READ_BACK_INTERVALS polls
    # at max_interval (5 min by default), never past the deadline.
    read_back_s: float | None = None

    @property
    def read_back_window_s(self) -> float:
        wanted = self.read_back_s
        if wanted is None:
            wanted = READ_BACK_INTERVALS * self.max_interval_s
        return min(wanted, self.deadline_s)


READ_BACK_INTERVALS = 10

DEFAULT_COMPANY = "default"


@dataclass(frozen=True)
class Company:
    """One Kinsta company: its own key, so its own rate buckets."""

    name: str
    api_key: Secret | None
    company_id: str | None = None


@dataclass(frozen=True)
class KinstaSettings:
    api_key: Secret | None
    company_id: str | None
    api_url: str = DEFAULT_API_URL
    rate_limits: RateLimits = RateLimits()
    polling: Polling = Polling()
    timeout_s: float = 30.0
    companies: tuple[Company, ...] = ()
    # Verification GETs go to https://<domain>/ unless this is set: then to this base URL with
    # the domain in the Host header (a proxy, or a standalone sandbox serving its fake sites).
    site_base_url: str | None = None

    def all_companies(self) -> tuple[Company, ...]:
        """The companies jobs may name; one called "default" when jobs.yaml lists none."""
        return self.companies or (Company(DEFAULT_COMPANY, self.api_key, self.company_id),)


@dataclass(frozen=True)
class Webhook:
    kind: str  # "slack" (incoming webhook) or "json" (generic JSON POST)
    url: Secret  # webhook URLs carry their own credentials: masked like API keys


@dataclass(frozen=True)
class Smtp:
    """E-mail's server (from the environment): STARTTLS required; a login when `user` is set."""

    host: str
    sender: str  # the From address
    port: int = 587
    user: str | None = None
    password: Secret | None = None


HEARTBEAT_START = "/start"  # Healthchecks' convention: <url>/start when a run starts


@dataclass(frozen=True)
class Notify:
    webhooks: tuple[Webhook, ...] = ()
    on: frozenset[str] = frozenset({"failure", "recovery", "missed", "cancelled", "halted"})
    heartbeat_url: Secret | None = None  # pinged by the jobs without a heartbeat_url of their own
    heartbeat_start: str | None = HEARTBEAT_START  # the start ping's suffix; None: no ping
    email: tuple[str, ...] = ()  # recipients of every message (not of heartbeats)
    smtp: Smtp | None = None  # set whenever `email` is
    slack_commands: SlackCommands | None = None  # None: POST /slack/commands does not exist


@dataclass(frozen=True)
class DaemonSettings:
    shutdown_timeout_s: float = 30.0  # running tasks get this long to reach a safe point
    heartbeat_s: float = 15.0  # a running run's heartbeat; 4 missed ones mark its owner gone
    db_retry_s: float = 120.0  # how long writes retry while the history database is unreachable


@dataclass(frozen=True)
class Retention:
    """History kept by the daemon: runs older than `older_than_s` go, each job's newest
    `keep_last` stay."""

    older_than_s: float
    keep_last: int = 20


@dataclass(frozen=True)
class Config:
    path: str
    revision: str
    timezone: str
    database_url: str
    kinsta: KinstaSettings
    sandbox: SandboxSettings
    jobs: tuple[Job, ...]
    retention: Retention | None = None
    notify: Notify = Notify()
    daemon: DaemonSettings = DaemonSettings()
    blackouts: tuple[Blackout, ...] = ()  # every job's slots inside one are skipped
    report: ReportBranding = field(default_factory=ReportBranding)  # `report:`: reports

    def job(self, job_id: str) -> Job | None:
        return next((j for j in self.jobs if j.id == job_id), None)


@dataclass(frozen=True)
class Target:
    """One Kinsta environment a run acts on."""

    site_id: str
    site_name: str
    environment_id: str
    environment_name: str
    labels: tuple[str, ...] = ()
    primary_domain: str | None = None
    cdn_cache_id: str | None = None
    edge_cache_id: str | None = None  # Kinsta's id_edge_cache: none, no edge cache to clear
    php_version: str | None = None  # "8.3", as Kinsta reported it when targets were resolved
    wordpress_version: str | None = None

    @property
    def key(self) -> str:
        return f"{self.site_name}/{self.environment_name}"


@dataclass(frozen=True)
class CancelRequest:  # an operator asked a running run to stop: when, who (user@host), why
    at: datetime
    by: str
    reason: str | None = None


@dataclass(frozen=True)
class Run:
    run_id: int
    job_id: str
    trigger: RunTrigger
    scheduled_for: datetime
    started_at: datetime | None
    finished_at: datetime | None
    status: RunStatus
    tasks_total: int = 0
    tasks_failed: int = 0
    error: str | None = None
    started_by: str | None = None
    targets: tuple[str, ...] = ()
    # Fences every write of a running run: replaced when another process adopts it, so the
    # process that lost it can no longer start, finish or record anything in it.
    owner_token: str | None = None
    cancel: CancelRequest | None = None  # asked to stop; it ends `cancelled` once settled
    # Who asked for an on-demand run ("slack:U0123ABC (alice)"); started_by is the process.
    requested_by: str | None = None


@dataclass(frozen=True)
class OperationEvent:
    at: datetime
    state: OperationState
    http_status: int | None = None
    message: str | None = None
    waited_s: float | None = None  # how long the poll that saw this waited for rate budget
    # Seen late (by recovery, after its process stopped): says nothing about how long such an
    # operation takes, so it never trains the duration estimate.
    late: bool = False


@dataclass(frozen=True)
class OperationRecord:
    operation_id: str
    action: str
    state: OperationState
    started_at: datetime
    finished_at: datetime | None
    polls: int
    message: str | None
    events: tuple[OperationEvent, ...] = ()


@dataclass(frozen=True)
class GovernorEvent:
    """Something the rate governor did: rate_limited, key_shared, ledger_unavailable, long_wait."""

    at: datetime
    scope: str  # the API key's fingerprint
    kind: str
    seconds: float | None
    detail: str | None


@dataclass(frozen=True)
class DaemonEvent:
    """started, stopped, config_reloaded, config_rejected, config_missing."""

    at: datetime
    owner: str | None
    kind: str
    detail: str | None


@dataclass(frozen=True)
class NotificationRecord:
    """One attempt to deliver a notification, and whether it arrived."""

    at: datetime
    job_id: str | None
    run_id: int | None
    kind: str  # failure, recovery, missed, cancelled, halted, heartbeat, start
    channel: str  # slack, json, email, heartbeat
    destination: str | None  # scheme and host only
    ok: bool
    detail: str | None = None


@dataclass(frozen=True)
class SiteAction:
    """The latest outcome of one action on one environment, whatever run it came from."""

    site: str
    environment: str
    action: str
    last_run_id: int
    last_status: TaskStatus
    last_finished_at: datetime
    last_message: str | None = None
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_failure_message: str | None = None


@dataclass(frozen=True)
class Task:
    task_id: int
    run_id: int
    site: str
    environment: str
    action: str
    status: TaskStatus
    operation_id: str | None = None
    operation_status: str | None = None
    message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    site_id: str | None = None
    environment_id: str | None = None
    operations: tuple[OperationRecord, ...] = ()
    versions_before: Mapping[str, Any] | None = None  # {"plugins": {name: version}, ...}
    versions_after: Mapping[str, Any] | None = None
    result: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class InventorySnapshot:
    """What one environment looked like when an `inventory` task read it."""

    site: str
    environment: str
    taken_at: datetime
    php_version: str | None
    wordpress_version: str | None
    plugins: tuple[Mapping[str, Any], ...]  # name, version, update_version (None: current)
    themes: tuple[Mapping[str, Any], ...]
    backups: tuple[Mapping[str, Any], ...]  # id, type, note, created_at (ISO, UTC)
    run_id: int | None = None

    @property
    def pending_updates(self) -> int:
        return sum(1 for item in (*self.plugins, *self.themes) if item.get("update_version"))
