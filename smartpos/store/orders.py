"""Orders: the cart on the server, held and resumed orders, and the after-sale search.

The client makes each order's id when the cashier starts it, so a retried request (a timeout,
a double click, a browser that crashed and came back) finds the same order instead of making
a second one. Every change of an order runs in one transaction that first takes the order's
row for writing (:func:`lock_order`), so two requests for one order never interleave.

States (docs/orders-and-shifts.md)::

    open ──hold──▶ held ──resume──▶ open
    open ──begin_payment──▶ paying ──approved──▶ paid ──void──▶ voided
                              └──declined──▶ open     paid ──refund──▶ partially_refunded
                                                                  └──▶ refunded

Only an ``open`` order's lines change. Totals are integers in minor units; a percent discount
is rounded half up to the fen (:func:`percent_of`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, delete, exists, insert, select, update
from sqlalchemy.exc import IntegrityError

from smartpos.store.catalog_tables import products
from smartpos.store.errors import StoreError, StoreRefusal
from smartpos.store.order_tables import order_lines, orders, payments, shifts

__all__ = [
    "LABEL_MAX_CHARS",
    "LINES_MAX",
    "LINE_AMOUNT_MAX_MINOR",
    "NOTE_MAX_CHARS",
    "QTY_MAX",
    "Clock",
    "Line",
    "Order",
    "OrderStatus",
    "OrderSummary",
    "Orders",
    "lock_open_shift",
    "lock_order",
    "open_shift_of",
    "percent_of",
    "read_order",
    "utc",
]

Clock = Callable[[], datetime]

# 8..56 characters: a UUID4 (36) fits, and the terminal keys derived from it (".void2",
# ".r12") stay within the terminal journal's 64-character order reference.
_ORDER_ID = re.compile(r"[A-Za-z0-9_-]{8,56}")
QTY_MAX = 9999
LINES_MAX = 200
LABEL_MAX_CHARS = 60
NOTE_MAX_CHARS = 200
LINE_AMOUNT_MAX_MINOR = 99_999_999  # ¥999,999.99 keyed in at once is a slip, not a sale
SEARCH_LIMIT_MAX = 200


class OrderStatus(StrEnum):
    OPEN = "open"
    HELD = "held"
    PAYING = "paying"  # a payment attempt waits for its result: the cart is frozen
    PAID = "paid"
    VOIDED = "voided"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


def _now_utc() -> datetime:
    return datetime.now(UTC)


def utc(at: datetime | None) -> datetime | None:
    """``at`` as an aware UTC time (SQLite hands stored times back without their zone)."""
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def percent_of(amount_minor: int, percent: int) -> int:
    """``percent`` % of ``amount_minor``, rounded half up to the minor unit (the one rounding
    rule of orders: 10 % of 1.25 is 0.13)."""
    return (amount_minor * percent + 50) // 100


@dataclass(frozen=True)
class Line:
    id: int
    kind: str  # product | amount
    product_id: int | None
    name_zh: str
    name_en: str
    unit: str
    unit_price_minor: int
    tax_rate_bp: int | None
    qty: int
    discount_percent: int | None
    discount_minor: int

    def name(self, lang: str) -> str:
        """The Chinese name for ``zh_CN``, the English one for any other language (as the
        catalog's products)."""
        return self.name_zh if lang == "zh_CN" else self.name_en

    @property
    def gross_minor(self) -> int:
        return self.unit_price_minor * self.qty

    @property
    def total_minor(self) -> int:
        return self.gross_minor - self.discount_minor

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["gross_minor"], out["total_minor"] = self.gross_minor, self.total_minor
        return out


@dataclass(frozen=True)
class Order:
    id: str
    status: OrderStatus
    staff_id: int
    shift_id: int | None
    tid: str | None
    created_at: datetime
    updated_at: datetime
    paid_at: datetime | None
    receipt_no: str | None
    lines: tuple[Line, ...]
    subtotal_minor: int
    discount_minor: int
    total_minor: int
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": str(self.status),
            "staff_id": self.staff_id,
            "shift_id": self.shift_id,
            "tid": self.tid,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "paid_at": self.paid_at.isoformat() if self.paid_at else None,
            "receipt_no": self.receipt_no,
            "lines": [line.to_dict() for line in self.lines],
            "subtotal_minor": self.subtotal_minor,
            "discount_minor": self.discount_minor,
            "total_minor": self.total_minor,
            "note": self.note,
        }


@dataclass(frozen=True)
class OrderSummary:
    """One row of the after-sale search: enough to recognise the sale on the screen."""

    id: str
    status: OrderStatus
    receipt_no: str | None
    created_at: datetime
    paid_at: datetime | None
    staff_id: int
    total_minor: int
    method: str | None  # the approved sale payment's method
    last4: str | None
    rrn: str | None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = str(self.status)
        out["created_at"] = self.created_at.isoformat()
        out["paid_at"] = self.paid_at.isoformat() if self.paid_at else None
        return out


def _line_of(row: Any) -> Line:
    return Line(
        id=row.id,
        kind=row.kind,
        product_id=row.product_id,
        name_zh=row.name_zh,
        name_en=row.name_en,
        unit=row.unit,
        unit_price_minor=row.unit_price_minor,
        tax_rate_bp=row.tax_rate_bp,
        qty=row.qty,
        discount_percent=row.discount_percent,
        discount_minor=row.discount_minor,
    )


def read_order(conn: Connection, order_id: str) -> Order:
    """The order with its lines as stored now (StoreError NO_SUCH_ORDER if there is none)."""
    row = conn.execute(select(orders).where(orders.c.id == order_id)).first()
    if row is None:
        raise StoreError(StoreRefusal.NO_SUCH_ORDER, order_id=order_id)
    lines = conn.execute(
        select(order_lines).where(order_lines.c.order_id == order_id).order_by(order_lines.c.id)
    ).all()
    created, updated = utc(row.created_at), utc(row.updated_at)
    assert created is not None and updated is not None
    return Order(
        id=row.id,
        status=OrderStatus(row.status),
        staff_id=row.staff_id,
        shift_id=row.shift_id,
        tid=row.tid,
        created_at=created,
        updated_at=updated,
        paid_at=utc(row.paid_at),
        receipt_no=row.receipt_no,
        lines=tuple(_line_of(r) for r in lines),
        subtotal_minor=row.subtotal_minor,
        discount_minor=row.discount_minor,
        total_minor=row.total_minor,
        note=row.note,
    )


def lock_order(conn: Connection, order_id: str, now: datetime) -> Order:
    """Take the order's row for writing, then read it: the write comes first so that SQLite
    takes its write lock before any read (no stale snapshot to upgrade) and PostgreSQL makes
    a second transaction on this order wait for this one to end."""
    done = conn.execute(update(orders).where(orders.c.id == order_id).values(updated_at=now))
    if done.rowcount != 1:
        raise StoreError(StoreRefusal.NO_SUCH_ORDER, order_id=order_id)
    return read_order(conn, order_id)


def open_shift_of(conn: Connection, staff_id: int) -> int | None:
    """The id of ``staff_id``'s open shift, if there is one."""
    return conn.execute(
        select(shifts.c.id).where(shifts.c.open_staff_id == staff_id)
    ).scalar_one_or_none()


def _require_open(order: Order) -> None:
    if order.status is not OrderStatus.OPEN:
        raise StoreError(StoreRefusal.ORDER_NOT_OPEN, status=str(order.status))


def _check_qty(qty: int, low: int = 1) -> None:
    if isinstance(qty, bool) or not isinstance(qty, int) or not low <= qty <= QTY_MAX:
        raise StoreError(StoreRefusal.BAD_QTY, qty=qty, low=low, high=QTY_MAX)


def _find_line(order: Order, line_id: int) -> Line:
    for line in order.lines:
        if line.id == line_id:
            return line
    raise StoreError(StoreRefusal.NO_SUCH_LINE, line_id=line_id)


def _discount_for(line: Line, qty: int) -> int:
    """The line's discount at ``qty``: a percent follows the quantity; an amount stays, but
    never above the line's new gross (the line total never goes below zero)."""
    gross = line.unit_price_minor * qty
    if line.discount_percent is not None:
        return percent_of(gross, line.discount_percent)
    return min(line.discount_minor, gross)


def _store_totals(conn: Connection, order_id: str) -> None:
    rows = conn.execute(
        select(
            order_lines.c.unit_price_minor, order_lines.c.qty, order_lines.c.discount_minor
        ).where(order_lines.c.order_id == order_id)
    ).all()
    subtotal = sum(r.unit_price_minor * r.qty for r in rows)
    discount = sum(r.discount_minor for r in rows)
    conn.execute(
        update(orders)
        .where(orders.c.id == order_id)
        .values(subtotal_minor=subtotal, discount_minor=discount, total_minor=subtotal - discount)
    )


class Orders:
    """The store's orders: create and change carts, hold and resume them, look them up."""

    def __init__(self, engine: Engine, clock: Clock = _now_utc) -> None:
        self.engine = engine
        self.clock = clock

    def _now(self) -> datetime:
        now = utc(self.clock())
        assert now is not None
        return now

    # -- the cart ---------------------------------------------------------------------------

    def create(
        self, order_id: str, *, staff_id: int, shift_id: int | None, tid: str | None = None
    ) -> Order:
        """The order ``order_id``, created open and empty for ``staff_id`` unless it exists:
        creating an existing id again returns that order as it is (never a second one)."""
        if not isinstance(order_id, str) or not _ORDER_ID.fullmatch(order_id):
            raise StoreError(StoreRefusal.BAD_ORDER_ID, order_id=order_id)
        if tid is not None and not (isinstance(tid, str) and 1 <= len(tid) <= 8):
            raise StoreError(StoreRefusal.BAD_QUERY, why="tid is 1 to 8 characters")
        now = self._now()
        try:
            with self.engine.begin() as conn:
                if shift_id is not None:
                    _check_shift_open(conn, shift_id)
                found = conn.execute(select(orders.c.id).where(orders.c.id == order_id)).first()
                if found is None:
                    conn.execute(
                        insert(orders).values(
                            id=order_id,
                            status=OrderStatus.OPEN.value,
                            staff_id=staff_id,
                            shift_id=shift_id,
                            tid=tid,
                            created_at=now,
                            updated_at=now,
                            subtotal_minor=0,
                            discount_minor=0,
                            total_minor=0,
                            note="",
                        )
                    )
                return read_order(conn, order_id)
        except IntegrityError:
            # The same id created by a concurrent request a moment ago: that one is the order.
            return self.get(order_id)

    def get(self, order_id: str) -> Order:
        """The order as stored (StoreError NO_SUCH_ORDER if there is none)."""
        with self.engine.connect() as conn:
            return read_order(conn, order_id)

    def current_open(self, staff_id: int) -> Order | None:
        """The cashier's cart: their most recently changed open (or paying) order, so a
        browser that crashed finds the cart where it was."""
        with self.engine.connect() as conn:
            found = conn.execute(
                select(orders.c.id)
                .where(
                    orders.c.staff_id == staff_id,
                    orders.c.status.in_([OrderStatus.OPEN.value, OrderStatus.PAYING.value]),
                )
                .order_by(orders.c.updated_at.desc(), orders.c.id.desc())
                .limit(1)
            ).scalar_one_or_none()
            return None if found is None else read_order(conn, found)

    def add_product(self, order_id: str, product_id: int, qty: int = 1) -> Order:
        """Add ``qty`` of an active product at its price now (name, unit, price and tax rate
        are copied into the line: later catalog changes leave the order alone). The same
        product again adds to its line's quantity, at the line's price."""
        _check_qty(qty)
        with self.engine.begin() as conn:
            order = lock_order(conn, order_id, self._now())
            _require_open(order)
            same = [
                ln for ln in order.lines if ln.kind == "product" and ln.product_id == product_id
            ]
            if same:
                line = same[0]
                _check_qty(line.qty + qty)
                self._write_qty(conn, line, line.qty + qty)
            else:
                product = conn.execute(
                    select(products).where(products.c.id == product_id, products.c.active)
                ).first()
                if product is None:
                    raise StoreError(StoreRefusal.NO_SUCH_PRODUCT, product_id=product_id)
                self._insert_line(
                    conn,
                    order,
                    kind="product",
                    product_id=product_id,
                    name_zh=product.name_zh,
                    name_en=product.name_en,
                    unit=product.unit,
                    unit_price_minor=product.price_minor,
                    tax_rate_bp=product.tax_rate_bp,
                    qty=qty,
                )
            _store_totals(conn, order_id)
            return read_order(conn, order_id)

    def add_amount(self, order_id: str, amount_minor: int, label: str) -> Order:
        """Add a free amount keyed in on the keypad, as its own line of quantity 1."""
        if (
            isinstance(amount_minor, bool)
            or not isinstance(amount_minor, int)
            or not 1 <= amount_minor <= LINE_AMOUNT_MAX_MINOR
        ):
            raise StoreError(
                StoreRefusal.BAD_AMOUNT, amount=amount_minor, high=LINE_AMOUNT_MAX_MINOR
            )
        label = label.strip() if isinstance(label, str) else ""
        if not 1 <= len(label) <= LABEL_MAX_CHARS:
            raise StoreError(StoreRefusal.BAD_LABEL, high=LABEL_MAX_CHARS)
        with self.engine.begin() as conn:
            order = lock_order(conn, order_id, self._now())
            _require_open(order)
            self._insert_line(
                conn,
                order,
                kind="amount",
                product_id=None,
                name_zh=label,
                name_en=label,
                unit="",
                unit_price_minor=amount_minor,
                tax_rate_bp=None,
                qty=1,
            )
            _store_totals(conn, order_id)
            return read_order(conn, order_id)

    def set_qty(self, order_id: str, line_id: int, qty: int) -> Order:
        """Set a line's quantity (1..QTY_MAX); 0 removes the line."""
        _check_qty(qty, low=0)
        with self.engine.begin() as conn:
            order = lock_order(conn, order_id, self._now())
            _require_open(order)
            line = _find_line(order, line_id)
            if qty == 0:
                conn.execute(delete(order_lines).where(order_lines.c.id == line.id))
            else:
                self._write_qty(conn, line, qty)
            _store_totals(conn, order_id)
            return read_order(conn, order_id)

    def set_line_discount(
        self,
        order_id: str,
        line_id: int,
        *,
        percent: int | None = None,
        amount_minor: int | None = None,
    ) -> float:
        """Give a line a discount of ``percent`` (0..100, follows the quantity) or of
        ``amount_minor`` (0..the line's gross); neither removes the discount. Returns the
        discount as a percent of the line's gross, rounded UP to 0.01, so that the caller's
        check against the cashier's limit never lets a discount slightly above it pass."""
        if percent is not None and amount_minor is not None:
            raise StoreError(StoreRefusal.BAD_DISCOUNT, why="give a percent or an amount")
        with self.engine.begin() as conn:
            order = lock_order(conn, order_id, self._now())
            _require_open(order)
            line = _find_line(order, line_id)
            gross = line.gross_minor
            if percent is not None:
                if (
                    isinstance(percent, bool)
                    or not isinstance(percent, int)
                    or not (0 <= percent <= 100)
                ):
                    raise StoreError(StoreRefusal.BAD_DISCOUNT, why="percent is 0 to 100")
                discount = percent_of(gross, percent)
            elif amount_minor is not None:
                if (
                    isinstance(amount_minor, bool)
                    or not isinstance(amount_minor, int)
                    or not 0 <= amount_minor <= gross
                ):
                    raise StoreError(
                        StoreRefusal.BAD_DISCOUNT, why=f"amount is 0 to the line's {gross}"
                    )
                discount = amount_minor
            else:
                discount = 0
            conn.execute(
                update(order_lines)
                .where(order_lines.c.id == line.id)
                .values(discount_percent=percent, discount_minor=discount)
            )
            _store_totals(conn, order_id)
        if gross == 0:
            return 0.0
        return -(-discount * 10_000 // gross) / 100

    def remove_line(self, order_id: str, line_id: int) -> Order:
        """Remove one line of an open order."""
        return self.set_qty(order_id, line_id, 0)

    def clear(self, order_id: str) -> Order:
        """Remove every line of an open order (the order stays, open and empty)."""
        with self.engine.begin() as conn:
            order = lock_order(conn, order_id, self._now())
            _require_open(order)
            conn.execute(delete(order_lines).where(order_lines.c.order_id == order_id))
            _store_totals(conn, order_id)
            return read_order(conn, order_id)

    def _insert_line(self, conn: Connection, order: Order, **values: Any) -> None:
        if len(order.lines) >= LINES_MAX:
            raise StoreError(StoreRefusal.TOO_MANY_LINES, high=LINES_MAX)
        conn.execute(
            insert(order_lines).values(
                order_id=order.id, discount_percent=None, discount_minor=0, **values
            )
        )

    def _write_qty(self, conn: Connection, line: Line, qty: int) -> None:
        conn.execute(
            update(order_lines)
            .where(order_lines.c.id == line.id)
            .values(qty=qty, discount_minor=_discount_for(line, qty))
        )

    # -- hold and resume (挂单/取单) ---------------------------------------------------------

    def hold(self, order_id: str, note: str = "") -> Order:
        """Put an open, non-empty order aside (挂单) with a note; any cashier may resume it."""
        if not isinstance(note, str) or len(note) > NOTE_MAX_CHARS:
            raise StoreError(StoreRefusal.BAD_NOTE, high=NOTE_MAX_CHARS)
        with self.engine.begin() as conn:
            order = lock_order(conn, order_id, self._now())
            _require_open(order)
            if not order.lines:
                raise StoreError(StoreRefusal.EMPTY_ORDER)
            conn.execute(
                update(orders)
                .where(orders.c.id == order_id)
                .values(status=OrderStatus.HELD.value, note=note.strip())
            )
            return read_order(conn, order_id)

    def held(self, limit: int = 100) -> list[Order]:
        """The held orders of the store, the most recently held first."""
        with self.engine.connect() as conn:
            ids = conn.execute(
                select(orders.c.id)
                .where(orders.c.status == OrderStatus.HELD.value)
                .order_by(orders.c.updated_at.desc(), orders.c.id.desc())
                .limit(max(1, min(limit, SEARCH_LIMIT_MAX)))
            ).scalars()
            return [read_order(conn, i) for i in list(ids)]

    def resume(self, order_id: str, staff_id: int) -> Order:
        """Take a held order back (取单) as ``staff_id``'s open cart, in their open shift."""
        with self.engine.begin() as conn:
            order = lock_order(conn, order_id, self._now())
            if order.status is not OrderStatus.HELD:
                raise StoreError(StoreRefusal.ORDER_NOT_HELD, status=str(order.status))
            conn.execute(
                update(orders)
                .where(orders.c.id == order_id)
                .values(
                    status=OrderStatus.OPEN.value,
                    staff_id=staff_id,
                    shift_id=open_shift_of(conn, staff_id),
                )
            )
            return read_order(conn, order_id)

    # -- after-sale search ------------------------------------------------------------------

    def search(
        self,
        *,
        date_from: datetime | None = None,
        date_to: datetime | None = None,
        amount_minor: int | None = None,
        last4: str | None = None,
        rrn: str | None = None,
        receipt_no: str | None = None,
        method: str | None = None,
        status: str | None = None,
        staff_id: int | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[OrderSummary]:
        """Orders matching every given filter, newest first. Dates filter when the order was
        created (``date_from`` included, ``date_to`` excluded); ``amount_minor`` is the
        order's total; ``last4``, ``rrn`` and ``method`` match its approved sale payment."""
        if not 1 <= limit <= SEARCH_LIMIT_MAX or offset < 0:
            raise StoreError(StoreRefusal.BAD_QUERY, why=f"limit 1..{SEARCH_LIMIT_MAX}")
        if last4 is not None and not re.fullmatch(r"[0-9]{4}", last4):
            raise StoreError(StoreRefusal.BAD_QUERY, why="last4 is 4 digits")
        if rrn is not None and not re.fullmatch(r"[A-Za-z0-9]{12}", rrn):
            raise StoreError(StoreRefusal.BAD_QUERY, why="rrn is 12 letters and digits")
        if status is not None and status not in set(OrderStatus):
            raise StoreError(StoreRefusal.BAD_QUERY, why=f"no status {status!r}")
        query = select(orders)
        if date_from is not None:
            query = query.where(orders.c.created_at >= utc(date_from))
        if date_to is not None:
            query = query.where(orders.c.created_at < utc(date_to))
        for column, value in (
            (orders.c.total_minor, amount_minor),
            (orders.c.receipt_no, receipt_no),
            (orders.c.status, status),
            (orders.c.staff_id, staff_id),
        ):
            if value is not None:
                query = query.where(column == value)
        sale = [payments.c.order_id == orders.c.id, *_approved_sale()]
        for column, value in (
            (payments.c.last4, last4),
            (payments.c.rrn, rrn),
            (payments.c.method, method),
        ):
            if value is not None:
                sale.append(column == value)
        if len(sale) > 3:
            query = query.where(exists().where(*sale))
        query = query.order_by(orders.c.created_at.desc(), orders.c.id.desc())
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(limit).offset(offset)).all()
            paid = _sale_payments(conn, [r.id for r in rows])
        return [_summary(r, paid.get(r.id)) for r in rows]


def _approved_sale() -> list[Any]:
    return [payments.c.kind == "sale", payments.c.status == "approved"]


def _sale_payments(conn: Connection, order_ids: Sequence[str]) -> dict[str, Any]:
    if not order_ids:
        return {}
    rows = conn.execute(
        select(payments.c.order_id, payments.c.method, payments.c.last4, payments.c.rrn).where(
            payments.c.order_id.in_(order_ids), *_approved_sale()
        )
    ).all()
    return {r.order_id: r for r in rows}


def _summary(row: Any, sale: Any) -> OrderSummary:
    created = utc(row.created_at)
    assert created is not None
    return OrderSummary(
        id=row.id,
        status=OrderStatus(row.status),
        receipt_no=row.receipt_no,
        created_at=created,
        paid_at=utc(row.paid_at),
        staff_id=row.staff_id,
        total_minor=row.total_minor,
        method=sale.method if sale else None,
        last4=sale.last4 if sale else None,
        rrn=sale.rrn if sale else None,
    )


def _check_shift_open(conn: Connection, shift_id: int) -> None:
    status = conn.execute(
        select(shifts.c.status).where(shifts.c.id == shift_id)
    ).scalar_one_or_none()
    if status is None:
        raise StoreError(StoreRefusal.NO_SUCH_SHIFT, shift_id=shift_id)
    if status != "open":
        raise StoreError(StoreRefusal.SHIFT_CLOSED, shift_id=shift_id)


def lock_open_shift(conn: Connection, shift_id: int) -> None:
    """Take an open shift's row for writing (a close waits for this transaction, and this
    one sees a close that committed first), or refuse: no such shift, or shift closed."""
    # A write that changes nothing still takes the row lock (PostgreSQL) / write lock (SQLite).
    done = conn.execute(
        update(shifts)
        .where(shifts.c.id == shift_id, shifts.c.status == "open")
        .values(status="open")
    )
    if done.rowcount != 1:
        _check_shift_open(conn, shift_id)
        raise AssertionError("unreachable: the shift is open but was not updated")
