"""outbox relay: when a pending email may next be tried

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 02:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        # The relay's claim: pending rows in order, and "an earlier pending row for this address".
        batch_op.create_index("ix_outbox_status_id", ["status", "id"], unique=False)
        batch_op.create_index(
            "ix_outbox_status_to_email", ["status", "to_email", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_status_to_email")
        batch_op.drop_index("ix_outbox_status_id")
        batch_op.drop_column("next_attempt_at")
