"""Runs asked for from Slack: the trigger `slack`, and `requested_by` (who asked for an
on-demand run: "slack:U0123ABC (alice)"; `started_by` stays the process that ran it). Slack
runs, like manual ones, stand for no slot: the unique (job, slot) index leaves them out.

Revision ID: 0013
Revises: 0012 (backfill trigger)
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_TRIGGERS = "trigger IN ('schedule', 'catch_up', 'manual', 'backfill')"
NEW_TRIGGERS = "trigger IN ('schedule', 'catch_up', 'manual', 'slack', 'backfill')"
OLD_SLOTS = "trigger != 'manual'"
NEW_SLOTS = "trigger NOT IN ('manual', 'slack')"
SLOT_INDEX = "uq_runs_job_id_scheduled_for"


def _slot_index(drop: str, create: str) -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(SLOT_INDEX, sqlite_where=sa.text(drop), postgresql_where=sa.text(drop))
        batch_op.create_index(
            SLOT_INDEX,
            ["job_id", "scheduled_for"],
            unique=True,
            sqlite_where=sa.text(create),
            postgresql_where=sa.text(create),
        )


def _triggers(condition: str) -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_runs_trigger"), type_="check")
        batch_op.create_check_constraint(op.f("ck_runs_trigger"), sa.text(condition))


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("requested_by", sa.String(length=200), nullable=True))
    _triggers(NEW_TRIGGERS)
    _slot_index(OLD_SLOTS, NEW_SLOTS)


def downgrade() -> None:
    # An older schema knows no `slack` trigger: a Slack run reads as a manual one there (both
    # stand for no slot), and who asked for it goes with the column.
    op.execute("UPDATE runs SET trigger = 'manual' WHERE trigger = 'slack'")
    _slot_index(NEW_SLOTS, OLD_SLOTS)
    _triggers(OLD_TRIGGERS)
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("requested_by")
