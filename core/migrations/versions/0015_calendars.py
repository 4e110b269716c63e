"""calendars: an .ics invitation on outbox emails, internships' upcoming deadlines, feeds

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-09 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("outbox", sa.Column("calendar", sa.Text(), nullable=True))
    # Filled as each internship records its next event (deadlines live in the workflow).
    op.create_table(
        "internship_deadlines",
        sa.Column("internship_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("happens", sa.Text(), nullable=False),
        sa.Column("unless", sa.Text(), nullable=False),
        sa.Column("for_roles", sa.String(length=64), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["internship_id"], ["internships.id"]),
        sa.PrimaryKeyConstraint("internship_id", "position"),
    )
    op.create_table(
        "calendar_feeds",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("revoked_at", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_calendar_feeds_account", "calendar_feeds", ["role", "account_id"])


def downgrade() -> None:
    op.drop_index("ix_calendar_feeds_account", table_name="calendar_feeds")
    op.drop_table("calendar_feeds")
    op.drop_table("internship_deadlines")
    op.drop_column("outbox", "calendar")
