"""web app: one-time sign-in links, employers without a card yet (and the card as people
recognise it), refused payments in the queue

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_links",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("next_path", sa.String(length=500), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("sign_in_links", schema=None) as batch_op:
        batch_op.create_index("ix_sign_in_links_expires_at", ["expires_at"], unique=False)
        batch_op.create_index("ix_sign_in_links_account", ["role", "account_id"], unique=False)
    with op.batch_alter_table("employers", schema=None) as batch_op:
        batch_op.alter_column(
            "stripe_payment_method", existing_type=sa.String(length=64), nullable=True
        )
        batch_op.add_column(sa.Column("card_label", sa.String(length=64), nullable=True))
    with op.batch_alter_table("internships", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("payment_refused", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("internships", schema=None) as batch_op:
        batch_op.drop_column("payment_refused")
    with op.batch_alter_table("employers", schema=None) as batch_op:
        batch_op.drop_column("card_label")
        batch_op.alter_column(
            "stripe_payment_method", existing_type=sa.String(length=64), nullable=False
        )
    op.drop_table("sign_in_links")
