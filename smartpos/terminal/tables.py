"""The terminal's own database: configuration, counters, journal, pending reversals."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# One row (id = 1): who this terminal is, its sealed keys and its counters.
terminal_config = Table(
    "terminal_config",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tid", String(8), nullable=False),
    Column("mid", String(15), nullable=False),
    Column("merchant_name", String(80), nullable=False),
    Column("profile", String(32), nullable=False),
    Column("link_host", String(255), nullable=False),
    Column("link_port", Integer, nullable=False),
    Column("host_fingerprint", String(64)),
    Column("sealed_tmk", LargeBinary, nullable=False),
    Column("sealed_tpk", LargeBinary),
    Column("sealed_tak", LargeBinary),
    Column("sealed_token_key", LargeBinary, nullable=False),
    Column("stan", Integer, nullable=False, default=0),
    Column("invoice_no", Integer, nullable=False, default=0),
    Column("batch_no", Integer, nullable=False, default=1),
    Column("signed_on_at", DateTime(timezone=True)),
    # PIN key material of a profile whose PIN scheme is not the sign-on TPK's
    # (docs/pin-security.md), sealed: the AES PIN key (aes-iso4, AAD "pin-aes:<tid>") or the
    # DUKPT register's state (AAD "dukpt:<tid>"), advanced before each PIN block leaves.
    Column("sealed_pin_key", LargeBinary),
    Column("sealed_dukpt", LargeBinary),
)

# The journal: every card transaction the terminal started, with its outcome. PANs only as
# keyed token + masked form; never track data, PIN or PIN block.
journal = Table(
    "journal",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # sale | void | refund | balance
    Column("stan", String(6), nullable=False),
    Column("date_mmdd", String(4), nullable=False),
    Column("local_time", String(6)),  # field 12 (hhmmss), repeated by the reversal
    Column("invoice_no", String(6), nullable=False),
    Column("batch_no", String(6), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("pan_token", String(32)),
    Column("pan_masked", String(19)),
    Column("brand", String(16)),
    Column("entry_mode", String(16)),
    Column("pin_verified", Boolean, nullable=False, default=False),
    # pending → approved | declined | error | reversal_pending → reversed; approved → voided
    Column("status", String(20), nullable=False),
    Column("response_code", String(2)),
    Column("auth_code", String(6)),
    Column("rrn", String(12)),
    Column("message", Text),
    Column("original_id", Integer, ForeignKey("journal.id")),
    Column("refunded_minor", BigInteger, nullable=False, default=0),
    Column("settled", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # An inserted chip card's TC (field 55 data, hex) for the host's TC advice:
    # tc_state pending → sent | refused; the PAN for the advice is kept sealed under the
    # vault only while pending, and cleared when the batch settles whatever happened.
    Column("tc", Text),
    Column("tc_state", String(8)),
    Column("tc_pan_sealed", LargeBinary),
    # The caller's idempotency key (an order reference; unique when given) and, as JSON,
    # the result it was given (masked PAN only): the same reference again gets this
    # result and nothing is sent (smartpos.terminal.engine.Terminal.repeated).
    Column("order_ref", String(64), unique=True),
    Column("result", Text),
)

# A reversal is written *before* its money-moving request goes out ("armed"); a valid
# answer disarms it ("done"); anything else makes it "pending" until the host acknowledges.
reversals = Table(
    "reversals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("journal_id", Integer, ForeignKey("journal.id"), nullable=False, unique=True),
    Column("status", String(12), nullable=False),  # armed | pending | done
    Column("reason", String(2), nullable=False, default="98"),
    Column("proc_code", String(6), nullable=False),
    Column("type_code", String(2), nullable=False),
    Column("entry_mode", String(3), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

settlements = Table(
    "settlements",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch_no", String(6), nullable=False),
    Column("result", String(16), nullable=False),
    Column("totals", String(62), nullable=False),
    Column("host_totals", String(62)),
    Column("uploaded", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Where earlier versions kept the simulated chip cards' counters (keyed by PAN token). A card
# keeps its own counter: the simulated reader does now (smartpos.devices.counters), and the
# terminal moves any rows left here into it the first time it reads a chip card.
chip_counters = Table(
    "chip_counters",
    metadata,
    Column("pan_token", String(32), primary_key=True),
    Column("atc", Integer, nullable=False),
)
