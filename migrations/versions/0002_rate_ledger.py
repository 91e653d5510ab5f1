"""The shared rate-limit ledger: permits and per-bucket blocks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_buckets",
        sa.Column("bucket", sa.String(length=120), nullable=False),
        sa.Column("blocked_until", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("bucket", name=op.f("pk_rate_buckets")),
    )
    op.create_table(
        "rate_permits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("bucket", sa.String(length=120), nullable=False),
        sa.Column("taken_at", sa.Double(), nullable=False),
        sa.Column("released_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_permits")),
    )
    with op.batch_alter_table("rate_permits", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rate_permits_bucket_taken_at", ["bucket", "taken_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("rate_permits", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_permits_bucket_taken_at")

    op.drop_table("rate_permits")
    op.drop_table("rate_buckets")
