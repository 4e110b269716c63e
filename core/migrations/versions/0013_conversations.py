"""conversations: threads between a launcher and the organisation, messages, files, reports

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 02:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "threads",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("internship_id", sa.String(length=40), nullable=False),
        sa.Column("launcher_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("last_message_id", sa.Integer(), nullable=False),
        sa.Column("last_message_at", WHEN, nullable=True),
        sa.Column("waiting_on", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["internship_id"], ["internships.id"]),
        sa.ForeignKeyConstraint(["launcher_id"], ["launchers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("internship_id", "launcher_id", name="uq_threads"),
    )
    op.create_index("ix_threads_launcher_id", "threads", ["launcher_id"])
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("author_role", sa.String(length=16), nullable=False),
        sa.Column("author_id", sa.String(length=40), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("via", sa.String(length=8), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("in_dispute", sa.Boolean(), nullable=False),
        sa.Column("hidden_at", WHEN, nullable=True),
        sa.Column("hidden_reason", sa.Text(), nullable=True),
        sa.Column("email_id", sa.String(length=320), nullable=True),
        sa.ForeignKeyConstraint(["thread_id"], ["threads.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("thread_id", "email_id", name="uq_messages_email"),
    )
    op.create_index("ix_messages_thread", "messages", ["thread_id", "id"])
    op.create_table(
        "attachments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("internship_id", sa.String(length=40), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("submission_round", sa.Integer(), nullable=True),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("uploaded_by_role", sa.String(length=16), nullable=False),
        sa.Column("uploaded_by_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["internship_id"], ["internships.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_attachments_internship_id", "attachments", ["internship_id"])
    op.create_index("ix_attachments_message_id", "attachments", ["message_id"])
    op.create_table(
        "message_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("reporter_role", sa.String(length=16), nullable=False),
        sa.Column("reporter_id", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("decided_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "message_id", "reporter_role", "reporter_id", name="uq_message_reports"
        ),
    )
    op.create_index("ix_message_reports_message_id", "message_reports", ["message_id"])
    op.create_index("ix_message_reports_open", "message_reports", ["decided_at", "id"])
    op.create_table(
        "thread_readers",
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("reader_role", sa.String(length=16), nullable=False),
        sa.Column("reader_id", sa.String(length=40), nullable=False),
        sa.Column("last_read_id", sa.Integer(), nullable=False),
        sa.Column("email_due_at", WHEN, nullable=True),
        sa.Column("last_emailed_at", WHEN, nullable=True),
        sa.Column("last_emailed_id", sa.Integer(), nullable=False),
        sa.Column("emails_sent", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["thread_id"], ["threads.id"]),
        sa.PrimaryKeyConstraint("thread_id", "reader_role", "reader_id"),
    )
    op.create_index("ix_thread_readers_email_due_at", "thread_readers", ["email_due_at"])
    for table in ("members", "launchers"):
        op.add_column(
            table,
            sa.Column(
                "message_emails", sa.String(length=16), server_default="immediate", nullable=False
            ),
        )
    op.add_column("outbox", sa.Column("reply_to", sa.String(length=320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("reply_to")
    for table in ("launchers", "members"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("message_emails")
    for table in ("thread_readers", "message_reports", "attachments", "messages", "threads"):
        op.drop_table(table)
