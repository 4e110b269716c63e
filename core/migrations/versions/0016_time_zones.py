"""time zones: each member's and launcher's, for every moment they read

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("members", "launchers")


def upgrade() -> None:
    # Everyone so far read UTC: they keep it until they choose their zone.
    for table in TABLES:
        op.add_column(
            table,
            sa.Column("time_zone", sa.String(length=64), nullable=False, server_default="UTC"),
        )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("time_zone")
