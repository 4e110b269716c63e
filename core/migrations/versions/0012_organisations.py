"""employer organisations: members with roles, invitations of colleagues and of launchers

Every employer becomes a one-member organisation: its founder is a member (an admin) whose id is
the employer's, so the web sessions and API tokens held before (whose account id is the
employer's) stay that person's, and the employer ids workflows carry stay the organisation's.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 23:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "members",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("employer_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("all_internships", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["employer_id"], ["employers.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_members_employer_id", "members", ["employer_id"])
    op.create_index(
        "uq_members_email_current",
        "members",
        ["email"],
        unique=True,
        sqlite_where=sa.text("removed_at IS NULL"),
        postgresql_where=sa.text("removed_at IS NULL"),
    )
    op.execute(
        "INSERT INTO members (id, employer_id, name, email, role, all_internships, created_at)"
        " SELECT id, id, name, email, 'admin', true, created_at FROM employers"
    )
    op.create_table(
        "colleague_invitations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("employer_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("all_internships", sa.Boolean(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("invited_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["employer_id"], ["employers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index(
        "ix_colleague_invitations_employer_id", "colleague_invitations", ["employer_id"]
    )
    op.create_table(
        "internship_invitations",
        sa.Column("internship_id", sa.String(length=40), nullable=False),
        sa.Column("launcher_id", sa.String(length=40), nullable=False),
        sa.Column("invited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("invited_by", sa.String(length=40), nullable=True),
        sa.Column("answer", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["internship_id"], ["internships.id"]),
        sa.ForeignKeyConstraint(["launcher_id"], ["launchers.id"]),
        sa.PrimaryKeyConstraint("internship_id", "launcher_id"),
    )
    op.create_index(
        "ix_internship_invitations_launcher", "internship_invitations", ["launcher_id", "answer"]
    )
    # Plain columns added one by one: no table copy on SQLite (see 0010).
    op.add_column("employers", sa.Column("notify_email", sa.String(length=320), nullable=True))
    op.add_column(
        "launchers",
        sa.Column("takes_invitations", sa.Boolean(), server_default="1", nullable=False),
    )
    op.add_column("internships", sa.Column("posted_by", sa.String(length=40), nullable=True))
    op.add_column(
        "internships",
        sa.Column("invitation_only", sa.Boolean(), server_default="0", nullable=False),
    )
    op.create_index("ix_internships_posted_by", "internships", ["posted_by"])
    op.add_column("timeline_events", sa.Column("member_id", sa.String(length=40), nullable=True))


def downgrade() -> None:
    op.drop_column("timeline_events", "member_id")
    op.drop_index("ix_internships_posted_by", table_name="internships")
    op.drop_column("internships", "invitation_only")
    op.drop_column("internships", "posted_by")
    op.drop_column("launchers", "takes_invitations")
    op.drop_column("employers", "notify_email")
    op.drop_table("internship_invitations")
    op.drop_table("colleague_invitations")
    op.drop_table("members")
