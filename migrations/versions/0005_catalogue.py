"""The maintenance catalogue: inventory snapshots, first sightings of plugin and theme versions
(for min_age), per-environment locks, and the task statuses rolled_back and interrupted.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON(none_as_null=True).with_variant(
    sa.dialects.postgresql.JSONB(none_as_null=True), "postgresql"
)
OLD_TASK_STATUSES = "status IN ('pending', 'running', 'succeeded', 'failed', 'skipped')"
NEW_TASK_STATUSES = (
    "status IN ('pending', 'running', 'succeeded', 'failed', 'skipped', 'rolled_back', "
    "'interrupted')"
)


def _task_statuses(condition: str) -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_tasks_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_tasks_status"), sa.text(condition))


def upgrade() -> None:
    op.create_table(
        "inventory",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("taken_at", TIMESTAMP, nullable=False),
        sa.Column("site", sa.String(length=200), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=True),
        sa.Column("environment", sa.String(length=200), nullable=False),
        sa.Column("environment_id", sa.String(length=64), nullable=True),
        sa.Column("php_version", sa.String(length=20), nullable=True),
        sa.Column("wordpress_version", sa.String(length=20), nullable=True),
        sa.Column("plugins", JSON, nullable=True),
        sa.Column("themes", JSON, nullable=True),
        sa.Column("backups", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inventory")),
    )
    op.create_index(
        "ix_inventory_site_environment_taken_at",
        "inventory",
        ["site", "environment", "taken_at"],
        unique=False,
    )
    op.create_table(
        "item_versions",
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("kind", "name", "version", name=op.f("pk_item_versions")),
    )
    op.create_table(
        "environment_locks",
        sa.Column("environment_id", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=300), nullable=False),
        sa.Column("label", sa.String(length=400), nullable=True),
        sa.Column("acquired_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("environment_id", name=op.f("pk_environment_locks")),
    )
    _task_statuses(NEW_TASK_STATUSES)


def downgrade() -> None:
    op.execute("UPDATE tasks SET status = 'failed' WHERE status IN ('rolled_back', 'interrupted')")
    _task_statuses(OLD_TASK_STATUSES)
    op.drop_table("environment_locks")
    op.drop_table("item_versions")
    op.drop_index("ix_inventory_site_environment_taken_at", table_name="inventory")
    op.drop_table("inventory")
