"""Orders: the cart on the server, its lines and totals, hold and resume, and the after-sale
search. (The helpers here — a store on a fresh POS database with a few products — are used
by the payment and shift tests too.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, update

from smartpos.store.catalog_tables import categories, products, stock_moves
from smartpos.store.errors import StoreError, StoreRefusal
from smartpos.store.order_tables import order_lines, orders
from smartpos.store.orders import Orders, OrderStatus
from smartpos.store.payments import Payments
from smartpos.store.shifts import Shifts
from tests.posdb import pos_database

T0 = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


class FakeClock:
    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@dataclass
class Store:
    engine: Engine
    clock: FakeClock
    orders: Orders
    payments: Payments
    shifts: Shifts
    tea: int  # ¥12.50, stock 100
    rice: int  # ¥38.00, stock 10

    def product(self, name: str, price_minor: int, stock_qty: int = 0) -> int:
        with self.engine.begin() as conn:
            done = conn.execute(
                insert(products).values(
                    sku=name,
                    name_zh=f"{name}-zh",
                    name_en=name,
                    category_id=1,
                    price_minor=price_minor,
                    unit="pcs",
                    tax_rate_bp=1300,
                    stock_qty=stock_qty,
                    active=True,
                )
            )
            assert done.inserted_primary_key is not None
            return int(done.inserted_primary_key[0])

    def stock(self, product_id: int) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(products.c.stock_qty).where(products.c.id == product_id)
                ).scalar_one()
            )

    def moves(self, reason: str | None = None) -> list[Any]:
        with self.engine.connect() as conn:
            q = select(stock_moves).order_by(stock_moves.c.id)
            if reason is not None:
                q = q.where(stock_moves.c.reason == reason)
            return list(conn.execute(q).all())

    def cart(self, staff_id: int = 7, shift_id: int | None = None, **items: int) -> str:
        """A new open order of ``items`` (tea=2, rice=1)."""
        order_id = str(uuid.uuid4())
        self.orders.create(order_id, staff_id=staff_id, shift_id=shift_id)
        for name, qty in items.items():
            self.orders.add_product(order_id, getattr(self, name), qty)
        return order_id


def make_store(engine: Engine) -> Store:
    clock = FakeClock()
    with engine.begin() as conn:
        conn.execute(insert(categories).values(id=1, code="food", name_zh="食品", name_en="Food"))
    store = Store(
        engine, clock, Orders(engine, clock), Payments(engine, clock), Shifts(engine, clock), 0, 0
    )
    store.tea = store.product("tea", 1250, 100)
    store.rice = store.product("rice", 3800, 10)
    return store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with pos_database("sqlite", tmp_path) as engine:
        yield make_store(engine)


@pytest.fixture
def pg_store(tmp_path: Path) -> Iterator[Store]:
    with pos_database("postgres", tmp_path, "smartpos_orders") as engine:
        yield make_store(engine)


def refused(code: StoreRefusal) -> _Refused:
    return _Refused(code)


class _Refused:
    """``with refused(code):`` — the block raises StoreError with that code."""

    def __init__(self, code: StoreRefusal) -> None:
        self.code = code

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        assert isinstance(exc, StoreError), f"expected refusal {self.code}, got {exc!r}"
        assert exc.code is self.code, exc.text()
        assert exc.text("zh") and exc.text("en")
        return True


# -- creating and keeping the cart -----------------------------------------------------------


def test_creating_the_same_id_twice_gives_one_order(store: Store) -> None:
    order_id = str(uuid.uuid4())
    first = store.orders.create(order_id, staff_id=7, shift_id=None)
    store.orders.add_product(order_id, store.tea)
    again = store.orders.create(order_id, staff_id=7, shift_id=None)
    assert again.id == first.id and len(again.lines) == 1  # the existing order, unchanged
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(orders)).scalar_one() == 1
    assert first.status is OrderStatus.OPEN and first.created_at == T0


@pytest.mark.parametrize("bad", ["short", "has space-1234", "x" * 57, "订单号订单号订单号"])
def test_a_bad_order_id_is_refused(store: Store, bad: str) -> None:
    with refused(StoreRefusal.BAD_ORDER_ID):
        store.orders.create(bad, staff_id=7, shift_id=None)


def test_the_cart_survives_a_new_service_on_the_same_database(store: Store) -> None:
    order_id = store.cart(tea=2)
    again = Orders(store.engine)  # the browser crashed; the app restarted
    cart = again.current_open(7)
    assert cart is not None and cart.id == order_id
    assert [(ln.name_en, ln.qty) for ln in cart.lines] == [("tea", 2)]
    assert cart.total_minor == 2500
    assert again.current_open(8) is None


def test_a_line_keeps_the_price_it_was_added_at(store: Store) -> None:
    order_id = store.cart(tea=1)
    with store.engine.begin() as conn:
        conn.execute(update(products).where(products.c.id == store.tea).values(price_minor=9900))
    order = store.orders.add_product(order_id, store.tea, 2)  # the same product adds to its line
    (line,) = order.lines
    assert (line.qty, line.unit_price_minor, line.name_zh) == (3, 1250, "tea-zh")
    assert order.total_minor == 3750
    assert line.tax_rate_bp == 1300


def test_quantity_bounds(store: Store) -> None:
    order_id = store.cart(tea=1)
    line_id = store.orders.get(order_id).lines[0].id
    for qty in (-1, 10_000):
        with refused(StoreRefusal.BAD_QTY):
            store.orders.set_qty(order_id, line_id, qty)
    with refused(StoreRefusal.BAD_QTY):
        store.orders.add_product(order_id, store.tea, 0)
    with refused(StoreRefusal.BAD_QTY):
        store.orders.add_product(order_id, store.tea, 9999)  # 1 + 9999 is above the bound
    assert store.orders.get(order_id).lines[0].qty == 1  # nothing changed
    assert store.orders.set_qty(order_id, line_id, 9999).total_minor == 9999 * 1250
    assert store.orders.set_qty(order_id, line_id, 0).lines == ()


def test_discounts_round_half_up_and_never_go_below_zero(store: Store) -> None:
    odd = store.product("odd", 125)
    order_id = store.cart()
    store.orders.add_product(order_id, odd)
    line_id = store.orders.get(order_id).lines[0].id
    assert store.orders.set_line_discount(order_id, line_id, percent=10) == 10.4  # 13 of 125
    order = store.orders.get(order_id)
    assert (order.subtotal_minor, order.discount_minor, order.total_minor) == (125, 13, 112)
    # A percent follows the quantity; the caller sees the effective percent, rounded up.
    order = store.orders.set_qty(order_id, line_id, 2)
    assert order.discount_minor == 25 and order.total_minor == 225
    assert store.orders.set_line_discount(order_id, line_id, amount_minor=1) == 0.4
    for bad in ({"percent": 101}, {"percent": -1}, {"amount_minor": 251}, {"amount_minor": -1}):
        with refused(StoreRefusal.BAD_DISCOUNT):
            store.orders.set_line_discount(order_id, line_id, **bad)
    with refused(StoreRefusal.BAD_DISCOUNT):
        store.orders.set_line_discount(order_id, line_id, percent=5, amount_minor=5)
    assert store.orders.get(order_id).total_minor == 249  # the refusals changed nothing
    assert store.orders.set_line_discount(order_id, line_id, amount_minor=250) == 100.0
    # Fewer items: an amount discount shrinks to the line's gross, never below zero.
    order = store.orders.set_qty(order_id, line_id, 1)
    assert order.lines[0].total_minor == 0 and order.total_minor == 0
    assert store.orders.set_line_discount(order_id, line_id) == 0.0
    assert store.orders.get(order_id).total_minor == 125


def test_keyed_amounts(store: Store) -> None:
    order_id = store.cart(tea=1)
    order = store.orders.add_amount(order_id, 500, "  bag  ")
    assert [(ln.kind, ln.name_en, ln.total_minor) for ln in order.lines][-1] == (
        "amount",
        "bag",
        500,
    )
    assert order.total_minor == 1750
    with refused(StoreRefusal.BAD_AMOUNT):
        store.orders.add_amount(order_id, 0, "x")
    with refused(StoreRefusal.BAD_LABEL):
        store.orders.add_amount(order_id, 100, "   ")
    with refused(StoreRefusal.NO_SUCH_PRODUCT):
        store.orders.add_product(order_id, 99_999)
    assert store.orders.clear(order_id).total_minor == 0


def test_a_paid_order_cannot_change(store: Store) -> None:
    shift = store.shifts.open(7, 0)
    order_id = store.cart(shift_id=shift.id, tea=1)
    store.payments.pay_cash(order_id, 2000)
    line_id = store.orders.get(order_id).lines[0].id
    for change in (
        lambda: store.orders.add_product(order_id, store.rice),
        lambda: store.orders.add_amount(order_id, 100, "x"),
        lambda: store.orders.set_qty(order_id, line_id, 5),
        lambda: store.orders.set_line_discount(order_id, line_id, percent=50),
        lambda: store.orders.remove_line(order_id, line_id),
        lambda: store.orders.clear(order_id),
        lambda: store.orders.hold(order_id, "x"),
    ):
        with refused(StoreRefusal.ORDER_NOT_OPEN):
            change()
    order = store.orders.get(order_id)
    assert order.status is OrderStatus.PAID and order.total_minor == 1250
    assert store.orders.current_open(7) is None


def test_hold_and_resume_on_another_till(store: Store) -> None:
    empty = store.cart()
    with refused(StoreRefusal.EMPTY_ORDER):
        store.orders.hold(empty, "nothing")
    order_id = store.cart(tea=2)
    held = store.orders.hold(order_id, "lady in red, back in 5 min")
    assert held.status is OrderStatus.HELD and held.note == "lady in red, back in 5 min"
    assert [o.id for o in store.orders.held()] == [order_id]
    with refused(StoreRefusal.ORDER_NOT_OPEN):
        store.orders.add_product(order_id, store.rice)
    with refused(StoreRefusal.ORDER_NOT_HELD):
        store.orders.resume(empty, 8)
    other_shift = store.shifts.open(8, 0)
    resumed = store.orders.resume(order_id, 8)  # any cashier takes a held order back
    assert resumed.status is OrderStatus.OPEN
    assert (resumed.staff_id, resumed.shift_id) == (8, other_shift.id)
    assert store.orders.held() == []
    current = store.orders.current_open(8)
    assert current is not None and current.id == order_id


def test_refusals_speak_english_and_chinese(store: Store) -> None:
    with pytest.raises(StoreError) as caught:
        store.orders.get("no-such-order")
    assert caught.value.code == "no_such_order" and isinstance(caught.value, ValueError)
    assert "没有订单" in caught.value.text("zh-CN") and "no order" in str(caught.value)


# -- after-sale search -----------------------------------------------------------------------


def _card_result(
    key: str, amount_minor: int, rrn: str, pan: str = "621234******1234"
) -> dict[str, Any]:
    return {
        "result": "approved",
        "response_code": "00",
        "message": "approved",
        "kind": "sale",
        "amount_minor": amount_minor,
        "stan": "000123",
        "invoice_no": "000045",
        "batch_no": "000001",
        "auth_code": "A1B2C3",
        "rrn": rrn,
        "pan_masked": pan,
        "order_ref": key,
    }


def test_search_finds_a_sale_by_what_the_customer_remembers(store: Store) -> None:
    shift = store.shifts.open(7, 0)
    cash = store.cart(shift_id=shift.id, tea=1)
    store.payments.pay_cash(cash, 1250)
    store.clock.advance(days=1)
    card = store.cart(shift_id=shift.id, rice=1)
    payment = store.payments.begin_payment(card, "card", 3800)
    store.payments.record_card_result(payment.id, _card_result(payment.key, 3800, "000000654321"))
    store.clock.advance(hours=1)
    store.cart(staff_id=9, tea=3)  # still open, staff 9
    receipt = store.orders.get(card).receipt_no
    assert receipt is not None

    def ids(**filters: Any) -> list[str]:
        return [s.id for s in store.orders.search(**filters)]

    everything = ids()
    assert everything[1:] == [card, cash]  # newest first
    assert ids(last4="1234") == [card] and ids(last4="9999") == []
    assert ids(rrn="000000654321") == [card]
    assert ids(receipt_no=receipt) == [card]
    assert ids(method="cash") == [cash]
    assert ids(method="card", amount_minor=3800) == [card]
    assert ids(amount_minor=1250) == [cash]
    assert ids(status="paid") == [card, cash]
    assert ids(status="open") == everything[:1] and ids(staff_id=9) == everything[:1]
    assert ids(date_from=T0, date_to=T0 + timedelta(days=1)) == [cash]
    assert ids(date_from=T0 + timedelta(days=1)) == everything[:2]
    assert ids(limit=1, offset=1) == [card]
    (summary,) = store.orders.search(rrn="000000654321")
    assert (summary.method, summary.last4, summary.total_minor) == ("card", "1234", 3800)
    assert summary.to_dict()["status"] == "paid"
    for bad in ({"last4": "12"}, {"rrn": "short"}, {"status": "lost"}, {"limit": 0}):
        with refused(StoreRefusal.BAD_QUERY):
            store.orders.search(**bad)


def test_order_to_dict_is_plain_json(store: Store) -> None:
    import json

    order_id = store.cart(tea=2)
    data = store.orders.get(order_id).to_dict()
    assert json.loads(json.dumps(data))["lines"][0]["total_minor"] == 2500
    assert data["status"] == "open" and data["paid_at"] is None


@pytest.mark.postgres
def test_cart_pay_and_search_on_postgres(pg_store: Store) -> None:
    store = pg_store
    shift = store.shifts.open(7, 1000)
    order_id = store.cart(shift_id=shift.id, tea=2, rice=1)
    assert store.orders.create(order_id, staff_id=7, shift_id=shift.id).total_minor == 6300
    line_id = store.orders.get(order_id).lines[0].id
    store.orders.set_line_discount(order_id, line_id, percent=10)
    payment, change = store.payments.pay_cash(order_id, 10_000)
    assert change == 10_000 - 6050 and payment.status == "approved"
    assert store.payments.pay_cash(order_id, 10_000)[0].id == payment.id
    assert store.stock(store.tea) == 98 and store.stock(store.rice) == 9
    (found,) = store.orders.search(method="cash", status="paid")
    assert found.id == order_id and found.receipt_no == "R20261203-0001"
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(order_lines)).scalar_one() == 2
