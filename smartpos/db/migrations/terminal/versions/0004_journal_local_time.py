"""journal.local_time: the request's local time (field 12), which its reversal carries so
the host can tell the request it reverses from another one under a reused trace number

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("journal", schema=None) as batch_op:
        batch_op.add_column(sa.Column("local_time", sa.String(length=6), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("journal", schema=None) as batch_op:
        batch_op.drop_column("local_time")
