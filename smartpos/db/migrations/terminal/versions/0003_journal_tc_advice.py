"""journal.tc, tc_state, tc_pan_sealed: an inserted chip card's transaction certificate,
waiting to be sent to the host in a TC advice (the PAN sealed under the terminal's vault
until then, cleared at the latest when the batch settles)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 01:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("journal", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tc", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("tc_state", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("tc_pan_sealed", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("journal", schema=None) as batch_op:
        batch_op.drop_column("tc_pan_sealed")
        batch_op.drop_column("tc_state")
        batch_op.drop_column("tc")
