"""Runs can be cancelled by hand: the request (when, by whom, why) is written on the run's row by
`cancel` on any host and read back by the run's heartbeat; the run statuses `cancelled` and
`halted` (a circuit breaker's stop) are allowed.

Revision ID: 0010
Revises: 0009 (quarantine)
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
OLD_RUN_STATUSES = (
    "status IN ('running', 'succeeded', 'failed', 'skipped', 'missed', 'interrupted')"
)
NEW_RUN_STATUSES = (
    "status IN ('running', 'succeeded', 'failed', 'skipped', 'missed', 'interrupted', "
    "'cancelled', 'halted')"
)


def _run_statuses(condition: str) -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_runs_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_runs_status"), sa.text(condition))


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("cancel_requested_at", TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("cancel_requested_by", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("cancel_reason", sa.Text(), nullable=True))
    _run_statuses(NEW_RUN_STATUSES)


def downgrade() -> None:
    # An older schema knows neither status: a run stopped early reads as interrupted there.
    op.execute("UPDATE runs SET status = 'interrupted' WHERE status IN ('cancelled', 'halted')")
    _run_statuses(OLD_RUN_STATUSES)
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("cancel_reason")
        batch.drop_column("cancel_requested_by")
        batch.drop_column("cancel_requested_at")
