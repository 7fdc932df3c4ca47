"""requests.atc (the chip's counter of a chip request) and requests.tc (the transaction
certificate the card gave for it, from the terminal's TC advice, once verified)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 01:20:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("atc", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("tc", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("tc")
        batch_op.drop_column("atc")
