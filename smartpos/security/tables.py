"""Staff tables of the POS database (smartpos.db.pos): accounts, sessions, SMS codes, the SMS
outbox and manager overrides.

Nothing a person types is stored in clear: passwords, manager PINs and SMS codes are argon2id
hashes; session tokens are random and kept as their SHA-256 only."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, ForeignKey, Integer, String, Table

from smartpos.db.pos import metadata

__all__ = ["metadata", "overrides", "sms_codes", "sms_outbox", "staff", "staff_sessions"]

staff = Table(
    "staff",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("staff_no", String(10), nullable=False, unique=True),  # the login id, digits
    # The owner's account carries the merchant number (MID) too: a second login id.
    Column("merchant_no", String(15), unique=True),
    Column("name", String(40), nullable=False),
    Column("role", String(8), nullable=False),  # admin | manager | cashier
    Column("lang", String(5), nullable=False),  # zh_CN | en
    Column("phone", String(21)),  # where SMS codes go
    Column("password_hash", String(200), nullable=False),
    Column("pin_hash", String(200)),  # the manager PIN, for overrides
    Column("disabled", Boolean, nullable=False),
    # The lockout: failed tries in a row (passwords, PINs, second-factor codes alike).
    Column("failed_tries", Integer, nullable=False),
    Column("locked_until", DateTime(timezone=True)),
    # TOTP: the confirmed secret; an enrolment's secret until a code from it verifies; the
    # last time step accepted, so no code (nor an older one) is accepted twice.
    Column("totp_secret", String(32)),
    Column("totp_pending_secret", String(32)),
    Column("totp_pending_at", DateTime(timezone=True)),
    Column("totp_last_step", BigInteger),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("staff_id", Integer, ForeignKey("staff.id"), nullable=False, index=True),
    Column("mode", String(8), nullable=False),  # cashier | admin
    # Handed to the page and sent back with each change; useless without the cookie.
    Column("csrf", String(64), nullable=False),
    Column("second_factor_ok", Boolean, nullable=False),
    Column("locked", Boolean, nullable=False),  # the idle lock
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("end_reason", String(12)),  # logout | disabled | expired | locked_out
)

# One row per SMS code sent for a pending admin-mode session; the code itself only hashed.
sms_codes = Table(
    "sms_codes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("session_id", Integer, ForeignKey("staff_sessions.id"), nullable=False, index=True),
    Column("code_hash", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("tries", Integer, nullable=False),
    Column("spent", Boolean, nullable=False),  # verified, replaced or tried out
)

# What the default SMS sender "sent": the demo's phone. A real gateway keeps nothing here.
sms_outbox = Table(
    "sms_outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("phone", String(21), nullable=False),
    Column("text", String(200), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

overrides = Table(
    "overrides",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("permission", String(20), nullable=False),
    Column("cashier_staff_id", Integer, ForeignKey("staff.id"), nullable=False, index=True),
    Column("manager_staff_id", Integer, ForeignKey("staff.id"), nullable=False, index=True),
    Column("detail", String(200), nullable=False),
)
