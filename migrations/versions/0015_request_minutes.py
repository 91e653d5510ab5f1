"""Requests per key and minute, for the dashboard's budget chart (the rate ledger keeps only
the current window).

Revision ID: 0015
Revises: 0014 (job pauses)
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "request_minutes",
        sa.Column("scope", sa.String(length=120), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "minute", name=op.f("pk_request_minutes")),
    )
    op.create_index("ix_request_minutes_minute", "request_minutes", ["minute"])


def downgrade() -> None:
    op.drop_index("ix_request_minutes_minute", table_name="request_minutes")
    op.drop_table("request_minutes")
