"""Order tables: orders (the cart lives here), their lines, their payments; shifts.

``payments`` is the store's money ledger: every movement of money for an order is one row —
a sale, the void that cancels a sale, or a refund — with the shift whose drawer or terminal
took it. A row is written once as pending (or approved at once for cash) and resolved once;
shift reports are sums over it (docs/orders-and-shifts.md).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from smartpos.db.pos import metadata

__all__ = [
    "metadata",
    "order_lines",
    "orders",
    "payments",
    "receipt_counters",
    "refund_lines",
    "shift_cash_moves",
    "shifts",
]

shifts = Table(
    "shifts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("staff_id", Integer, nullable=False, index=True),
    # The staff id while the shift is open, NULL once closed: the unique constraint makes
    # "one open shift per cashier" hold in the database itself (NULLs never collide).
    Column("open_staff_id", Integer, unique=True),
    Column("status", String(8), nullable=False),  # open | closed
    Column("float_minor", BigInteger, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
    Column("counted_minor", BigInteger),
    Column("expected_minor", BigInteger),
    Column("difference_minor", BigInteger),
    Column("reason", String(200)),
)

# Paid-in and paid-out of a shift's drawer (not sales): change fetched, a supplier paid.
shift_cash_moves = Table(
    "shift_cash_moves",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("shift_id", Integer, ForeignKey("shifts.id"), nullable=False, index=True),
    Column("direction", String(4), nullable=False),  # in | out
    Column("amount_minor", BigInteger, nullable=False),
    Column("reason", String(200), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("id", String(56), primary_key=True),  # made by the client: a retry is the same order
    # open | held | paying | paid | voided | partially_refunded | refunded
    Column("status", String(20), nullable=False),
    Column("staff_id", Integer, nullable=False),
    Column("shift_id", Integer, ForeignKey("shifts.id"), index=True),
    Column("tid", String(8)),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("paid_at", DateTime(timezone=True)),
    Column("receipt_no", String(20), unique=True),
    Column("subtotal_minor", BigInteger, nullable=False),
    Column("discount_minor", BigInteger, nullable=False),
    Column("total_minor", BigInteger, nullable=False, index=True),
    Column("note", String(200), nullable=False),
    Index("ix_orders_staff_status", "staff_id", "status"),
    Index("ix_orders_status_created", "status", "created_at"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", String(56), ForeignKey("orders.id"), nullable=False, index=True),
    Column("kind", String(8), nullable=False),  # product | amount (keyed in)
    Column("product_id", Integer, ForeignKey("products.id")),
    # Snapshot at the time the line was added: later catalog changes leave the order alone.
    Column("name_zh", String(120), nullable=False),
    Column("name_en", String(120), nullable=False),
    Column("unit", String(16), nullable=False),
    Column("unit_price_minor", BigInteger, nullable=False),
    Column("tax_rate_bp", Integer),
    Column("qty", Integer, nullable=False),
    Column("discount_percent", Integer),  # set when the discount was given as a percent
    Column("discount_minor", BigInteger, nullable=False),
)

payments = Table(
    "payments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", String(56), ForeignKey("orders.id"), nullable=False, index=True),
    Column("kind", String(8), nullable=False),  # sale | void | refund
    Column("attempt", Integer, nullable=False),  # 1, 2, ... per order and kind
    Column("key", String(64), nullable=False, unique=True),  # the terminal's order_ref
    Column("method", String(8), nullable=False),  # card | cash | qr
    Column("amount_minor", BigInteger, nullable=False),
    Column("tendered_minor", BigInteger),
    Column("change_minor", BigInteger),
    Column("status", String(10), nullable=False),  # pending | approved | declined
    Column("shift_id", Integer, ForeignKey("shifts.id"), index=True),
    Column("staff_id", Integer),
    Column("ref_payment_id", Integer, ForeignKey("payments.id")),  # the sale voided/refunded
    Column("response_code", String(4)),
    Column("message", String(120)),
    Column("auth_code", String(8)),
    Column("rrn", String(12), index=True),
    Column("stan", String(6)),
    Column("invoice_no", String(6)),
    Column("batch_no", String(6)),
    Column("pan_masked", String(24)),  # masked only: never a full PAN
    Column("last4", String(4), index=True),
    Column("reference", String(64)),  # a QR payment's trade number
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
    UniqueConstraint("order_id", "kind", "attempt", name="uq_payments_order_kind_attempt"),
)

# The goods a refund takes back (they return to stock when the refund is approved).
refund_lines = Table(
    "refund_lines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("payment_id", Integer, ForeignKey("payments.id"), nullable=False, index=True),
    Column("order_line_id", Integer, ForeignKey("order_lines.id"), nullable=False),
    Column("product_id", Integer, ForeignKey("products.id"), nullable=False),
    Column("qty", Integer, nullable=False),
)

# The last receipt number given on each store-local day (R20261203-0001, -0002, ...).
receipt_counters = Table(
    "receipt_counters",
    metadata,
    Column("day", String(8), primary_key=True),
    Column("last_no", Integer, nullable=False),
)
