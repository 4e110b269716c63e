"""the launcher's share of each internship's fee in the projection, so a launcher's pages say
what they receive, not what the employer pays

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 21:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "internships",
        sa.Column("launcher_share_cents", sa.Integer(), server_default="0", nullable=False),
    )
    # Rows projected before: what was paid where the launcher was paid in full, else the share
    # every policy so far has given (90 %); the next event on each rewrites it from the policy.
    op.execute(
        "UPDATE internships SET launcher_share_cents = CASE"
        " WHEN stage IN ('paid', 'completed') AND paid_cents > 0 THEN paid_cents"
        " ELSE fee_cents * 90 / 100 END"
    )


def downgrade() -> None:
    op.drop_column("internships", "launcher_share_cents")
