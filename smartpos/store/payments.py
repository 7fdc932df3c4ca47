"""Payments of orders: sales by card, QR or cash, voids and refunds (with returned goods), and
an order's details for the after-sale screen.

The store never calls the terminal: it hands the caller the idempotency key to give the
terminal (``order_ref``) and records the result. Keys are derived, never random, so a
repeated request finds the same key and the terminal charges once:

- sale attempt *n* of order ``o``: ``o.n`` (``o.1``, then ``o.2`` after a decline);
- void attempt *n*: ``o.void``, then ``o.void2``…;
- refund number *n*: ``o.r1``, ``o.r2``….

While an attempt is pending, asking again returns that same attempt. One approved sale
payment pays the whole order (no split tender). Paying, voiding or refunding completes the
order in the same transaction as its stock moves and its receipt number: all or nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from smartpos.money import MAX_AMOUNT_MINOR
from smartpos.store.catalog_tables import products, stock_moves
from smartpos.store.errors import StoreError, StoreRefusal
from smartpos.store.order_tables import (
    orders,
    payments,
    receipt_counters,
    refund_lines,
)
from smartpos.store.orders import (
    Clock,
    Order,
    OrderStatus,
    lock_open_shift,
    lock_order,
    open_shift_of,
    read_order,
    utc,
)

__all__ = [
    "OrderDetails",
    "Payment",
    "PaymentStatus",
    "Payments",
    "Refund",
    "RefundLine",
    "refund_key",
    "sale_key",
    "void_key",
]

METHODS = ("card", "cash", "qr")
SALE_ATTEMPTS_MAX = 99
VOID_ATTEMPTS_MAX = 9
REFUNDS_MAX = 99
# A masked PAN: at most the first 6 and last 4 digits shown, the middle hidden.
_MASKED_PAN = re.compile(r"[0-9]{0,6}[*Xx]{4,13}[0-9]{0,4}")


class PaymentStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"


def sale_key(order_id: str, attempt: int) -> str:
    """The terminal key of sale attempt ``attempt`` of an order."""
    return f"{order_id}.{attempt}"


def void_key(order_id: str, attempt: int) -> str:
    """The terminal key of void attempt ``attempt`` of an order."""
    return f"{order_id}.void" if attempt == 1 else f"{order_id}.void{attempt}"


def refund_key(order_id: str, number: int) -> str:
    """The terminal key of refund number ``number`` of an order."""
    return f"{order_id}.r{number}"


@dataclass(frozen=True)
class Payment:
    """One movement of money of an order: a sale, the void of a sale, or a refund. For a
    void or a refund, ``original_*`` are the sale's numbers the terminal asks for."""

    id: int
    order_id: str
    kind: str  # sale | void | refund
    attempt: int
    key: str  # the terminal's order_ref
    method: str
    amount_minor: int
    status: PaymentStatus
    shift_id: int | None
    staff_id: int | None
    ref_payment_id: int | None
    tendered_minor: int | None
    change_minor: int | None
    response_code: str | None
    message: str | None
    auth_code: str | None
    rrn: str | None
    stan: str | None
    invoice_no: str | None
    batch_no: str | None
    pan_masked: str | None
    reference: str | None
    created_at: datetime
    resolved_at: datetime | None
    original_rrn: str | None = None
    original_stan: str | None = None
    original_invoice_no: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = str(self.status)
        out["created_at"] = self.created_at.isoformat()
        out["resolved_at"] = self.resolved_at.isoformat() if self.resolved_at else None
        return out


@dataclass(frozen=True)
class RefundLine:
    product_id: int
    order_line_id: int
    qty: int


@dataclass(frozen=True)
class Refund:
    """A refund (its money is ``payment``, kind "refund") and the goods it takes back."""

    payment: Payment
    lines: tuple[RefundLine, ...]

    @property
    def id(self) -> int:
        return self.payment.id

    @property
    def key(self) -> str:
        return self.payment.key

    @property
    def status(self) -> PaymentStatus:
        return self.payment.status

    @property
    def amount_minor(self) -> int:
        return self.payment.amount_minor

    def to_dict(self) -> dict[str, Any]:
        return {**self.payment.to_dict(), "lines": [asdict(line) for line in self.lines]}


@dataclass(frozen=True)
class OrderDetails:
    order: Order
    payments: tuple[Payment, ...]  # sales and voids, in order
    refunds: tuple[Refund, ...]
    refundable_minor: int  # what is left to refund (pending refunds already counted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "order": self.order.to_dict(),
            "payments": [p.to_dict() for p in self.payments],
            "refunds": [r.to_dict() for r in self.refunds],
            "refundable_minor": self.refundable_minor,
        }


def _payment_of(row: Any, original: Any = None) -> Payment:
    created = utc(row.created_at)
    assert created is not None
    return Payment(
        id=row.id,
        order_id=row.order_id,
        kind=row.kind,
        attempt=row.attempt,
        key=row.key,
        method=row.method,
        amount_minor=row.amount_minor,
        status=PaymentStatus(row.status),
        shift_id=row.shift_id,
        staff_id=row.staff_id,
        ref_payment_id=row.ref_payment_id,
        tendered_minor=row.tendered_minor,
        change_minor=row.change_minor,
        response_code=row.response_code,
        message=row.message,
        auth_code=row.auth_code,
        rrn=row.rrn,
        stan=row.stan,
        invoice_no=row.invoice_no,
        batch_no=row.batch_no,
        pan_masked=row.pan_masked,
        reference=row.reference,
        created_at=created,
        resolved_at=utc(row.resolved_at),
        original_rrn=original.rrn if original is not None else None,
        original_stan=original.stan if original is not None else None,
        original_invoice_no=original.invoice_no if original is not None else None,
    )


def _read_payment(conn: Connection, payment_id: int) -> Payment:
    row = conn.execute(select(payments).where(payments.c.id == payment_id)).first()
    if row is None:
        raise StoreError(StoreRefusal.NO_SUCH_PAYMENT, payment_id=payment_id)
    original = None
    if row.ref_payment_id is not None:
        original = conn.execute(select(payments).where(payments.c.id == row.ref_payment_id)).first()
    return _payment_of(row, original)


def _read_refund(conn: Connection, payment_id: int) -> Refund:
    payment = _read_payment(conn, payment_id)
    rows = conn.execute(
        select(refund_lines)
        .where(refund_lines.c.payment_id == payment_id)
        .order_by(refund_lines.c.id)
    ).all()
    return Refund(payment, tuple(RefundLine(r.product_id, r.order_line_id, r.qty) for r in rows))


def _payments_of(conn: Connection, order_id: str, kind: str) -> list[Payment]:
    ids = conn.execute(
        select(payments.c.id)
        .where(payments.c.order_id == order_id, payments.c.kind == kind)
        .order_by(payments.c.attempt)
    ).scalars()
    return [_read_payment(conn, i) for i in list(ids)]


def _with_status(found: Sequence[Payment], status: PaymentStatus) -> Payment | None:
    return next((p for p in found if p.status is status), None)


def _check_amount(amount_minor: int, low: int = 1) -> None:
    if (
        isinstance(amount_minor, bool)
        or not isinstance(amount_minor, int)
        or not low <= amount_minor <= MAX_AMOUNT_MINOR
    ):
        raise StoreError(StoreRefusal.BAD_AMOUNT, amount=amount_minor, high=MAX_AMOUNT_MINOR)


def _check_masked(pan_masked: Any) -> str | None:
    """The masked PAN to store, or a refusal if it shows more than the first 6 and last 4."""
    if pan_masked in (None, ""):
        return None
    if not isinstance(pan_masked, str):
        raise StoreError(StoreRefusal.FULL_PAN)
    compact = pan_masked.replace(" ", "").replace("-", "")
    digits = sum(c.isdigit() for c in compact)
    if not _MASKED_PAN.fullmatch(compact) or digits > 10:
        raise StoreError(StoreRefusal.FULL_PAN)
    return compact


def _outcome(result: Mapping[str, Any]) -> str:
    """approved | declined: a TxnResult's ``result`` ("error" means nothing was charged, or
    it was reversed, so it counts as not approved); ``outcome``/``approved`` also read."""
    outcome = result.get("result", result.get("outcome"))
    if outcome is None and "approved" in result:
        outcome = "approved" if result["approved"] is True else "declined"
    if outcome not in ("approved", "declined", "error"):
        raise StoreError(StoreRefusal.RESULT_MISMATCH, why=f"no outcome in {sorted(result)}")
    return "approved" if outcome == "approved" else "declined"


def _text(result: Mapping[str, Any], name: str, size: int) -> str | None:
    value = result.get(name)
    if value in (None, ""):
        return None
    return str(value)[:size]


def _move_stock(
    conn: Connection, product_id: int, delta_qty: int, reason: str, ref: str, at: datetime
) -> None:
    # Stands in for smartpos.store.catalog.adjust_stock (being written alongside): the same
    # row and update, in the caller's transaction. Stock may go below zero: the shelf is the
    # truth at the till, and a count corrects the books.
    conn.execute(
        insert(stock_moves).values(
            product_id=product_id, delta_qty=delta_qty, reason=reason, ref=ref, at=at
        )
    )
    conn.execute(
        update(products)
        .where(products.c.id == product_id)
        .values(stock_qty=products.c.stock_qty + delta_qty)
    )


class Payments:
    """Record the payments, voids and refunds of orders (the terminal is the caller's)."""

    def __init__(
        self, engine: Engine, clock: Clock | None = None, *, timezone: str = "Asia/Shanghai"
    ) -> None:
        from smartpos.store.orders import Orders

        self.engine = engine
        self._orders = Orders(engine, clock) if clock is not None else Orders(engine)
        self.tz = ZoneInfo(timezone)  # the store's day, for receipt numbers

    def _now(self) -> datetime:
        return self._orders._now()

    # -- sales ------------------------------------------------------------------------------

    def begin_payment(
        self, order_id: str, method: str, amount_minor: int, *, staff_id: int | None = None
    ) -> Payment:
        """Start paying the whole order by ``card`` or ``qr``: the pending attempt whose
        ``key`` the terminal is to be given. Asked again while it is pending (or after it
        was approved), the same attempt comes back — one key, one charge. After a decline
        a new attempt with a new key is made. Cash goes through :meth:`pay_cash`."""
        if method not in ("card", "qr"):
            raise StoreError(StoreRefusal.BAD_METHOD, method=method, allowed="card, qr")
        _check_amount(amount_minor)
        now = self._now()
        with self.engine.begin() as conn:
            order = lock_order(conn, order_id, now)
            sales = _payments_of(conn, order_id, "sale")
            for status in (PaymentStatus.PENDING, PaymentStatus.APPROVED):
                found = _with_status(sales, status)
                if found is not None:
                    if found.method == method and found.amount_minor == amount_minor:
                        return found
                    if status is PaymentStatus.PENDING:
                        raise StoreError(StoreRefusal.PAYMENT_PENDING, key=found.key)
            self._check_payable(order, amount_minor)
            shift_id = self._shift_for(conn, order, staff_id)
            payment_id = self._insert(
                conn,
                order,
                kind="sale",
                attempt=self._next_attempt(sales, SALE_ATTEMPTS_MAX),
                method=method,
                amount_minor=amount_minor,
                status=PaymentStatus.PENDING,
                shift_id=shift_id,
                staff_id=staff_id if staff_id is not None else order.staff_id,
                now=now,
            )
            self._set_status(conn, order_id, OrderStatus.PAYING)
            return _read_payment(conn, payment_id)

    def record_card_result(self, payment_id: int, result: Mapping[str, Any]) -> Payment:
        """Record the terminal's answer (``TxnResult.to_dict()``) for a pending sale. An
        approval pays the order — receipt number and stock moves in the same transaction;
        a decline (or an error) leaves the order open for a new attempt. The same answer
        again returns the payment as recorded; a different one is refused."""
        return self._record(payment_id, "sale", result)

    def record_qr_result(self, payment_id: int, *, approved: bool, reference: str) -> Payment:
        """Record a QR payment's outcome with the provider's trade number."""
        outcome = {"result": "approved" if approved else "declined", "reference": reference}
        return self._record(payment_id, "sale", outcome)

    def pay_cash(
        self, order_id: str, tendered_minor: int, *, staff_id: int | None = None
    ) -> tuple[Payment, int]:
        """Pay the whole order in cash from ``tendered_minor`` (at least the total): the
        payment and the change to give. The order is paid at once, with its receipt number
        and stock moves. Paying a cash-paid order again returns the same payment and
        change, never a second payment. Needs an open shift (the drawer)."""
        _check_amount(tendered_minor, low=0)
        now = self._now()
        with self.engine.begin() as conn:
            order = lock_order(conn, order_id, now)
            sales = _payments_of(conn, order_id, "sale")
            done = _with_status(sales, PaymentStatus.APPROVED)
            if done is not None and done.method == "cash":
                return done, done.change_minor or 0
            pending = _with_status(sales, PaymentStatus.PENDING)
            if pending is not None:
                raise StoreError(StoreRefusal.PAYMENT_PENDING, key=pending.key)
            self._check_payable(order, order.total_minor, zero_ok=True)
            if tendered_minor < order.total_minor:
                raise StoreError(
                    StoreRefusal.TENDERED_SHORT, tendered=tendered_minor, due=order.total_minor
                )
            shift_id = self._shift_for(conn, order, staff_id)
            if shift_id is None:
                raise StoreError(StoreRefusal.NO_SHIFT)
            change = tendered_minor - order.total_minor
            payment_id = self._insert(
                conn,
                order,
                kind="sale",
                attempt=self._next_attempt(sales, SALE_ATTEMPTS_MAX),
                method="cash",
                amount_minor=order.total_minor,
                status=PaymentStatus.APPROVED,
                shift_id=shift_id,
                staff_id=staff_id if staff_id is not None else order.staff_id,
                now=now,
                tendered_minor=tendered_minor,
                change_minor=change,
            )
            self._complete_sale(conn, order, now)
            return _read_payment(conn, payment_id), change

    # -- voids ------------------------------------------------------------------------------

    def begin_void(self, order_id: str, *, staff_id: int | None = None) -> Payment:
        """Void a paid order while the sale's shift is still open (later: refund it). Cash
        (and a zero total) is voided at once — the money leaves the same drawer, the goods
        return to stock; a card or QR void is pending with its key (``original_stan`` and
        ``original_invoice_no`` are what the terminal's void asks for). Asked again, the
        pending or approved void comes back."""
        now = self._now()
        with self.engine.begin() as conn:
            order = lock_order(conn, order_id, now)
            voids = _payments_of(conn, order_id, "void")
            for status in (PaymentStatus.PENDING, PaymentStatus.APPROVED):
                if (found := _with_status(voids, status)) is not None:
                    return found
            if order.status is not OrderStatus.PAID:
                raise StoreError(StoreRefusal.NOT_VOIDABLE, status=str(order.status))
            self._no_pending(conn, order_id, "refund")
            sale = _with_status(_payments_of(conn, order_id, "sale"), PaymentStatus.APPROVED)
            assert sale is not None, "a paid order has its approved sale"
            if sale.shift_id is not None:
                try:
                    lock_open_shift(conn, sale.shift_id)
                except StoreError:
                    raise StoreError(StoreRefusal.VOID_SHIFT_CLOSED) from None
            at_once = sale.method == "cash" or sale.amount_minor == 0
            payment_id = self._insert(
                conn,
                order,
                kind="void",
                attempt=self._next_attempt(voids, VOID_ATTEMPTS_MAX),
                method=sale.method,
                amount_minor=sale.amount_minor,
                status=PaymentStatus.APPROVED if at_once else PaymentStatus.PENDING,
                shift_id=sale.shift_id,  # a void cancels the sale in the sale's own shift
                staff_id=staff_id,
                now=now,
                ref_payment_id=sale.id,
            )
            if at_once:
                self._complete_void(conn, order, now)
            return _read_payment(conn, payment_id)

    def record_void(self, order_id: str, result: Mapping[str, Any]) -> Payment:
        """Record the terminal's answer to the order's pending void: approved voids the
        order and returns its goods to stock; declined leaves it paid."""
        with self.engine.connect() as conn:
            voids = _payments_of(conn, order_id, "void")
        if not voids:
            raise StoreError(StoreRefusal.NO_SUCH_PAYMENT, payment_id=f"{order_id}.void")
        found = _with_status(voids, PaymentStatus.PENDING) or voids[-1]
        return self._record(found.id, "void", result)

    # -- refunds ----------------------------------------------------------------------------

    def begin_refund(
        self,
        order_id: str,
        amount_minor: int,
        *,
        lines: Sequence[tuple[int, int]] | None = None,
        method: str | None = None,
        shift_id: int | None = None,
        staff_id: int | None = None,
    ) -> Refund:
        """Refund part or all of a paid order, optionally taking goods back (``lines`` of
        (product_id, qty)). Refused beyond what is left — approved AND pending refunds both
        count, so two refunds at once cannot exceed the sale — and beyond the quantity sold
        less what was returned. ``method`` defaults to the sale's; cash is always possible
        and is paid at once from ``shift_id``'s drawer (the shift paying it, not the
        sale's); a card or QR refund is pending with its key (``original_rrn`` is the sale's
        reference number the terminal asks for)."""
        _check_amount(amount_minor)
        wanted = Counter[int]()
        for product_id, qty in lines or ():
            if isinstance(qty, bool) or not isinstance(qty, int) or qty < 1:
                raise StoreError(StoreRefusal.BAD_QTY, qty=qty, low=1, high="the quantity sold")
            wanted[product_id] += qty
        now = self._now()
        with self.engine.begin() as conn:
            order = lock_order(conn, order_id, now)
            if order.status not in (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED):
                raise StoreError(StoreRefusal.NOT_REFUNDABLE, status=str(order.status))
            self._no_pending(conn, order_id, "void")
            sale = _with_status(_payments_of(conn, order_id, "sale"), PaymentStatus.APPROVED)
            assert sale is not None, "a paid order has its approved sale"
            method = method or sale.method
            if method not in (sale.method, "cash"):
                raise StoreError(
                    StoreRefusal.BAD_METHOD, method=method, allowed=f"{sale.method}, cash"
                )
            refunds = _payments_of(conn, order_id, "refund")
            left = sale.amount_minor - sum(
                r.amount_minor for r in refunds if r.status is not PaymentStatus.DECLINED
            )
            if amount_minor > left:
                raise StoreError(StoreRefusal.OVER_REFUND, amount=amount_minor, left=left)
            taken = self._returnable(conn, order, wanted)
            if method == "cash":
                shift_id = self._drawer(conn, shift_id)
            elif shift_id is not None:
                lock_open_shift(conn, shift_id)
            payment_id = self._insert(
                conn,
                order,
                kind="refund",
                attempt=self._next_attempt(refunds, REFUNDS_MAX),
                method=method,
                amount_minor=amount_minor,
                status=PaymentStatus.APPROVED if method == "cash" else PaymentStatus.PENDING,
                shift_id=shift_id,
                staff_id=staff_id,
                now=now,
                ref_payment_id=sale.id,
            )
            for line_id, product_id, qty in taken:
                conn.execute(
                    insert(refund_lines).values(
                        payment_id=payment_id,
                        order_line_id=line_id,
                        product_id=product_id,
                        qty=qty,
                    )
                )
            if method == "cash":
                self._complete_refund(conn, order, payment_id, now)
            return _read_refund(conn, payment_id)

    def record_refund_result(self, refund_id: int, result: Mapping[str, Any]) -> Refund:
        """Record the terminal's answer to a pending refund: approved returns its goods to
        stock and marks the order (partially) refunded; declined frees its amount again."""
        payment = self._record(refund_id, "refund", result)
        with self.engine.connect() as conn:
            return _read_refund(conn, payment.id)

    # -- after-sale details -----------------------------------------------------------------

    def details(self, order_id: str) -> OrderDetails:
        """The order with its lines, its sale and void payments and its refunds."""
        with self.engine.connect() as conn:
            order = read_order(conn, order_id)
            sales = _payments_of(conn, order_id, "sale") + _payments_of(conn, order_id, "void")
            refunds = [_read_refund(conn, p.id) for p in _payments_of(conn, order_id, "refund")]
        paid = _with_status(sales, PaymentStatus.APPROVED)
        refundable = 0
        if paid is not None and order.status in (
            OrderStatus.PAID,
            OrderStatus.PARTIALLY_REFUNDED,
        ):
            refundable = paid.amount_minor - sum(
                r.amount_minor for r in refunds if r.status is not PaymentStatus.DECLINED
            )
        sales.sort(key=lambda p: p.id)
        return OrderDetails(order, tuple(sales), tuple(refunds), refundable)

    # -- inside the transaction -------------------------------------------------------------

    def _record(self, payment_id: int, kind: str, result: Mapping[str, Any]) -> Payment:
        outcome = _outcome(result)
        pan_masked = _check_masked(result.get("pan_masked"))
        with self.engine.connect() as conn:
            order_id = conn.execute(
                select(payments.c.order_id).where(
                    payments.c.id == payment_id, payments.c.kind == kind
                )
            ).scalar_one_or_none()
        if order_id is None and kind == "refund":
            raise StoreError(StoreRefusal.NO_SUCH_REFUND, refund_id=payment_id)
        if order_id is None:
            raise StoreError(StoreRefusal.NO_SUCH_PAYMENT, payment_id=payment_id)
        now = self._now()
        with self.engine.begin() as conn:
            order = lock_order(conn, order_id, now)
            payment = _read_payment(conn, payment_id)
            ref = result.get("order_ref")
            if ref not in (None, "") and ref != payment.key:
                raise StoreError(StoreRefusal.RESULT_MISMATCH, why=f"key {ref!r}")
            if result.get("kind") not in (None, "", kind):
                raise StoreError(StoreRefusal.RESULT_MISMATCH, why=f"kind {result['kind']!r}")
            amount = result.get("amount_minor")
            if outcome == "approved" and amount not in (None, 0, payment.amount_minor):
                raise StoreError(StoreRefusal.RESULT_MISMATCH, why=f"amount {amount}")
            if payment.status is not PaymentStatus.PENDING:
                same = payment.status.value == outcome and (
                    outcome != "approved" or payment.rrn == _text(result, "rrn", 12)
                )
                if same:
                    return payment
                raise StoreError(StoreRefusal.ALREADY_RECORDED, status=str(payment.status))
            conn.execute(
                update(payments)
                .where(payments.c.id == payment_id)
                .values(
                    status=outcome,
                    resolved_at=now,
                    response_code=_text(result, "response_code", 4),
                    message=_text(result, "message", 120),
                    auth_code=_text(result, "auth_code", 8),
                    rrn=_text(result, "rrn", 12),
                    stan=_text(result, "stan", 6),
                    invoice_no=_text(result, "invoice_no", 6),
                    batch_no=_text(result, "batch_no", 6),
                    pan_masked=pan_masked,
                    last4=pan_masked[-4:] if pan_masked and pan_masked[-4:].isdigit() else None,
                    reference=_text(result, "reference", 64),
                )
            )
            if outcome == "approved":
                if kind == "sale":
                    self._complete_sale(conn, order, now)
                elif kind == "void":
                    self._complete_void(conn, order, now)
                else:
                    self._complete_refund(conn, order, payment_id, now)
            elif kind == "sale":
                self._set_status(conn, order.id, OrderStatus.OPEN)
            return _read_payment(conn, payment_id)

    def _check_payable(self, order: Order, amount_minor: int, *, zero_ok: bool = False) -> None:
        if order.status is not OrderStatus.OPEN:
            raise StoreError(StoreRefusal.ORDER_NOT_OPEN, status=str(order.status))
        if not order.lines:
            raise StoreError(StoreRefusal.EMPTY_ORDER)
        if amount_minor != order.total_minor or (order.total_minor == 0 and not zero_ok):
            raise StoreError(
                StoreRefusal.AMOUNT_NOT_DUE, amount=amount_minor, due=order.total_minor
            )

    def _shift_for(self, conn: Connection, order: Order, staff_id: int | None) -> int | None:
        """The shift taking the order's payment, taken for writing: the open shift of the
        cashier paying it (the drawer the cash goes into), else the order's own — refused if
        that one is closed, since a closed shift takes no sales."""
        shift_id = open_shift_of(conn, staff_id if staff_id is not None else order.staff_id)
        if shift_id is None:
            shift_id = order.shift_id
        if shift_id is not None:
            lock_open_shift(conn, shift_id)
        return shift_id

    def _drawer(self, conn: Connection, shift_id: int | None) -> int:
        """The open shift whose drawer the cash goes into or out of (taken for writing)."""
        if shift_id is None:
            raise StoreError(StoreRefusal.NO_SHIFT)
        lock_open_shift(conn, shift_id)
        return shift_id

    def _no_pending(self, conn: Connection, order_id: str, kind: str) -> None:
        found = _with_status(_payments_of(conn, order_id, kind), PaymentStatus.PENDING)
        if found is not None:
            raise StoreError(StoreRefusal.PAYMENT_PENDING, key=found.key)

    def _next_attempt(self, earlier: Sequence[Payment], most: int) -> int:
        attempt = max((p.attempt for p in earlier), default=0) + 1
        if attempt > most:
            raise StoreError(StoreRefusal.TOO_MANY_ATTEMPTS, high=most)
        return attempt

    def _insert(
        self,
        conn: Connection,
        order: Order,
        *,
        kind: str,
        attempt: int,
        status: PaymentStatus,
        now: datetime,
        **values: Any,
    ) -> int:
        key = {"sale": sale_key, "void": void_key, "refund": refund_key}[kind](order.id, attempt)
        done = conn.execute(
            insert(payments).values(
                order_id=order.id,
                kind=kind,
                attempt=attempt,
                key=key,
                status=status.value,
                created_at=now,
                resolved_at=None if status is PaymentStatus.PENDING else now,
                **values,
            )
        )
        assert done.inserted_primary_key is not None
        return int(done.inserted_primary_key[0])

    def _set_status(
        self, conn: Connection, order_id: str, status: OrderStatus, **more: Any
    ) -> None:
        conn.execute(
            update(orders).where(orders.c.id == order_id).values(status=status.value, **more)
        )

    def _complete_sale(self, conn: Connection, order: Order, now: datetime) -> None:
        sale = conn.execute(
            select(payments.c.shift_id).where(
                payments.c.order_id == order.id,
                payments.c.kind == "sale",
                payments.c.status == PaymentStatus.APPROVED.value,
            )
        ).scalar_one()  # exactly one: a second approved sale would be money taken twice
        self._set_status(
            conn,
            order.id,
            OrderStatus.PAID,
            paid_at=now,
            receipt_no=self._receipt_no(conn, now),
            shift_id=sale,
        )
        for line in order.lines:
            if line.product_id is not None:
                _move_stock(conn, line.product_id, -line.qty, "sale", order.id, now)

    def _complete_void(self, conn: Connection, order: Order, now: datetime) -> None:
        self._set_status(conn, order.id, OrderStatus.VOIDED)
        for line in order.lines:
            if line.product_id is not None:
                _move_stock(conn, line.product_id, line.qty, "return", order.id, now)

    def _complete_refund(
        self, conn: Connection, order: Order, payment_id: int, now: datetime
    ) -> None:
        refund = _read_refund(conn, payment_id)
        for line in refund.lines:
            _move_stock(conn, line.product_id, line.qty, "return", order.id, now)
        refunded = conn.execute(
            select(func.coalesce(func.sum(payments.c.amount_minor), 0)).where(
                payments.c.order_id == order.id,
                payments.c.kind == "refund",
                payments.c.status == PaymentStatus.APPROVED.value,
            )
        ).scalar_one()
        full = refunded >= order.total_minor
        self._set_status(
            conn, order.id, OrderStatus.REFUNDED if full else OrderStatus.PARTIALLY_REFUNDED
        )

    def _returnable(
        self, conn: Connection, order: Order, wanted: Counter[int]
    ) -> list[tuple[int, int, int]]:
        """(order line, product, qty) for each product to take back, or a refusal when more
        is asked than was sold less what approved or pending refunds already take back."""
        out = []
        for product_id, qty in sorted(wanted.items()):
            sold = [ln for ln in order.lines if ln.product_id == product_id]
            if not sold:
                raise StoreError(StoreRefusal.OVER_RETURN, qty=qty, product_id=product_id, left=0)
            returned = conn.execute(
                select(func.coalesce(func.sum(refund_lines.c.qty), 0))
                .select_from(refund_lines.join(payments))
                .where(
                    payments.c.order_id == order.id,
                    payments.c.status != PaymentStatus.DECLINED.value,
                    refund_lines.c.product_id == product_id,
                )
            ).scalar_one()
            left = sum(ln.qty for ln in sold) - returned
            if qty > left:
                raise StoreError(
                    StoreRefusal.OVER_RETURN, qty=qty, product_id=product_id, left=left
                )
            out.append((sold[0].id, product_id, qty))
        return out

    def _receipt_no(self, conn: Connection, now: datetime) -> str:
        """The next receipt number of the store's day: R<yyyymmdd>-<n>, n from 0001."""
        day = now.astimezone(self.tz).strftime("%Y%m%d")
        dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        # The day's counter row is created once; concurrent payments then queue on its
        # UPDATE, so no two receipts share a number and none is skipped on rollback.
        conn.execute(
            dialect_insert(receipt_counters).values(day=day, last_no=0).on_conflict_do_nothing()
        )
        conn.execute(
            update(receipt_counters)
            .where(receipt_counters.c.day == day)
            .values(last_no=receipt_counters.c.last_no + 1)
        )
        n = conn.execute(
            select(receipt_counters.c.last_no).where(receipt_counters.c.day == day)
        ).scalar_one()
        return f"R{day}-{n:04d}"
