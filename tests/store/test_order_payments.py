"""Payments of orders: one key per attempt (a double click charges once), cash with change,
all-or-nothing completion with stock and receipt number, voids, refunds and returns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from smartpos.store import payments as payments_module
from smartpos.store.errors import StoreRefusal
from smartpos.store.order_tables import payments, receipt_counters
from smartpos.store.orders import OrderStatus
from smartpos.store.payments import PaymentStatus
from tests.store.test_orders import Store, pg_store, refused, store

__all__ = ["pg_store", "store"]  # the fixtures, imported for pytest


def result(
    key: str,
    amount_minor: int,
    *,
    outcome: str = "approved",
    kind: str = "sale",
    rrn: str = "000000111111",
    pan: str = "621234******1234",
) -> dict[str, Any]:
    """The shape of ``TxnResult.to_dict()``."""
    return {
        "result": outcome,
        "response_code": "00" if outcome == "approved" else "51",
        "message": outcome,
        "kind": kind,
        "amount_minor": amount_minor,
        "currency": "CNY",
        "stan": "000123",
        "invoice_no": "000045",
        "batch_no": "000001",
        "auth_code": "A1B2C3" if outcome == "approved" else "",
        "rrn": rrn,
        "pan_masked": pan,
        "order_ref": key,
        "repeated": False,
    }


def payment_rows(store: Store, order_id: str) -> list[Any]:
    with store.engine.connect() as conn:
        return list(
            conn.execute(
                select(payments).where(payments.c.order_id == order_id).order_by(payments.c.id)
            ).all()
        )


def paid_by_card(store: Store, order_id: str, rrn: str = "000000111111") -> int:
    total = store.orders.get(order_id).total_minor
    payment = store.payments.begin_payment(order_id, "card", total)
    store.payments.record_card_result(payment.id, result(payment.key, total, rrn=rrn))
    return payment.id


# -- card ------------------------------------------------------------------------------------


def test_a_double_clicked_pay_gets_one_attempt_and_one_key(store: Store) -> None:
    order_id = store.cart(tea=2)
    first = store.payments.begin_payment(order_id, "card", 2500)
    second = store.payments.begin_payment(order_id, "card", 2500)
    assert first.key == second.key == f"{order_id}.1" and first.id == second.id
    assert first.status is PaymentStatus.PENDING
    assert len(payment_rows(store, order_id)) == 1
    # While the card is being charged the cart is frozen, and cash cannot be taken on top.
    assert store.orders.get(order_id).status is OrderStatus.PAYING
    with refused(StoreRefusal.ORDER_NOT_OPEN):
        store.orders.add_product(order_id, store.rice)
    with refused(StoreRefusal.PAYMENT_PENDING):
        store.payments.pay_cash(order_id, 5000)
    with refused(StoreRefusal.PAYMENT_PENDING):
        store.payments.begin_payment(order_id, "qr", 2500)


def test_declined_then_retry_uses_a_new_key_and_pays_once(store: Store) -> None:
    order_id = store.cart(tea=2, rice=1)
    first = store.payments.begin_payment(order_id, "card", 6300)
    declined = store.payments.record_card_result(
        first.id, result(first.key, 6300, outcome="declined")
    )
    assert declined.status is PaymentStatus.DECLINED
    assert store.orders.get(order_id).status is OrderStatus.OPEN
    assert store.stock(store.tea) == 100  # nothing sold yet
    second = store.payments.begin_payment(order_id, "card", 6300)
    assert second.key == f"{order_id}.2" != first.key
    approved = store.payments.record_card_result(second.id, result(second.key, 6300))
    assert approved.status is PaymentStatus.APPROVED
    assert (approved.rrn, approved.auth_code, approved.pan_masked) == (
        "000000111111",
        "A1B2C3",
        "621234******1234",
    )
    order = store.orders.get(order_id)
    assert order.status is OrderStatus.PAID and order.paid_at == store.clock.at
    assert order.receipt_no == "R20261203-0001"
    assert store.stock(store.tea) == 98 and store.stock(store.rice) == 9
    assert [(m.delta_qty, m.reason, m.ref) for m in store.moves()] == [
        (-2, "sale", order_id),
        (-1, "sale", order_id),
    ]
    # The same answer again changes nothing; Pay again returns the approved payment.
    assert store.payments.record_card_result(second.id, result(second.key, 6300)).id == second.id
    assert store.payments.begin_payment(order_id, "card", 6300).id == second.id
    assert len(store.moves()) == 2
    with refused(StoreRefusal.ALREADY_RECORDED):
        store.payments.record_card_result(first.id, result(first.key, 6300))


def test_a_result_for_another_key_or_amount_is_refused(store: Store) -> None:
    order_id = store.cart(tea=1)
    payment = store.payments.begin_payment(order_id, "card", 1250)
    with refused(StoreRefusal.RESULT_MISMATCH):
        store.payments.record_card_result(payment.id, result("other-order.1", 1250))
    with refused(StoreRefusal.RESULT_MISMATCH):
        store.payments.record_card_result(payment.id, result(payment.key, 1))
    with refused(StoreRefusal.RESULT_MISMATCH):
        store.payments.record_card_result(payment.id, {"rrn": "x"})
    assert payment_rows(store, order_id)[0].status == "pending"


@pytest.mark.parametrize("pan", ["6212345678901234", "621234567890****", "6212 3456 7890 1234"])
def test_a_full_pan_is_never_stored(store: Store, pan: str) -> None:
    order_id = store.cart(tea=1)
    payment = store.payments.begin_payment(order_id, "card", 1250)
    with refused(StoreRefusal.FULL_PAN):
        store.payments.record_card_result(payment.id, result(payment.key, 1250, pan=pan))
    (row,) = payment_rows(store, order_id)
    assert row.status == "pending" and row.pan_masked is None
    assert store.orders.get(order_id).status is OrderStatus.PAYING


def test_the_amount_must_be_the_total_and_cash_goes_its_own_way(store: Store) -> None:
    order_id = store.cart(tea=1)
    with refused(StoreRefusal.AMOUNT_NOT_DUE):
        store.payments.begin_payment(order_id, "card", 1000)
    with refused(StoreRefusal.BAD_METHOD):
        store.payments.begin_payment(order_id, "cash", 1250)
    with refused(StoreRefusal.BAD_AMOUNT):
        store.payments.begin_payment(store.cart(), "card", 0)
    with refused(StoreRefusal.EMPTY_ORDER):
        store.payments.pay_cash(store.cart(), 0)
    assert payment_rows(store, order_id) == []


def test_qr_payment(store: Store) -> None:
    order_id = store.cart(rice=1)
    payment = store.payments.begin_payment(order_id, "qr", 3800)
    done = store.payments.record_qr_result(payment.id, approved=True, reference="4200001234")
    assert done.reference == "4200001234" and done.method == "qr"
    assert store.orders.get(order_id).status is OrderStatus.PAID


# -- cash ------------------------------------------------------------------------------------


def test_cash_gives_change_and_paying_twice_is_one_payment(store: Store) -> None:
    shift = store.shifts.open(7, 0)
    order_id = store.cart(shift_id=shift.id, tea=1, rice=1)  # 50.50
    with refused(StoreRefusal.TENDERED_SHORT):
        store.payments.pay_cash(order_id, 5049)
    payment, change = store.payments.pay_cash(order_id, 10_000)
    assert change == 4950 and payment.tendered_minor == 10_000
    assert payment.key == f"{order_id}.1" and payment.shift_id == shift.id
    again, change_again = store.payments.pay_cash(order_id, 10_000)  # a retried request
    assert (again.id, change_again) == (payment.id, 4950)
    assert len(payment_rows(store, order_id)) == 1
    assert store.stock(store.rice) == 9  # taken once
    with refused(StoreRefusal.ORDER_NOT_OPEN):
        store.payments.begin_payment(order_id, "card", 5050)


def test_cash_needs_an_open_shift(store: Store) -> None:
    order_id = store.cart(tea=1)
    with refused(StoreRefusal.NO_SHIFT):
        store.payments.pay_cash(order_id, 2000)
    assert store.orders.get(order_id).status is OrderStatus.OPEN


def test_payment_and_stock_are_one_transaction(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure while the stock is moved leaves nothing paid, nothing moved, no receipt
    number used; the next try pays normally."""
    shift = store.shifts.open(7, 0)
    order_id = store.cart(shift_id=shift.id, tea=1, rice=2)
    real = payments_module._move_stock
    calls: list[int] = []

    def fails_second(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        real(*args, **kwargs)

    monkeypatch.setattr(payments_module, "_move_stock", fails_second)
    with pytest.raises(RuntimeError):
        store.payments.pay_cash(order_id, 10_000)
    order = store.orders.get(order_id)
    assert order.status is OrderStatus.OPEN and order.receipt_no is None
    assert payment_rows(store, order_id) == [] and store.moves() == []
    assert (store.stock(store.tea), store.stock(store.rice)) == (100, 10)
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(receipt_counters)).scalar_one() == 0

    # The same for a card approval: the payment stays pending, so the answer can be recorded
    # again once the fault is gone.
    card_order = store.cart(shift_id=shift.id, tea=1, rice=1)
    payment = store.payments.begin_payment(card_order, "card", 5050)
    calls.clear()
    with pytest.raises(RuntimeError):
        store.payments.record_card_result(payment.id, result(payment.key, 5050))
    assert payment_rows(store, card_order)[0].status == "pending" and store.moves() == []
    monkeypatch.setattr(payments_module, "_move_stock", real)
    store.payments.record_card_result(payment.id, result(payment.key, 5050))
    assert store.orders.get(card_order).receipt_no == "R20261203-0001"
    assert len(store.moves("sale")) == 2


def test_receipt_numbers_follow_the_store_day(store: Store) -> None:
    shift = store.shifts.open(7, 0)
    numbers = []
    for at in (
        datetime(2026, 12, 3, 2, 0, tzinfo=UTC),
        datetime(2026, 12, 3, 15, 59, tzinfo=UTC),  # 23:59 in Shanghai
        datetime(2026, 12, 3, 16, 1, tzinfo=UTC),  # 00:01 on the 4th in Shanghai
    ):
        store.clock.at = at
        order_id = store.cart(shift_id=shift.id, tea=1)
        store.payments.pay_cash(order_id, 1250)
        numbers.append(store.orders.get(order_id).receipt_no)
    assert numbers == ["R20261203-0001", "R20261203-0002", "R20261204-0001"]


# -- voids -----------------------------------------------------------------------------------


def test_cash_void_returns_the_goods_at_once(store: Store) -> None:
    shift = store.shifts.open(7, 0)
    order_id = store.cart(shift_id=shift.id, tea=3)
    store.payments.pay_cash(order_id, 5000)
    void = store.payments.begin_void(order_id)
    assert void.status is PaymentStatus.APPROVED and void.kind == "void"
    assert void.key == f"{order_id}.void" and void.amount_minor == 3750
    assert store.orders.get(order_id).status is OrderStatus.VOIDED
    assert store.stock(store.tea) == 100
    assert [(m.delta_qty, m.reason) for m in store.moves()] == [(-3, "sale"), (3, "return")]
    assert store.payments.begin_void(order_id).id == void.id  # again: the same void
    with refused(StoreRefusal.NOT_REFUNDABLE):
        store.payments.begin_refund(order_id, 100)


def test_card_void_pending_then_approved(store: Store) -> None:
    shift = store.shifts.open(7, 0)
    order_id = store.cart(shift_id=shift.id, rice=2)
    paid_by_card(store, order_id)
    void = store.payments.begin_void(order_id)
    assert void.status is PaymentStatus.PENDING
    assert (void.original_stan, void.original_invoice_no) == ("000123", "000045")
    assert store.payments.begin_void(order_id).key == void.key == f"{order_id}.void"
    declined = store.payments.record_void(
        order_id, result(void.key, 7600, kind="void", outcome="declined")
    )
    assert declined.status is PaymentStatus.DECLINED
    assert store.orders.get(order_id).status is OrderStatus.PAID and store.stock(store.rice) == 8
    retry = store.payments.begin_void(order_id)
    assert retry.key == f"{order_id}.void2"
    store.payments.record_void(order_id, result(retry.key, 7600, kind="void"))
    assert store.orders.get(order_id).status is OrderStatus.VOIDED and store.stock(store.rice) == 10


def test_no_void_once_the_sale_shift_is_closed(store: Store) -> None:
    shift = store.shifts.open(7, 0)
    order_id = store.cart(shift_id=shift.id, tea=1)
    store.payments.pay_cash(order_id, 1250)
    store.shifts.close(shift.id, 1250)
    with refused(StoreRefusal.VOID_SHIFT_CLOSED):
        store.payments.begin_void(order_id)
    assert store.orders.get(order_id).status is OrderStatus.PAID


# -- refunds and returns ---------------------------------------------------------------------


def test_partial_refund_then_over_refund_refused(store: Store) -> None:
    order_id = store.cart(tea=2, rice=1)  # 63.00 by card
    paid_by_card(store, order_id, rrn="000000222222")
    refund = store.payments.begin_refund(order_id, 2000)
    assert refund.key == f"{order_id}.r1" and refund.status is PaymentStatus.PENDING
    assert refund.payment.original_rrn == "000000222222"
    done = store.payments.record_refund_result(
        refund.id, result(refund.key, 2000, kind="refund", rrn="000000333333")
    )
    assert done.status is PaymentStatus.APPROVED
    assert store.orders.get(order_id).status is OrderStatus.PARTIALLY_REFUNDED
    with refused(StoreRefusal.OVER_REFUND):
        store.payments.begin_refund(order_id, 4301)
    assert store.payments.details(order_id).refundable_minor == 4300
    last = store.payments.begin_refund(order_id, 4300)
    store.payments.record_refund_result(last.id, result(last.key, 4300, kind="refund"))
    assert store.orders.get(order_id).status is OrderStatus.REFUNDED
    with refused(StoreRefusal.NOT_REFUNDABLE):
        store.payments.begin_refund(order_id, 1)


def test_two_pending_refunds_cannot_exceed_the_sale(store: Store) -> None:
    order_id = store.cart(rice=1)  # 38.00
    paid_by_card(store, order_id)
    first = store.payments.begin_refund(order_id, 3000)
    with refused(StoreRefusal.OVER_REFUND):
        store.payments.begin_refund(order_id, 801)  # 30 pending + 8.01 > 38
    second = store.payments.begin_refund(order_id, 800)
    assert second.key == f"{order_id}.r2"
    # A declined refund frees its amount again.
    store.payments.record_refund_result(
        first.id, result(first.key, 3000, kind="refund", outcome="declined")
    )
    assert store.payments.details(order_id).refundable_minor == 3000
    third = store.payments.begin_refund(order_id, 3000)
    assert third.key == f"{order_id}.r3"


def test_a_return_puts_the_goods_back_and_not_more_than_sold(store: Store) -> None:
    shift = store.shifts.open(7, 0)
    order_id = store.cart(shift_id=shift.id, tea=3, rice=1)
    store.payments.pay_cash(order_id, 10_000)
    assert store.stock(store.tea) == 97
    refund = store.payments.begin_refund(order_id, 2500, lines=[(store.tea, 2)], shift_id=shift.id)
    assert refund.status is PaymentStatus.APPROVED  # cash: paid out of the drawer at once
    assert [(ln.product_id, ln.qty) for ln in refund.lines] == [(store.tea, 2)]
    assert store.stock(store.tea) == 99
    assert store.moves("return")[-1].ref == order_id
    with refused(StoreRefusal.OVER_RETURN):
        store.payments.begin_refund(order_id, 1250, lines=[(store.tea, 2)], shift_id=shift.id)
    with refused(StoreRefusal.OVER_RETURN):
        store.payments.begin_refund(order_id, 100, lines=[(store.rice, 1), (store.rice, 1)])
    with refused(StoreRefusal.OVER_RETURN):
        store.payments.begin_refund(order_id, 100, lines=[(store.product("soap", 5), 1)])
    assert store.stock(store.tea) == 99 and len(store.payments.details(order_id).refunds) == 1


def test_a_pending_card_return_reserves_its_goods(store: Store) -> None:
    order_id = store.cart(tea=2)
    paid_by_card(store, order_id)
    pending = store.payments.begin_refund(order_id, 1000, lines=[(store.tea, 1)])
    assert store.stock(store.tea) == 98  # back in stock only once approved
    store.payments.begin_refund(order_id, 1000, lines=[(store.tea, 1)])
    with refused(StoreRefusal.OVER_RETURN):  # money is left, but both teas are on their way
        store.payments.begin_refund(order_id, 1, lines=[(store.tea, 1)])
    store.payments.record_refund_result(pending.id, result(pending.key, 1000, kind="refund"))
    assert store.stock(store.tea) == 99


def test_cash_refund_needs_the_drawer_of_an_open_shift(store: Store) -> None:
    order_id = store.cart(tea=1)
    paid_by_card(store, order_id)
    with refused(StoreRefusal.NO_SHIFT):
        store.payments.begin_refund(order_id, 500, method="cash")
    with refused(StoreRefusal.BAD_METHOD):
        store.payments.begin_refund(order_id, 500, method="qr")
    shift = store.shifts.open(7, 0)
    refund = store.payments.begin_refund(order_id, 500, method="cash", shift_id=shift.id)
    assert refund.payment.shift_id == shift.id and refund.status is PaymentStatus.APPROVED


def test_details_show_lines_payments_and_refunds(store: Store) -> None:
    import json

    order_id = store.cart(tea=1)
    declined = store.payments.begin_payment(order_id, "card", 1250)
    store.payments.record_card_result(declined.id, result(declined.key, 1250, outcome="declined"))
    paid_by_card(store, order_id)
    store.payments.begin_refund(order_id, 250)
    details = store.payments.details(order_id)
    assert [(p.key, p.status) for p in details.payments] == [
        (f"{order_id}.1", "declined"),
        (f"{order_id}.2", "approved"),
    ]
    assert [r.key for r in details.refunds] == [f"{order_id}.r1"]
    assert details.refundable_minor == 1000
    data = json.loads(json.dumps(details.to_dict()))
    assert data["order"]["lines"][0]["name_en"] == "tea"
    assert data["payments"][1]["pan_masked"] == "621234******1234"


@pytest.mark.postgres
def test_card_pay_void_and_refund_on_postgres(pg_store: Store) -> None:
    store = pg_store
    shift = store.shifts.open(7, 0)
    order_id = store.cart(shift_id=shift.id, tea=2)
    first = store.payments.begin_payment(order_id, "card", 2500)
    assert store.payments.begin_payment(order_id, "card", 2500).key == first.key
    store.payments.record_card_result(first.id, result(first.key, 2500))
    refund = store.payments.begin_refund(order_id, 1250, lines=[(store.tea, 1)])
    with refused(StoreRefusal.OVER_REFUND):
        store.payments.begin_refund(order_id, 1251)
    store.payments.record_refund_result(refund.id, result(refund.key, 1250, kind="refund"))
    assert store.stock(store.tea) == 99
    assert store.orders.get(order_id).status is OrderStatus.PARTIALLY_REFUNDED
    other = store.cart(shift_id=shift.id, rice=1)
    store.payments.pay_cash(other, 5000)
    store.payments.begin_void(other)
    assert store.stock(store.rice) == 10
    assert store.orders.get(other).receipt_no == "R20261203-0002"


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_concurrent_pays_and_refunds_never_double(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """Eight Pay clicks at once make one attempt (one key); eight refunds of 10.00 at once
    on a 38.00 sale approve at most three of them."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from smartpos.store.errors import StoreError

    store: Store = request.getfixturevalue("store" if backend == "sqlite" else "pg_store")
    order_id = store.cart(rice=1)
    gate = Barrier(8)

    def pay(_: int) -> str:
        gate.wait()
        return store.payments.begin_payment(order_id, "card", 3800).key

    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(pay, range(8)))
    assert keys == {f"{order_id}.1"} and len(payment_rows(store, order_id)) == 1
    (payment,) = payment_rows(store, order_id)
    store.payments.record_card_result(payment.id, result(payment.key, 3800))

    def refund(_: int) -> str:
        gate.wait()
        try:
            return store.payments.begin_refund(order_id, 1000).key
        except StoreError as exc:
            return str(exc.code)

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(refund, range(8)))
    assert sorted(outcomes).count("over_refund") == 5
    assert store.payments.details(order_id).refundable_minor == 800
