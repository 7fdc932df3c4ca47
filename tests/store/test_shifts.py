"""Shifts (交班): one open shift per cashier, paid-in and paid-out, the expected cash and the
counted difference at close, the report by method."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from smartpos.store.errors import StoreRefusal
from smartpos.store.order_tables import shifts
from tests.store.test_order_payments import paid_by_card, result
from tests.store.test_orders import Store, pg_store, refused, store

__all__ = ["pg_store", "store"]  # the fixtures, imported for pytest


def test_one_open_shift_per_cashier(store: Store) -> None:
    shift = store.shifts.open(7, 50_000)
    assert store.shifts.open(7, 50_000).id == shift.id  # a double click: the same shift
    with refused(StoreRefusal.SHIFT_ALREADY_OPEN):
        store.shifts.open(7, 20_000)
    current = store.shifts.current(7)
    assert current is not None and current.id == shift.id and current.float_minor == 50_000
    assert store.shifts.current(8) is None
    other = store.shifts.open(8, 0)
    assert other.id != shift.id
    store.shifts.close(shift.id, 50_000)
    assert store.shifts.current(7) is None
    assert store.shifts.open(7, 10_000).id not in (shift.id, other.id)


def test_a_difference_needs_a_reason_and_is_recorded(store: Store) -> None:
    shift = store.shifts.open(7, 10_000)
    order_id = store.cart(shift_id=shift.id, rice=1)
    store.payments.pay_cash(order_id, 5000)  # 38.00 in the drawer
    for reason in (None, "", "   "):
        with refused(StoreRefusal.REASON_REQUIRED):
            store.shifts.close(shift.id, 13_700, reason)
    with store.engine.connect() as conn:
        row = conn.execute(select(shifts).where(shifts.c.id == shift.id)).one()
    assert row.status == "open" and row.counted_minor is None  # the refusal changed nothing
    report = store.shifts.close(shift.id, 13_700, "gave ¥1 too much change")
    assert (report.expected_minor, report.counted_minor, report.difference_minor) == (
        13_800,
        13_700,
        -100,
    )
    assert report.reason == "gave ¥1 too much change" and report.status == "closed"
    assert report.closed_at == store.clock.at
    # Closing again with the same count is the same report; another count is refused.
    assert store.shifts.close(shift.id, 13_700).difference_minor == -100
    with refused(StoreRefusal.SHIFT_CLOSED):
        store.shifts.close(shift.id, 13_800)


def test_an_exact_count_closes_without_a_reason(store: Store) -> None:
    shift = store.shifts.open(7, 10_000)
    report = store.shifts.close(shift.id, 10_000)
    assert report.difference_minor == 0 and report.reason is None


def test_expected_cash_counts_what_this_drawer_paid_and_took(store: Store) -> None:
    """float + cash sales − cash refunds − cash voids + cash in − cash out, where a cash
    refund of an order sold in an earlier shift counts against the shift paying it."""
    earlier = store.shifts.open(7, 0)
    old_order = store.cart(shift_id=earlier.id, tea=4)  # 50.00 cash, yesterday's shift
    store.payments.pay_cash(old_order, 5000)
    assert store.shifts.close(earlier.id, 5000).expected_minor == 5000

    shift = store.shifts.open(7, 20_000)
    sold = store.cart(shift_id=shift.id, rice=2)  # + 76.00
    store.payments.pay_cash(sold, 10_000)
    voided = store.cart(shift_id=shift.id, tea=1)  # + 12.50 − 12.50
    store.payments.pay_cash(voided, 2000)
    store.payments.begin_void(voided)
    by_card = store.cart(shift_id=shift.id, tea=2)  # card: not in the drawer
    paid_by_card(store, by_card)
    store.payments.begin_refund(old_order, 1250, lines=[(store.tea, 1)], shift_id=shift.id)
    store.shifts.cash_in(shift.id, 3000, "change from the bank")
    store.shifts.cash_out(shift.id, 800, "paid the water delivery")
    report = store.shifts.report(shift.id)
    assert report.expected_minor == 20_000 + 7600 + 1250 - 1250 - 1250 + 3000 - 800
    assert report.cash_in_minor == 3000 and report.cash_out_minor == 800
    # The earlier shift's report is as it was at its close.
    before = store.shifts.report(earlier.id)
    assert before.expected_minor == 5000 and before.by_method["cash"].refunds_count == 0
    assert store.shifts.close(shift.id, 28_550).difference_minor == 0


def test_cash_moves_need_a_reason_and_an_open_shift(store: Store) -> None:
    shift = store.shifts.open(7, 0)
    with refused(StoreRefusal.REASON_REQUIRED):
        store.shifts.cash_out(shift.id, 100, " ")
    with refused(StoreRefusal.BAD_AMOUNT):
        store.shifts.cash_in(shift.id, 0, "nothing")
    store.shifts.close(shift.id, 0)
    with refused(StoreRefusal.SHIFT_CLOSED):
        store.shifts.cash_in(shift.id, 100, "late")
    with refused(StoreRefusal.NO_SUCH_SHIFT):
        store.shifts.cash_in(999, 100, "nowhere")
    assert store.shifts.report(shift.id).cash_in_minor == 0


def test_a_closed_shift_takes_no_sales(store: Store) -> None:
    shift = store.shifts.open(7, 0)
    order_id = store.cart(shift_id=shift.id, tea=1)
    store.shifts.close(shift.id, 0)
    with refused(StoreRefusal.SHIFT_CLOSED):
        store.payments.pay_cash(order_id, 2000)
    with refused(StoreRefusal.SHIFT_CLOSED):
        store.payments.begin_payment(order_id, "card", 1250)
    with refused(StoreRefusal.SHIFT_CLOSED):
        store.orders.create("new-order-1", staff_id=7, shift_id=shift.id)
    assert store.shifts.report(shift.id).totals.sales_count == 0
    # The cashier's next shift takes the cart's payment (its drawer holds the cash).
    new = store.shifts.open(7, 0)
    payment, _ = store.payments.pay_cash(order_id, 2000)
    assert payment.shift_id == new.id and store.orders.get(order_id).shift_id == new.id


def test_a_pending_payment_blocks_the_close(store: Store) -> None:
    shift = store.shifts.open(7, 0)
    order_id = store.cart(shift_id=shift.id, tea=1)
    payment = store.payments.begin_payment(order_id, "card", 1250)
    with refused(StoreRefusal.SHIFT_HAS_PENDING):
        store.shifts.close(shift.id, 0)
    store.payments.record_card_result(payment.id, result(payment.key, 1250))
    assert store.shifts.close(shift.id, 0).by_method["card"].sales_minor == 1250


def test_report_by_method(store: Store) -> None:
    shift = store.shifts.open(7, 10_000)
    cash_order = store.cart(shift_id=shift.id, rice=1)
    store.payments.pay_cash(cash_order, 3800)
    card_orders = [store.cart(shift_id=shift.id, tea=n) for n in (1, 2)]
    for order_id in card_orders:
        paid_by_card(store, order_id)
    qr_order = store.cart(shift_id=shift.id, tea=3)
    qr = store.payments.begin_payment(qr_order, "qr", 3750)
    store.payments.record_qr_result(qr.id, approved=True, reference="T1")
    void = store.payments.begin_void(card_orders[1])
    store.payments.record_void(card_orders[1], result(void.key, 2500, kind="void"))
    refund = store.payments.begin_refund(card_orders[0], 250, shift_id=shift.id)
    store.payments.record_refund_result(refund.id, result(refund.key, 250, kind="refund"))
    declined_order = store.cart(shift_id=shift.id, tea=1)
    declined = store.payments.begin_payment(declined_order, "card", 1250)
    store.payments.record_card_result(declined.id, result(declined.key, 1250, outcome="declined"))

    report = store.shifts.report(shift.id)
    card, cash, qr_totals = (report.by_method[m] for m in ("card", "cash", "qr"))
    assert (card.sales_count, card.sales_minor) == (2, 3750)  # the declined one is not a sale
    assert (card.voids_count, card.voids_minor) == (1, 2500)
    assert (card.refunds_count, card.refunds_minor) == (1, 250)
    assert card.net_minor == 1000
    assert (cash.sales_count, cash.sales_minor, cash.net_minor) == (1, 3800, 3800)
    assert (qr_totals.sales_count, qr_totals.sales_minor) == (1, 3750)
    assert (report.totals.sales_count, report.totals.net_minor) == (4, 8550)
    assert report.expected_minor == 13_800 and report.float_minor == 10_000
    assert (report.staff_id, report.opened_at, report.status) == (7, store.clock.at, "open")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["by_method"]["card"]["net_minor"] == 1000 and data["counted_minor"] is None


@pytest.mark.postgres
def test_shift_open_sell_and_close_on_postgres(pg_store: Store) -> None:
    store = pg_store
    shift = store.shifts.open(7, 10_000)
    assert store.shifts.open(7, 10_000).id == shift.id
    order_id = store.cart(shift_id=shift.id, rice=1)
    store.payments.pay_cash(order_id, 5000)
    store.shifts.cash_out(shift.id, 1000, "float to the safe")
    with refused(StoreRefusal.REASON_REQUIRED):
        store.shifts.close(shift.id, 12_000)
    report = store.shifts.close(shift.id, 12_000, "missing ¥8")
    assert (report.expected_minor, report.difference_minor) == (12_800, -800)
    assert report.by_method["cash"].sales_count == 1
