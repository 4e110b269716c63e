"""one account per email per role

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("employers", "launchers")


def upgrade() -> None:
    bind = op.get_bind()
    for table in TABLES:
        # Emails are compared as the API stores them from now on: trimmed, lower case.
        bind.execute(sa.text(f"UPDATE {table} SET email = lower(trim(email))"))
        twice = (
            bind.execute(sa.text(f"SELECT email FROM {table} GROUP BY email HAVING count(*) > 1"))
            .scalars()
            .all()
        )
        if twice:
            raise RuntimeError(
                f"{table}: these emails have more than one account; merge or change them "
                f"before upgrading: {', '.join(twice)}"
            )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_unique_constraint(f"uq_{table}_email", ["email"])


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"uq_{table}_email", type_="unique")
