"""chip_counters: the simulated chip cards' transaction counters

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 23:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chip_counters",
        sa.Column("pan_token", sa.String(length=32), nullable=False),
        sa.Column("atc", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("pan_token"),
    )


def downgrade() -> None:
    op.drop_table("chip_counters")
