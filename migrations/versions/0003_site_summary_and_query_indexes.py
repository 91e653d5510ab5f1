"""A per-site summary of each action's latest outcome; indexes on what history filters by.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "site_actions",
        sa.Column("site", sa.String(length=200), nullable=False),
        sa.Column("environment", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("last_run_id", sa.Integer(), nullable=False),
        sa.Column("last_status", sa.String(length=20), nullable=False),
        sa.Column("last_finished_at", TIMESTAMP, nullable=False),
        sa.Column("last_message", sa.Text(), nullable=True),
        sa.Column("last_success_at", TIMESTAMP, nullable=True),
        sa.Column("last_failure_at", TIMESTAMP, nullable=True),
        sa.Column("last_failure_message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("site", "environment", "action", name=op.f("pk_site_actions")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_job_id_started_at"))
        batch_op.drop_index(batch_op.f("ix_runs_started_at"))
        batch_op.drop_index(batch_op.f("ix_runs_status_started_at"))
        batch_op.create_index("ix_runs_scheduled_for", ["scheduled_for"], unique=False)
        batch_op.create_index(
            "ix_runs_status_scheduled_for", ["status", "scheduled_for"], unique=False
        )

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_site_started_at"))
        batch_op.create_index("ix_tasks_site_run_id", ["site", "run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_site_run_id")
        batch_op.create_index(
            batch_op.f("ix_tasks_site_started_at"), ["site", "started_at"], unique=False
        )

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_status_scheduled_for")
        batch_op.drop_index("ix_runs_scheduled_for")
        batch_op.create_index(
            batch_op.f("ix_runs_status_started_at"), ["status", "started_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_runs_started_at"), ["started_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_runs_job_id_started_at"), ["job_id", "started_at"], unique=False
        )

    op.drop_table("site_actions")
