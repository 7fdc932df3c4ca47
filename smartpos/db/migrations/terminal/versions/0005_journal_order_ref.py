"""journal.order_ref and journal.result: the caller's idempotency key (an order reference)
and the result it was given, so the same reference again is answered from the journal and
never sent to the host twice

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 20:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("journal", schema=None) as batch_op:
        batch_op.add_column(sa.Column("order_ref", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("result", sa.Text(), nullable=True))
        batch_op.create_unique_constraint("uq_journal_order_ref", ["order_ref"])


def downgrade() -> None:
    with op.batch_alter_table("journal", schema=None) as batch_op:
        batch_op.drop_constraint("uq_journal_order_ref", type_="unique")
        batch_op.drop_column("result")
        batch_op.drop_column("order_ref")
