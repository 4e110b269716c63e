"""a launcher's applications by index (the pages mark the postings they applied to), and
each account's session epoch (sign out everywhere)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 09:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("timeline_events", schema=None) as batch_op:
        batch_op.create_index("ix_timeline_events_actor", ["actor_id", "event"], unique=False)
    for table in ("employers", "launchers"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False)
            )


def downgrade() -> None:
    for table in ("employers", "launchers"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("session_epoch")
    with op.batch_alter_table("timeline_events", schema=None) as batch_op:
        batch_op.drop_index("ix_timeline_events_actor")
