"""The history schema: the single source for Alembic. SQLAlchemy Core tables, named constraints.

runs        one firing of a job; unique (job_id, scheduled_for) for runs of a slot (not the
            on-demand ones: manual, slack), so a slot is claimed once across processes and
            restarts
tasks       one action on one target in a run
operations  each Kinsta operation a task started, with its status timeline and poll count
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend (SQLite drops tzinfo)."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        return dialect.type_descriptor(DateTime(timezone=dialect.name == "postgresql"))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the history store")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONDoc = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

RUN_STATUSES = (
    "running",
    "succeeded",
    "failed",
    "skipped",
    "missed",
    "interrupted",
    "cancelled",
    "halted",
)
TASK_STATUSES = (
    "pending",
    "running",
    "succeeded",
    "failed",
    "skipped",
    "rolled_back",
    "interrupted",
)
TRIGGERS = ("schedule", "catch_up", "manual", "slack", "backfill")
ON_DEMAND = "trigger NOT IN ('manual', 'slack')"  # runs asked for by someone claim no slot


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(200), nullable=False),
    Column("trigger", String(20), nullable=False),
    Column("scheduled_for", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime()),
    Column("finished_at", UTCDateTime()),
    Column("heartbeat_at", UTCDateTime()),
    Column("status", String(20), nullable=False),
    Column("tasks_total", Integer, nullable=False, server_default="0"),
    Column("tasks_failed", Integer, nullable=False, server_default="0"),
    Column("error", Text),
    Column("started_by", String(200)),
    Column("config_revision", String(64)),
    Column("targets", JSONDoc),
    # A new random token at each claim and adoption: every write of a running run is fenced by
    # it, so a process whose run was adopted elsewhere can no longer change it.
    Column("owner_token", String(64)),
    # An operator's `cancel`, written by any host; the run's process reads it back with each
    # heartbeat, stops starting targets, and ends the run `cancelled` once in-flight work ends.
    Column("cancel_requested_at", UTCDateTime()),
    Column("cancel_requested_by", String(200)),
    Column("cancel_reason", Text),
    # Who asked for an on-demand run: "slack:U0123ABC (alice)" (started_by is the process).
    Column("requested_by", String(200)),
    CheckConstraint(_one_of("status", RUN_STATUSES), name="status"),
    CheckConstraint(_one_of("trigger", TRIGGERS), name="trigger"),
    Index(
        "uq_runs_job_id_scheduled_for",
        "job_id",
        "scheduled_for",
        unique=True,
        sqlite_where=text(ON_DEMAND),
        postgresql_where=text(ON_DEMAND),
    ),
    Index("ix_runs_scheduled_for", "scheduled_for"),
    Index("ix_runs_status_scheduled_for", "status", "scheduled_for"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("site", String(200), nullable=False),
    Column("site_id", String(64)),
    Column("environment", String(200), nullable=False),
    Column("environment_id", String(64)),
    Column("action", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("operation_id", String(255)),  # not unique: Kinsta repeats ids per target
    Column("operation_status", String(20)),
    Column("message", Text),
    Column("started_at", UTCDateTime()),
    Column("finished_at", UTCDateTime()),
    Column("versions_before", JSONDoc),
    Column("versions_after", JSONDoc),
    Column("result", JSONDoc),
    CheckConstraint(_one_of("status", TASK_STATUSES), name="status"),
    Index("ix_tasks_run_id_position", "run_id", "position"),
    Index("ix_tasks_site_run_id", "site", "run_id"),
    Index("ix_tasks_operation_id", "operation_id"),
)

# The latest outcome of each action on each environment, kept up to date as tasks finish, so
# that `sites` answers from a few thousand rows however long the history is. Pruning old runs
# leaves it alone: it is the current state, not history.
site_actions = Table(
    "site_actions",
    metadata,
    Column("site", String(200), primary_key=True),
    Column("environment", String(200), primary_key=True),
    Column("action", String(64), primary_key=True),
    Column("last_run_id", Integer, nullable=False),
    Column("last_status", String(20), nullable=False),
    Column("last_finished_at", UTCDateTime(), nullable=False),
    Column("last_message", Text),
    Column("last_success_at", UTCDateTime()),
    Column("last_failure_at", UTCDateTime()),
    Column("last_failure_message", Text),
)

operations = Table(
    "operations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", Integer, ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("operation_id", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("state", String(20), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("polls", Integer, nullable=False, server_default="0"),
    Column("message", Text),
    Column("events", JSONDoc),
    Index("ix_operations_task_id", "task_id"),
    Index("ix_operations_operation_id", "operation_id"),
)

# The shared rate-limit ledger (see history/ledger.py). Times are epoch seconds from the
# database's clock on PostgreSQL (so host clock skew does not matter) and the host's on SQLite.
rate_permits = Table(
    "rate_permits",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("bucket", String(120), nullable=False),
    Column("taken_at", Double, nullable=False),
    Column("released_at", Double),
    Index("ix_rate_permits_bucket_taken_at", "bucket", "taken_at"),
)

rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("bucket", String(120), primary_key=True),
    Column("blocked_until", Double),
)

# What the rate governor did that an operator may ask about: 429s, pauses because someone else
# used the key, ledger outages, unusually long waits. Ordinary short waits are not recorded.
governor_events = Table(
    "governor_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("scope", String(120), nullable=False),  # the key's fingerprint, never the key
    Column("kind", String(32), nullable=False),
    Column("seconds", Double),
    Column("detail", Text),
    Index("ix_governor_events_at", "at"),
)

# Snapshots taken by the `inventory` action: one row per environment per run, kept for reporting
# (`sites` shows the latest of each environment). Pruning keeps each environment's newest.
inventory = Table(
    "inventory",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer),  # no foreign key: a snapshot outlives the run that took it
    Column("task_id", Integer),
    Column("taken_at", UTCDateTime(), nullable=False),
    Column("site", String(200), nullable=False),
    Column("site_id", String(64)),
    Column("environment", String(200), nullable=False),
    Column("environment_id", String(64)),
    Column("php_version", String(20)),
    Column("wordpress_version", String(20)),
    Column("plugins", JSONDoc),
    Column("themes", JSONDoc),
    Column("backups", JSONDoc),
    Index("ix_inventory_site_environment_taken_at", "site", "environment", "taken_at"),
)

# When a plugin or theme version was first seen offered as an update, on any environment: the
# clock for `min_age` soak delays. Written by update actions and by inventory.
item_versions = Table(
    "item_versions",
    metadata,
    Column("kind", String(10), primary_key=True),  # plugins | themes
    Column("name", String(200), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("first_seen_at", UTCDateTime(), nullable=False),
)

# One holder at a time per environment for mutating work, across jobs and processes. A lease:
# the holder renews it while working; a crashed holder's lock lapses at expires_at.
environment_locks = Table(
    "environment_locks",
    metadata,
    Column("environment_id", String(64), primary_key=True),
    Column("holder", String(300), nullable=False),
    Column("label", String(400)),  # site/environment, job and run, for messages
    Column("acquired_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)

# Every notification the daemon tried to deliver (webhooks, heartbeat pings), and whether it
# arrived: a failed delivery is recorded, never fatal.
notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("job_id", String(200)),
    Column("run_id", Integer),
    Column("kind", String(32), nullable=False),  # failure, ..., halted, heartbeat, start
    Column("channel", String(32), nullable=False),  # slack, json, email, heartbeat
    Column("destination", String(300)),  # scheme and host only: webhook URLs are secrets
    Column("ok", Integer, nullable=False),
    Column("detail", Text),
    Index("ix_notifications_at", "at"),
)

# A rollout's waves (jobs.yaml `rollout:`), one row per wave of a run: its size, how its targets
# ended and when, written when the wave ends (or, for waves the run never began, when it ends).
run_waves = Table(
    "run_waves",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("wave", Integer, primary_key=True),  # 0 first (the canary, when there is one)
    Column("name", String(40), nullable=False),
    Column("targets", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("done", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("rolled_back", Integer, nullable=False),
    Column("started_at", UTCDateTime()),
    Column("ended_at", UTCDateTime()),
)

# What the daemon did with its configuration and its life: started, stopped, jobs.yaml reloaded,
# rejected (with the problems) or missing. Operators ask "why did my edit not take effect?".
daemon_events = Table(
    "daemon_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("owner", String(300)),  # host:pid of the daemon
    Column("kind", String(32), nullable=False),
    Column("detail", Text),
    Index("ix_daemon_events_at", "at"),
)

# Plugin and theme versions no update takes: quarantined when a safe update of them was rolled
# back (with the evidence: where, which check, which run and task) or by an operator, until a
# newer version is offered or an operator releases them. A released row stays, for the record.
quarantine = Table(
    "quarantine",
    metadata,
    Column("kind", String(10), primary_key=True),  # plugins | themes
    Column("name", String(200), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("added_by", String(16), nullable=False),  # rollback | operator
    Column("added_at", UTCDateTime(), nullable=False),
    Column("site", String(200)),
    Column("environment", String(200)),
    Column("run_id", Integer),
    Column("task_id", Integer),
    Column("rollbacks", Integer, nullable=False),
    Column("released_at", UTCDateTime()),
)

# Jobs an operator paused (`pause JOB`): one row per paused job, read by every replica at each
# firing; `resume` deletes it. A pause whose `until` has passed holds nothing (its row stays
# until the job is paused or resumed again).
job_pauses = Table(
    "job_pauses",
    metadata,
    Column("job_id", String(200), primary_key=True),
    Column("paused_at", UTCDateTime(), nullable=False),
    Column("paused_by", String(200), nullable=False),  # user@host
    Column("until", UTCDateTime()),  # NULL: until resumed
    Column("reason", Text),
)

# Requests sent per key and minute (scheduler.usage): the dashboard's budget chart. The rate
# ledger keeps only the current window; this keeps the hours after it. Pruned by age.
request_minutes = Table(
    "request_minutes",
    metadata,
    Column("scope", String(120), primary_key=True),  # the key's fingerprint, never the key
    Column("minute", UTCDateTime(), primary_key=True),
    Column("requests", Integer, nullable=False),
    Index("ix_request_minutes_minute", "minute"),
)
