"""documents: receipts, credit notes and statements, numbered per organisation; billing details

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("employers", sa.Column("billing_name", sa.String(length=200), nullable=True))
    op.add_column("employers", sa.Column("billing_address", sa.String(length=500), nullable=True))
    op.add_column("employers", sa.Column("tax_id", sa.String(length=64), nullable=True))
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("employer_id", sa.String(length=40), nullable=False),
        sa.Column("internship_id", sa.String(length=40), nullable=False),
        sa.Column("launcher_id", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("issued_at", WHEN, nullable=False),
        sa.Column("stripe_id", sa.String(length=64), nullable=False),
        sa.Column("internship_title", sa.String(length=200), nullable=False),
        sa.Column("billing_name", sa.String(length=200), nullable=False),
        sa.Column("billing_address", sa.String(length=500), nullable=False),
        sa.Column("tax_id", sa.String(length=64), nullable=False),
        sa.Column("billing_email", sa.String(length=320), nullable=False),
        sa.Column("launcher_name", sa.String(length=200), nullable=False),
        sa.Column("launcher_email", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(["employer_id"], ["employers.id"]),
        sa.ForeignKeyConstraint(["internship_id"], ["internships.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stripe_id"),
        sa.UniqueConstraint("employer_id", "number", name="uq_documents_number"),
    )
    op.create_index("ix_documents_internship_id", "documents", ["internship_id"])
    op.create_index("ix_documents_employer", "documents", ["employer_id", "id"])
    op.create_index("ix_documents_launcher", "documents", ["launcher_id", "kind", "issued_at"])
    op.create_table(
        "document_counters",
        sa.Column("employer_id", sa.String(length=40), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["employer_id"], ["employers.id"]),
        sa.PrimaryKeyConstraint("employer_id"),
    )


def downgrade() -> None:
    op.drop_table("document_counters")
    op.drop_table("documents")
    for column in ("tax_id", "billing_address", "billing_name"):
        op.drop_column("employers", column)
