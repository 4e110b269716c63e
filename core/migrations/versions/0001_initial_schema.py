"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 12:33:32.299031
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "employers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("company", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("stripe_customer_id", sa.String(length=64), nullable=False),
        sa.Column("stripe_payment_method", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "launchers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("stripe_account_id", sa.String(length=64), nullable=False),
        sa.Column("payouts_enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stripe_account_id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("internship_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("recipient_role", sa.String(length=16), nullable=False),
        sa.Column("recipient_id", sa.String(length=40), nullable=False),
        sa.Column("to_email", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("html_body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "internship_id",
            "seq",
            "kind",
            "recipient_role",
            "recipient_id",
            name="uq_outbox_event_recipient",
        ),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outbox_internship_id"), ["internship_id"], unique=False
        )

    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "internships",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("employer_id", sa.String(length=40), nullable=False),
        sa.Column("launcher_id", sa.String(length=40), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("company", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("estimated_hours", sa.Integer(), nullable=False),
        sa.Column("fee_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("duration_days", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("overdue", sa.Boolean(), nullable=False),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("disputed", sa.Boolean(), nullable=False),
        sa.Column("charged_cents", sa.Integer(), nullable=False),
        sa.Column("paid_cents", sa.Integer(), nullable=False),
        sa.Column("refunded_cents", sa.Integer(), nullable=False),
        sa.Column("employer_rating", sa.Integer(), nullable=True),
        sa.Column("employer_comment", sa.Text(), nullable=True),
        sa.Column("launcher_rating", sa.Integer(), nullable=True),
        sa.Column("launcher_comment", sa.Text(), nullable=True),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["employer_id"],
            ["employers.id"],
        ),
        sa.ForeignKeyConstraint(
            ["launcher_id"],
            ["launchers.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("internships", schema=None) as batch_op:
        batch_op.create_index(
            "ix_internships_category_posted", ["category", "posted_at", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_internships_employer_id"), ["employer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_internships_launcher_id"), ["launcher_id"], unique=False
        )
        batch_op.create_index("ix_internships_posted", ["posted_at", "id"], unique=False)
        batch_op.create_index(
            "ix_internships_stage_posted", ["stage", "posted_at", "id"], unique=False
        )

    op.create_table(
        "internship_skills",
        sa.Column("internship_id", sa.String(length=40), nullable=False),
        sa.Column("skill", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["internship_id"],
            ["internships.id"],
        ),
        sa.PrimaryKeyConstraint("internship_id", "skill"),
    )
    with op.batch_alter_table("internship_skills", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_internship_skills_skill"), ["skill"], unique=False)

    op.create_table(
        "timeline_events",
        sa.Column("internship_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=40), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["internship_id"],
            ["internships.id"],
        ),
        sa.PrimaryKeyConstraint("internship_id", "seq"),
    )


def downgrade() -> None:

    op.drop_table("timeline_events")
    with op.batch_alter_table("internship_skills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_internship_skills_skill"))

    op.drop_table("internship_skills")
    with op.batch_alter_table("internships", schema=None) as batch_op:
        batch_op.drop_index("ix_internships_stage_posted")
        batch_op.drop_index("ix_internships_posted")
        batch_op.drop_index(batch_op.f("ix_internships_launcher_id"))
        batch_op.drop_index(batch_op.f("ix_internships_employer_id"))
        batch_op.drop_index("ix_internships_category_posted")

    op.drop_table("internships")
    op.drop_table("stripe_events")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_internship_id"))

    op.drop_table("outbox")
    op.drop_table("launchers")
    op.drop_table("employers")
