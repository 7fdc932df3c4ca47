"""requests (tid, id) index: a terminal's latest request, which the sign-on answer reports
(protocol.md §8.2), without reading all of its requests

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:30:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.create_index("ix_requests_tid_id", ["tid", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index("ix_requests_tid_id")
