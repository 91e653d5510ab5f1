"""Job pauses: one row per job an operator paused (`pause JOB`), which every replica reads at
each firing; `resume` deletes it.

Revision ID: 0014
Revises: 0013 (slack runs)
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "job_pauses",
        sa.Column("job_id", sa.String(length=200), nullable=False),
        sa.Column("paused_at", TIMESTAMP, nullable=False),
        sa.Column("paused_by", sa.String(length=200), nullable=False),
        sa.Column("until", TIMESTAMP, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_job_pauses")),
    )


def downgrade() -> None:
    op.drop_table("job_pauses")
