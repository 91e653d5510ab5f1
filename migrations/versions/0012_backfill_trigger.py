"""Runs may have the trigger `backfill`: a past slot that never ran (no row, or one recorded
`missed`), run on purpose by `backfill JOB --from T --to T`.

Revision ID: 0012
Revises: 0011 (run waves)
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_TRIGGERS = "trigger IN ('schedule', 'catch_up', 'manual')"
NEW_TRIGGERS = "trigger IN ('schedule', 'catch_up', 'manual', 'backfill')"


def _triggers(condition: str) -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_runs_trigger"), type_="check")
        batch_op.create_check_constraint(op.f("ck_runs_trigger"), sa.text(condition))


def upgrade() -> None:
    _triggers(NEW_TRIGGERS)


def downgrade() -> None:
    # An older schema has no such trigger: a backfilled run reads as a manual one there.
    op.execute("UPDATE runs SET trigger = 'manual' WHERE trigger = 'backfill'")
    _triggers(OLD_TRIGGERS)
