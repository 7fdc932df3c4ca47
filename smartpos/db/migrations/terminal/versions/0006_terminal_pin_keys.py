"""terminal_config.sealed_pin_key and terminal_config.sealed_dukpt: the PIN key material of
the schemes that do not use the sign-on TPK (docs/pin-security.md) — the AES PIN key of
aes-iso4, the DUKPT register's state of tdes-dukpt-iso0 and aes-dukpt-iso4 — sealed

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("terminal_config", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed_pin_key", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("sealed_dukpt", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("terminal_config", schema=None) as batch_op:
        batch_op.drop_column("sealed_dukpt")
        batch_op.drop_column("sealed_pin_key")
