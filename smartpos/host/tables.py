"""The host's own database (separate from any terminal's): SQLAlchemy Core tables."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

settings_kv = Table(
    "host_settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

# Double-entry accounts. Counters are maintained per transfer; `smartpos host check`
# recomputes them from the immutable transfers table.
accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("debits_pending", BigInteger, nullable=False, default=0),
    Column("debits_posted", BigInteger, nullable=False, default=0),
    Column("credits_pending", BigInteger, nullable=False, default=0),
    Column("credits_posted", BigInteger, nullable=False, default=0),
    # Debits (pending + posted) must never exceed posted credits: a card account cannot go
    # below zero; control and merchant accounts may.
    Column("must_not_overdraw", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Immutable transfers (TigerBeetle style). `pending_id` is unique: a hold resolves at most once.
transfers = Table(
    "transfers",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("debit_account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("credit_account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("phase", String(8), nullable=False),  # posted | pending | post | void
    Column("pending_id", String(80), ForeignKey("transfers.id"), unique=True),
    Column("code", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

merchants = Table(
    "merchants",
    metadata,
    Column("mid", String(15), primary_key=True),
    Column("name", String(80), nullable=False),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
)

terminals = Table(
    "terminals",
    metadata,
    Column("tid", String(8), primary_key=True),
    Column("mid", String(15), ForeignKey("merchants.mid"), nullable=False),
    Column("status", String(16), nullable=False, default="active"),
    Column("sealed_tmk", LargeBinary, nullable=False),
    Column("sealed_tpk", LargeBinary),
    Column("sealed_tak", LargeBinary),
    Column("signed_on_at", DateTime(timezone=True)),
    # Trace number (11) of the last sign-on accepted: an older one is a replay.
    Column("signon_stan", String(6)),
    # The AES PIN key of a terminal on an aes-iso4 profile (sealed by the soft HSM), and the
    # initial KSN (TDES) or initial key ID (AES) its DUKPT key was derived for: not secret,
    # the host keeps the BDK only (docs/pin-security.md); and the highest DUKPT counter of
    # a KSN it accepted from this terminal: a KSN at or below it is a replay.
    Column("sealed_pin_key", LargeBinary),
    Column("initial_ksn", LargeBinary),
    Column("dukpt_counter", BigInteger),
)

# Issuer card records: only a keyed token and the masked PAN, never the PAN itself.
cards = Table(
    "cards",
    metadata,
    Column("token", String(32), primary_key=True),
    Column("pan_masked", String(19), nullable=False),
    Column("brand", String(16), nullable=False),
    Column("card_kind", String(8), nullable=False),  # debit | credit
    Column("expiry", String(4), nullable=False),  # YYMM
    Column("status", String(16), nullable=False),
    Column("pin_required", Boolean, nullable=False),
    Column("pvv", String(12), nullable=False),  # IBM 3624 PIN offset
    Column("pvki", String(1), nullable=False),
    Column("pin_tries", Integer, nullable=False, default=0),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("label", String(80), nullable=False, default=""),
    # Highest ATC of an ARQC that verified: a chip cryptogram at or below it is a replay.
    Column("last_atc", Integer),
)

# Every request the host answered: the de-duplication index and the transaction log.
requests = Table(
    "requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tid", String(8), nullable=False),
    Column("msg_class", String(4), nullable=False),
    Column("stan", String(6), nullable=False),
    Column("date_mmdd", String(4), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("response_code", String(2), nullable=False),
    Column("status", String(16), nullable=False),
    Column("rrn", String(12), unique=True),
    Column("auth_code", String(6)),
    Column("amount_minor", BigInteger, nullable=False, default=0),
    Column("refunded_minor", BigInteger, nullable=False, default=0),
    Column("pan_token", String(32)),
    Column("domestic", Boolean, nullable=False, default=True),
    Column("batch_no", String(6), nullable=False, default="000000"),
    Column("transfer_id", String(80)),
    Column("original_id", Integer, ForeignKey("requests.id")),
    Column("settled", Boolean, nullable=False, default=False),
    Column("uploaded", Boolean, nullable=False, default=False),
    Column("response_json", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Chip requests: the card's transaction counter of the ARQC, and — after the terminal's
    # TC advice verified — the card's transaction certificate (field 55 data, hex TLV).
    Column("atc", Integer),
    Column("tc", Text),
    UniqueConstraint("tid", "msg_class", "stan", "date_mmdd", name="uq_request_identity"),
    # De-duplication looks a request up by TID + STAN + date across message classes (the
    # reversal tombstone check), and settlement totals a terminal's batch.
    Index("ix_requests_tid_stan_date", "tid", "stan", "date_mmdd"),
    Index("ix_requests_tid_batch", "tid", "batch_no"),
    Index("ix_requests_tid_id", "tid", "id"),
)

batches = Table(
    "batches",
    metadata,
    Column("tid", String(8), primary_key=True),
    Column("batch_no", String(6), primary_key=True),
    Column("status", String(16), nullable=False),  # open | uploading | settled
    Column("result", String(1)),
    Column("settled_at", DateTime(timezone=True)),
)
