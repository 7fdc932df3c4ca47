"""Cash, hold and resume, the shift close with a counted difference, and the day-end
settlement — in the browser."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import Demo
from tests.e2e.steps import key_amount, start_selling


def test_a_cash_sale_with_change(demo: Demo, page: Any) -> None:
    start_selling(page, demo.url)
    page.get_by_test_id("search").fill("矿泉水")
    found = page.locator("[data-testid^=product-]").first
    page.locator('[data-testid=products-for][data-q="矿泉水"]').wait_for(state="attached")
    found.click()
    page.get_by_test_id("line-1").wait_for()
    key_amount(page, "1000")
    total = page.get_by_test_id("total").inner_text()
    page.get_by_test_id("pay-cash").click()
    page.get_by_test_id("tendered").fill("12,34")
    page.get_by_test_id("cash-ok").click()
    expect(page.get_by_test_id("error")).to_contain_text("decimal point")
    page.get_by_test_id("tendered").fill("100")
    page.get_by_test_id("cash-ok").click()
    expect(page.get_by_test_id("result")).to_have_attribute("data-result", "approved")
    change = page.get_by_test_id("change").inner_text()
    due = float(total.replace("CN¥", "").replace("¥", "").replace(",", ""))
    assert (
        abs(float(change.replace("CN¥", "").replace("¥", "").replace(",", "")) - (100 - due))
        < 0.005
    )


def test_hold_and_resume(demo: Demo, page: Any) -> None:
    start_selling(page, demo.url)
    key_amount(page, "777")
    page.get_by_test_id("hold").click()
    expect(page.get_by_test_id("total")).to_have_text(re.compile(r"0\.00$"))
    page.reload()  # the held order is on the server, not in the page
    page.get_by_test_id("held").click()
    page.locator("[data-testid=held-order]").filter(has_text="7.77").first.locator("button").click()
    page.wait_for_url("**/sell")
    expect(page.get_by_test_id("total")).to_have_text(re.compile(r"7\.77$"))


def test_the_cart_survives_a_reload(demo: Demo, page: Any) -> None:
    start_selling(page, demo.url)
    key_amount(page, "4321")
    page.reload()
    expect(page.get_by_test_id("total")).to_have_text(re.compile(r"43\.21$"))


def test_the_shift_close_with_a_cash_difference(demo: Demo, page: Any) -> None:
    start_selling(page, demo.url, role="manager")  # not the other tests' cashier
    key_amount(page, "500")
    page.get_by_test_id("pay-cash").click()
    page.get_by_test_id("tendered").fill("5")
    page.get_by_test_id("cash-ok").click()
    expect(page.get_by_test_id("result")).to_have_attribute("data-result", "approved")
    page.goto(demo.url + "shift")
    page.get_by_test_id("counted").fill("1.00")  # far less than the drawer should hold
    page.get_by_test_id("close-shift").click()
    expect(page.get_by_test_id("error")).to_contain_text("reason")
    page.get_by_test_id("counted").fill("1.00")
    page.get_by_test_id("reason").fill("float taken to the bank")
    page.get_by_test_id("close-shift").click()
    report = page.get_by_test_id("report-text")
    expect(report).to_contain_text("Cash counted: CN¥1.00")
    expect(report).to_contain_text("Difference: -CN¥")
    expect(report).to_contain_text("float taken to the bank")
    expect(report).to_contain_text("Cash expected: CN¥")
