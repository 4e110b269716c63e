"""profiles: a launcher's headline, school, graduation year, links, avatar and which parts the
public portfolio shows; a company's logo, website and description

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ADD and DROP COLUMN, never a batch's copy of the table: SQLite (3.35+) does both in
# place, and a copy of a table other rows point at fails their foreign keys once it has rows.
def launcher_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("headline", sa.String(length=120), nullable=True),
        sa.Column("school", sa.String(length=120), nullable=True),
        sa.Column("graduation_year", sa.Integer(), nullable=True),
        sa.Column("website_url", sa.String(length=300), nullable=True),
        sa.Column("linkedin_url", sa.String(length=300), nullable=True),
        sa.Column("github_url", sa.String(length=300), nullable=True),
        sa.Column("avatar_key", sa.String(length=80), nullable=True),
        sa.Column("public_parts", sa.JSON(), server_default="[]", nullable=False),
    ]


def employer_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("logo_key", sa.String(length=80), nullable=True),
        sa.Column("website_url", sa.String(length=300), nullable=True),
        sa.Column("description", sa.String(length=500), nullable=True),
    ]


def upgrade() -> None:
    for column in launcher_columns():
        op.add_column("launchers", column)
    for column in employer_columns():
        op.add_column("employers", column)


def downgrade() -> None:
    for column in reversed(employer_columns()):
        op.drop_column("employers", column.name)
    for column in reversed(launcher_columns()):
        op.drop_column("launchers", column.name)
