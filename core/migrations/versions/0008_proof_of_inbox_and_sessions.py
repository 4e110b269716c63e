"""proof of inbox before any credential: named API tokens in their own table, sign-ups that
wait for their email's link, server-side web sessions, and the cards and payout accounts that
were attached before their owner's inbox was proven

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 15:00:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACCOUNTS = (("employers", "employer"), ("launchers", "launcher"))


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_api_tokens_account", "api_tokens", ["role", "account_id"])
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("ops_email", sa.String(length=320), nullable=True),
        sa.Column("user_agent", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    op.create_index("ix_web_sessions_account", "web_sessions", ["role", "account_id"])
    op.create_index("ix_web_sessions_expires_at", "web_sessions", ["expires_at"])
    with op.batch_alter_table("sign_in_links", schema=None) as batch_op:
        batch_op.alter_column("account_id", existing_type=sa.String(length=40), nullable=True)
        batch_op.add_column(sa.Column("sign_up", sa.JSON(), nullable=True))

    with op.batch_alter_table("employers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inbox_proven_at", sa.DateTime(timezone=True)))
        batch_op.add_column(
            sa.Column("card_confirmed", sa.Boolean(), server_default="1", nullable=False)
        )
    with op.batch_alter_table("launchers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inbox_proven_at", sa.DateTime(timezone=True)))
        batch_op.add_column(
            sa.Column("payout_confirmed", sa.Boolean(), server_default="1", nullable=False)
        )
        batch_op.add_column(
            sa.Column("portfolio_public", sa.Boolean(), server_default="0", nullable=False)
        )

    conn = op.get_bind()
    now = sa.func.now()
    for table, role in ACCOUNTS:
        # Each account's token becomes its first named token.
        for account_id, digest, created_at in conn.execute(
            sa.text(f"SELECT id, token_hash, created_at FROM {table}")  # noqa: S608 (constant)
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO api_tokens (id, role, account_id, name, token_hash, created_at)"
                    " VALUES (:id, :role, :account_id, 'API sign-up', :digest, :created_at)"
                ),
                {
                    "id": uuid.uuid4().hex[:16],
                    "role": role,
                    "account_id": account_id,
                    "digest": digest,
                    "created_at": created_at or now,
                },
            )
        # An account whose owner used a sign-in link has proven its inbox, since that first use.
        conn.execute(
            sa.text(
                f"UPDATE {table} SET inbox_proven_at = (SELECT MIN(used_at) FROM sign_in_links"  # noqa: S608
                f" WHERE sign_in_links.role = :role AND sign_in_links.account_id = {table}.id)"
            ),
            {"role": role},
        )
    # What was attached to an account nobody has proven to own waits for its owner's word.
    conn.execute(
        sa.text(
            "UPDATE employers SET card_confirmed = :no"
            " WHERE inbox_proven_at IS NULL AND stripe_payment_method IS NOT NULL"
        ),
        {"no": False},
    )
    conn.execute(
        sa.text(
            "UPDATE launchers SET payout_confirmed = :no"
            " WHERE inbox_proven_at IS NULL AND payouts_enabled = :yes"
        ),
        {"no": False, "yes": True},
    )
    for table, _ in ACCOUNTS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("token_hash")
            batch_op.drop_column("session_epoch")


def downgrade() -> None:
    conn = op.get_bind()
    for table, role in ACCOUNTS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False)
            )
            batch_op.add_column(sa.Column("token_hash", sa.String(length=64), nullable=True))
        # The newest token each account has (or a random hash nobody holds) is its token again.
        for (account_id,) in conn.execute(sa.text(f"SELECT id FROM {table}")):  # noqa: S608
            digest = conn.execute(
                sa.text(
                    "SELECT token_hash FROM api_tokens WHERE role = :role AND account_id = :id"
                    " ORDER BY created_at DESC"
                ),
                {"role": role, "id": account_id},
            ).scalar()
            conn.execute(
                sa.text(f"UPDATE {table} SET token_hash = :digest WHERE id = :id"),  # noqa: S608
                {"digest": digest or uuid.uuid4().hex * 2, "id": account_id},
            )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("token_hash", existing_type=sa.String(length=64), nullable=False)
            batch_op.create_unique_constraint(f"uq_{table}_token_hash", ["token_hash"])
    with op.batch_alter_table("launchers", schema=None) as batch_op:
        batch_op.drop_column("portfolio_public")
        batch_op.drop_column("payout_confirmed")
        batch_op.drop_column("inbox_proven_at")
    with op.batch_alter_table("employers", schema=None) as batch_op:
        batch_op.drop_column("card_confirmed")
        batch_op.drop_column("inbox_proven_at")
    conn.execute(sa.text("DELETE FROM sign_in_links WHERE account_id IS NULL"))
    with op.batch_alter_table("sign_in_links", schema=None) as batch_op:
        batch_op.drop_column("sign_up")
        batch_op.alter_column("account_id", existing_type=sa.String(length=40), nullable=False)
    op.drop_index("ix_web_sessions_expires_at", table_name="web_sessions")
    op.drop_index("ix_web_sessions_account", table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_index("ix_api_tokens_account", table_name="api_tokens")
    op.drop_table("api_tokens")
