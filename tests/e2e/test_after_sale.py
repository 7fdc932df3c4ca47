"""After the sale, in the browser: void, a partial refund and an over-refund refused, the
day-end settlement; and the customer display following a sale."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import Demo
from tests.e2e.steps import demo_login, key_amount, pay_by_card, start_selling

GOOD = "6212340000000001"


def _card_sale(page: Any, demo: Demo, digits: str) -> str:
    start_selling(page, demo.url)
    key_amount(page, digits)
    pay_by_card(page, GOOD, "123456")
    expect(page.get_by_test_id("result")).to_have_attribute("data-result", "approved")
    receipt = page.get_by_test_id("receipt-no").inner_text().strip()
    return receipt


def _open_order(page: Any, demo: Demo, receipt: str) -> None:
    page.goto(demo.url + f"orders?receipt_no={receipt}")
    rows = page.get_by_test_id("order-row")
    assert rows.count() == 1
    rows.first.locator("a").click()
    page.get_by_test_id("order").wait_for()


def test_void_a_card_sale(demo: Demo, page: Any) -> None:
    receipt = _card_sale(page, demo, "3300")
    _open_order(page, demo, receipt)
    page.get_by_test_id("void").click()
    expect(page.get_by_test_id("notice")).to_be_visible()
    expect(page.get_by_test_id("order")).to_have_attribute("data-status", "voided")


def test_partial_refund_then_an_over_refund_refused(demo: Demo, page: Any) -> None:
    receipt = _card_sale(page, demo, "5000")
    _open_order(page, demo, receipt)
    page.get_by_test_id("refund-amount").fill("20.00")
    page.get_by_test_id("refund-card").fill(GOOD)
    page.get_by_test_id("refund").click()
    expect(page.get_by_test_id("notice")).to_be_visible()
    expect(page.get_by_test_id("refundable")).to_have_text(re.compile(r"30\.00$"))
    page.get_by_test_id("refund-amount").fill("30.01")
    page.get_by_test_id("refund-card").fill(GOOD)
    page.get_by_test_id("refund").click()
    expect(page.get_by_test_id("error")).to_be_visible()
    expect(page.get_by_test_id("refundable")).to_have_text(re.compile(r"30\.00$"))
    assert page.get_by_test_id("refund-row").count() == 1


def test_the_customer_display_follows_a_sale(demo: Demo, page: Any, browser: Any) -> None:
    screen = browser.new_context().new_page()
    try:
        screen.goto(demo.url + "display")
        start_selling(page, demo.url)
        key_amount(page, "1999")
        screen.get_by_test_id("customer-total").filter(has_text="19.99").wait_for()
        pay_by_card(page, GOOD, "123456")
        screen.locator("[data-state=approved]").wait_for()
    finally:
        screen.context.close()


def test_day_end_settlement_needs_a_manager_whose_pin_allows_it(demo: Demo, page: Any) -> None:
    """A cashier is refused the settlement; a manager's PIN typed on the cashier's screen
    allows it (a wrong PIN does not)."""
    _card_sale(page, demo, "1500")
    page.goto(demo.url + "settle")
    page.get_by_test_id("settle").click()
    expect(page.get_by_test_id("override")).to_be_visible()
    manager = demo_login("manager")
    page.get_by_test_id("override-staff").fill(manager.staff_no)
    page.get_by_test_id("override-pin").fill("0000")
    page.get_by_test_id("override-ok").click()
    expect(page.get_by_test_id("error")).to_be_visible()  # wrong PIN: still refused
    page.get_by_test_id("override-staff").fill(manager.staff_no)
    page.get_by_test_id("override-pin").fill(manager.pin)
    page.get_by_test_id("override-ok").click()
    result = page.get_by_test_id("settle-result").get_attribute("data-result")
    assert result in ("balanced", "uploaded")
    expect(page.get_by_test_id("settle-report")).to_contain_text("1")


def _stock(page: Any, demo: Demo, sku: str) -> int:
    found = page.request.get(demo.url + f"api/catalog/search?q={sku}").json()
    return int(next(p for p in found if p["sku"] == sku)["stock_qty"])


def test_a_return_of_goods_puts_them_back_in_stock(demo: Demo, page: Any) -> None:
    start_selling(page, demo.url)
    page.get_by_test_id("search").fill("矿泉水")
    product = page.locator("[data-testid^=product-]").first
    page.locator('[data-testid=products-for][data-q="矿泉水"]').wait_for(state="attached")
    sku = (product.get_attribute("data-testid") or "").removeprefix("product-")
    before = _stock(page, demo, sku)
    product.click()
    page.get_by_test_id("line-1").wait_for()
    page.get_by_test_id("qty-1").wait_for()
    page.locator("[data-testid=line-1] button[aria-label='+']").click()
    expect(page.get_by_test_id("qty-1")).to_have_text("2")
    page.get_by_test_id("pay-cash").click()
    page.get_by_test_id("tendered").fill("100")
    page.get_by_test_id("cash-ok").click()
    expect(page.get_by_test_id("result")).to_have_attribute("data-result", "approved")
    assert _stock(page, demo, sku) == before - 2
    receipt = page.get_by_test_id("receipt-no").inner_text().strip()
    _open_order(page, demo, receipt)
    page.get_by_test_id("return-1").fill("1")
    page.get_by_test_id("refund").click()
    expect(page.get_by_test_id("notice")).to_be_visible()
    assert _stock(page, demo, sku) == before - 1
    expect(page.get_by_test_id("order")).to_have_attribute("data-status", "partially_refunded")
