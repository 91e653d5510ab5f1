"""Governor events: 429s, pauses for other users of a key, ledger outages, long waits.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "governor_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("scope", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("seconds", sa.Double(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governor_events")),
    )
    with op.batch_alter_table("governor_events", schema=None) as batch_op:
        batch_op.create_index("ix_governor_events_at", ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("governor_events", schema=None) as batch_op:
        batch_op.drop_index("ix_governor_events_at")

    op.drop_table("governor_events")
