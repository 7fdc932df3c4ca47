"""Card sales in the browser, as the merchant's guide goes: amount → card → PIN → bank →
result → receipt; the declines with their reason and next step; a double-clicked Pay."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Demo
from tests.e2e.steps import enter_pin, key_amount, pay_by_card, start_selling
from tests.test_cli import cli, data

GOOD = "6212340000000001"
POOR = "6212340000000514"  # balance 10.00: 51 above it
PIN_TRIES = "6212340000000555"  # any wrong PIN: 55


def balance_minor(demo: Demo, pan: str) -> int:
    done = cli(demo.home, "terminal", "balance", "--pin", "--json", card=pan, pin="123456")
    return int(data(done)["balance_minor"])


def test_an_approved_card_sale_with_pin_and_receipt(demo: Demo, page: Any) -> None:
    before = balance_minor(demo, GOOD)
    start_selling(page, demo.url)
    key_amount(page, "1234")
    expect(page.get_by_test_id("total")).to_have_text(re.compile(r"12\.34$"))
    pay_by_card(page, GOOD, "123456")
    result = page.get_by_test_id("result")
    expect(result).to_have_attribute("data-result", "approved")
    assert page.get_by_test_id("auth-code").inner_text().strip()
    preview = page.get_by_test_id("receipt-preview").inner_text()
    assert "12.34" in preview and "0001" in preview and GOOD not in preview
    assert balance_minor(demo, GOOD) == before - 1234
    # The receipt went to the printer too (the demo's file printer).
    printed = (demo.home / "printer.out").read_bytes()
    assert b"******0001" in printed and b"12.34" in printed and GOOD.encode() not in printed
    page.get_by_test_id("new-sale").click()
    page.wait_for_url("**/sell")
    expect(page.get_by_test_id("total")).to_have_text(re.compile(r"0\.00$"))


def test_a_decline_51_says_why_and_offers_cash(demo: Demo, page: Any) -> None:
    start_selling(page, demo.url)
    key_amount(page, "5000")
    pay_by_card(page, POOR, "123456")
    expect(page.get_by_test_id("result")).to_have_attribute("data-result", "declined")
    expect(page.get_by_test_id("reason")).to_contain_text("Insufficient funds")
    expect(page.get_by_test_id("next-step")).to_contain_text("cash")
    page.get_by_test_id("to-cash").click()
    expect(page.get_by_test_id("pay-cash-dialog")).to_be_visible()


def test_a_wrong_pin_then_the_right_one(demo: Demo, page: Any) -> None:
    before = balance_minor(demo, GOOD)
    start_selling(page, demo.url)
    key_amount(page, "888")
    pay_by_card(page, GOOD, "111111")
    expect(page.get_by_test_id("result")).to_have_attribute("data-result", "declined")
    expect(page.get_by_test_id("next-step")).to_contain_text("PIN again")
    page.get_by_test_id("retry-pin").click()
    enter_pin(page, "123456")
    page.get_by_test_id("pay").click()
    expect(page.get_by_test_id("result")).to_have_attribute("data-result", "approved")
    assert balance_minor(demo, GOOD) == before - 888


def test_a_double_clicked_pay_charges_once(demo: Demo, page: Any) -> None:
    before = balance_minor(demo, GOOD)
    start_selling(page, demo.url)
    key_amount(page, "2500")
    page.get_by_test_id("pay-card").click()
    page.get_by_test_id("test-card").select_option(GOOD)
    page.get_by_test_id("insert").click()
    enter_pin(page, "123456")
    page.get_by_test_id("pay").dblclick()
    expect(page.get_by_test_id("result")).to_have_attribute("data-result", "approved")
    assert balance_minor(demo, GOOD) == before - 2500


def _again(page: Any, path: str, form: dict[str, str]) -> str:
    """The same form posted again from this screen, as a second tap that arrives after the
    first one's answer would: the browser's session cookie and the page's CSRF token."""
    csrf = page.locator("body").get_attribute("data-csrf")
    origin = page.url.split("/", 3)[:3]
    response = page.request.post("/".join(origin) + path, form={**form, "csrf": csrf})
    assert response.ok, response.status
    return str(response.text())


def test_the_same_pay_again_after_the_approval_shows_that_sale(demo: Demo, page: Any) -> None:
    """A Pay that arrives after the sale was approved (a tap queued behind the first) answers
    the same approved screen: the same receipt, nothing charged again, and not the card
    dialog of the next, empty order."""
    before = balance_minor(demo, GOOD)
    start_selling(page, demo.url)
    key_amount(page, "1500")
    pay_by_card(page, GOOD, "123456")
    expect(page.get_by_test_id("result")).to_have_attribute("data-result", "approved")
    receipt_no = page.get_by_test_id("receipt-no").inner_text().strip()
    again = _again(page, "/pay/card/confirm", {})
    assert 'data-result="approved"' in again and receipt_no in again
    assert "pay-card-dialog" not in again
    assert balance_minor(demo, GOOD) == before - 1500
    # A new payment starts afresh: with no card presented it asks for the card.
    page.get_by_test_id("new-sale").click()
    page.wait_for_url("**/sell")
    key_amount(page, "100")
    page.get_by_test_id("pay-card").click()
    fresh = _again(page, "/pay/card/confirm", {})
    assert 'data-result="approved"' not in fresh and "Present the card first" in fresh


def test_the_same_cash_submit_again_shows_that_sale(demo: Demo, page: Any) -> None:
    start_selling(page, demo.url)
    key_amount(page, "700")
    page.get_by_test_id("pay-cash").click()
    page.get_by_test_id("tendered").fill("10")
    page.get_by_test_id("cash-ok").click()
    expect(page.get_by_test_id("result")).to_have_attribute("data-result", "approved")
    receipt_no = page.get_by_test_id("receipt-no").inner_text().strip()
    again = _again(page, "/pay/cash", {"tendered": "10"})
    assert 'data-result="approved"' in again and receipt_no in again


WORDS = {
    "en": {"title": "Approved", "pay": "Pay", "decline": "Insufficient funds", "next": "cash"},
    "zh_CN": {"title": "交易成功", "pay": "确认支付", "decline": "余额不足", "next": "现金"},
}


@pytest.mark.parametrize("lang", sorted(WORDS))
def test_the_same_sale_in_chinese_and_in_english(demo: Demo, page: Any, lang: str) -> None:
    words = WORDS[lang]
    start_selling(page, demo.url, lang=lang)
    key_amount(page, "1100")
    page.get_by_test_id("pay-card").click()
    page.get_by_test_id("test-card").select_option(POOR)
    page.get_by_test_id("insert").click()
    expect(page.get_by_test_id("pay")).to_have_text(words["pay"])
    enter_pin(page, "123456")
    page.get_by_test_id("pay").click()
    expect(page.get_by_test_id("reason")).to_contain_text(words["decline"])
    expect(page.get_by_test_id("next-step")).to_contain_text(words["next"])
    page.get_by_test_id("retry-card").click()
    pay_by_card(page, GOOD, "123456", reopen=False)
    expect(page.get_by_test_id("approved")).to_have_text(words["title"])
    preview = page.get_by_test_id("receipt-preview").inner_text()
    assert "11.00" in preview and "消费" in preview and "SALE" in preview  # the slip: both


def test_a_keyboard_wedge_magstripe_reader_swipe(demo: Demo, page: Any) -> None:
    """The reader types the tracks fast and ends with Enter: the swipe goes on to the PIN;
    a chip card's stripe is refused with "insert it"; a bad read says swipe again."""
    start_selling(page, demo.url)
    key_amount(page, "600")
    page.get_by_test_id("pay-card").click()
    field = page.get_by_test_id("card-input")
    field.click()
    field.press_sequentially(";6212340000000209=30122010000000000?", delay=3)  # a chip card
    field.press("Enter")
    expect(page.get_by_test_id("error")).to_contain_text("chip card")
    field = page.get_by_test_id("card-input")
    field.click()
    field.press_sequentially(";6212340000000001=3012101000000000", delay=3)  # no end sentinel
    field.press("Enter")
    expect(page.get_by_test_id("error")).to_contain_text("could not be read")
    field = page.get_by_test_id("card-input")
    field.click()
    field.press_sequentially(";6212340000000001=30121010000000000?", delay=3)
    field.press("Enter")
    expect(page.get_by_test_id("pin-dialog")).to_be_visible()
    enter_pin(page, "123456")
    page.get_by_test_id("pay").click()
    expect(page.get_by_test_id("approved")).to_be_visible()
