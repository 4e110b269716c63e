"""who is who across roles (the fingerprints of employers' cards and of launchers' payout
accounts), and the launcher each timeline event happened to (on-time records)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing accounts start with no fingerprints; the default only fills them in (a JSON
    # default can't be compared on Postgres, and the application always writes the column).
    for table, column in (("employers", "card_fingerprints"), ("launchers", "payout_fingerprints")):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column(column, sa.JSON(), server_default="[]", nullable=False))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=sa.JSON(), server_default=None)
    with op.batch_alter_table("timeline_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("launcher_id", sa.String(length=40), nullable=True))
        batch_op.create_index("ix_timeline_events_launcher", ["launcher_id", "event"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("timeline_events", schema=None) as batch_op:
        batch_op.drop_index("ix_timeline_events_launcher")
        batch_op.drop_column("launcher_id")
    with op.batch_alter_table("launchers", schema=None) as batch_op:
        batch_op.drop_column("payout_fingerprints")
    with op.batch_alter_table("employers", schema=None) as batch_op:
        batch_op.drop_column("card_fingerprints")
