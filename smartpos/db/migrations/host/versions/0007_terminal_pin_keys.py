"""terminals.sealed_pin_key, terminals.initial_ksn and terminals.dukpt_counter: a terminal's
AES PIN key (aes-iso4), sealed; the initial KSN or key ID its DUKPT key was derived for (not
secret: the host keeps the BDK only) and the highest DUKPT counter it has sent (a KSN at or
below it is a replay)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("terminals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed_pin_key", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("initial_ksn", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("dukpt_counter", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("terminals", schema=None) as batch_op:
        batch_op.drop_column("dukpt_counter")
        batch_op.drop_column("initial_ksn")
        batch_op.drop_column("sealed_pin_key")
