"""staff: users, roles, sessions, second factors, the SMS outbox, overrides

Revision ID: 0001
Revises: None
Create Date: 2026-12-02 23:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_no", sa.String(length=10), nullable=False),
        sa.Column("merchant_no", sa.String(length=15), nullable=True),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("lang", sa.String(length=5), nullable=False),
        sa.Column("phone", sa.String(length=21), nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("pin_hash", sa.String(length=200), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("failed_tries", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("totp_secret", sa.String(length=32), nullable=True),
        sa.Column("totp_pending_secret", sa.String(length=32), nullable=True),
        sa.Column("totp_pending_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("merchant_no"),
        sa.UniqueConstraint("staff_no"),
    )
    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("second_factor_ok", sa.Boolean(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=12), nullable=True),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_index("ix_staff_sessions_staff_id", "staff_sessions", ["staff_id"])
    op.create_table(
        "sms_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("spent", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["staff_sessions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sms_codes_session_id", "sms_codes", ["session_id"])
    op.create_table(
        "sms_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=21), nullable=False),
        sa.Column("text", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "overrides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("permission", sa.String(length=20), nullable=False),
        sa.Column("cashier_staff_id", sa.Integer(), nullable=False),
        sa.Column("manager_staff_id", sa.Integer(), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["cashier_staff_id"], ["staff.id"]),
        sa.ForeignKeyConstraint(["manager_staff_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_overrides_at", "overrides", ["at"])
    op.create_index("ix_overrides_cashier_staff_id", "overrides", ["cashier_staff_id"])
    op.create_index("ix_overrides_manager_staff_id", "overrides", ["manager_staff_id"])


def downgrade() -> None:
    op.drop_index("ix_overrides_manager_staff_id", table_name="overrides")
    op.drop_index("ix_overrides_cashier_staff_id", table_name="overrides")
    op.drop_index("ix_overrides_at", table_name="overrides")
    op.drop_table("overrides")
    op.drop_table("sms_outbox")
    op.drop_index("ix_sms_codes_session_id", table_name="sms_codes")
    op.drop_table("sms_codes")
    op.drop_index("ix_staff_sessions_staff_id", table_name="staff_sessions")
    op.drop_table("staff_sessions")
    op.drop_table("staff")
