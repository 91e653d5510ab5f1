"""initial history schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain types, frozen here: a migration must not change when application code does.
TIMESTAMP = sa.DateTime(timezone=True)  # timestamptz on PostgreSQL; UTC-naive text on SQLite
JSON_DOC = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=200), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("scheduled_for", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("heartbeat_at", TIMESTAMP, nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("tasks_total", sa.Integer(), server_default="0", nullable=False),
        sa.Column("tasks_failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_by", sa.String(length=200), nullable=True),
        sa.Column("config_revision", sa.String(length=64), nullable=True),
        sa.Column("targets", JSON_DOC, nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed', 'skipped', 'missed', 'interrupted')",
            name=op.f("ck_runs_status"),
        ),
        sa.CheckConstraint(
            "trigger IN ('schedule', 'catch_up', 'manual')", name=op.f("ck_runs_trigger")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_job_id_started_at", ["job_id", "started_at"], unique=False)
        batch_op.create_index("ix_runs_started_at", ["started_at"], unique=False)
        batch_op.create_index("ix_runs_status_started_at", ["status", "started_at"], unique=False)
        batch_op.create_index(
            "uq_runs_job_id_scheduled_for",
            ["job_id", "scheduled_for"],
            unique=True,
            sqlite_where=sa.text("trigger != 'manual'"),
            postgresql_where=sa.text("trigger != 'manual'"),
        )

    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=200), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=True),
        sa.Column("environment", sa.String(length=200), nullable=False),
        sa.Column("environment_id", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("operation_id", sa.String(length=255), nullable=True),
        sa.Column("operation_status", sa.String(length=20), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("versions_before", JSON_DOC, nullable=True),
        sa.Column("versions_after", JSON_DOC, nullable=True),
        sa.Column("result", JSON_DOC, nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'succeeded', 'failed', 'skipped')",
            name=op.f("ck_tasks_status"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_tasks_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_operation_id", ["operation_id"], unique=False)
        batch_op.create_index("ix_tasks_run_id_position", ["run_id", "position"], unique=False)
        batch_op.create_index("ix_tasks_site_started_at", ["site", "started_at"], unique=False)

    op.create_table(
        "operations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("polls", sa.Integer(), server_default="0", nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("events", JSON_DOC, nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_operations_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operations")),
    )
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.create_index("ix_operations_operation_id", ["operation_id"], unique=False)
        batch_op.create_index("ix_operations_task_id", ["task_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.drop_index("ix_operations_task_id")
        batch_op.drop_index("ix_operations_operation_id")

    op.drop_table("operations")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_site_started_at")
        batch_op.drop_index("ix_tasks_run_id_position")
        batch_op.drop_index("ix_tasks_operation_id")

    op.drop_table("tasks")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_runs_job_id_scheduled_for",
            sqlite_where=sa.text("trigger != 'manual'"),
            postgresql_where=sa.text("trigger != 'manual'"),
        )
        batch_op.drop_index("ix_runs_status_started_at")
        batch_op.drop_index("ix_runs_started_at")
        batch_op.drop_index("ix_runs_job_id_started_at")

    op.drop_table("runs")
