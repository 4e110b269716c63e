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


def upgrade() -> None:
    with op.batch_alter_table("launchers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("headline", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("school", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("graduation_year", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("website_url", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("linkedin_url", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("github_url", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("avatar_key", sa.String(length=80), nullable=True))
        batch_op.add_column(
            sa.Column("public_parts", sa.JSON(), server_default="[]", nullable=False)
        )
    with op.batch_alter_table("employers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("logo_key", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("website_url", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("description", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("employers", schema=None) as batch_op:
        for column in ("description", "website_url", "logo_key"):
            batch_op.drop_column(column)
    with op.batch_alter_table("launchers", schema=None) as batch_op:
        for column in (
            "public_parts",
            "avatar_key",
            "github_url",
            "linkedin_url",
            "website_url",
            "graduation_year",
            "school",
            "headline",
        ):
            batch_op.drop_column(column)
