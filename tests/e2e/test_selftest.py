"""The power-on self-test in the browser: all green with the host up; with the host gone,
card payment is off with the reason and cash still goes on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import Demo, start, start_demo
from tests.e2e.steps import key_amount, start_selling
from tests.test_cli import _free_port


def test_selftest_all_ok_and_the_scanner_checked_by_a_scan(demo: Demo, page: Any) -> None:
    page.goto(demo.url)
    assert page.url.endswith("/selftest")
    for name in ("database", "host_link", "certificate", "clock", "disk", "printer"):
        assert page.get_by_test_id(f"check-{name}").get_attribute("data-status") == "ok", name
    page.get_by_test_id("lang-en").click()
    expect(page.locator("h1")).to_have_text("Power-on self-test")
    expect(page.get_by_test_id("all-ok")).to_be_visible()
    scanner = page.get_by_test_id("check-scanner")
    assert scanner.get_attribute("data-status") == "warn"
    page.keyboard.type("6901234567892", delay=5)  # a wedge scanner: keys a few ms apart
    page.keyboard.press("Enter")
    expect(scanner).to_have_attribute("data-status", "ok")
    assert "6901234567892" in scanner.inner_text()
    page.get_by_test_id("lang-zh_CN").click()
    expect(page.locator("h1")).to_have_text("开机自检")


def test_selftest_with_the_host_down(tmp_path: Path, page: Any) -> None:
    home = tmp_path / "home"
    first = start_demo(home)  # provisions the terminal
    first.stop()
    # The cashier app alone, its host gone: the link points at a port nobody listens on.
    pos = start(home, "pos", "--port", str(_free_port()))
    try:
        page.goto(pos.url + "selftest")
        page.get_by_test_id("lang-en").click()
        link = page.get_by_test_id("check-host_link")
        assert link.get_attribute("data-status") == "fail"
        assert "cash sales still work" in link.inner_text()
        expect(page.get_by_test_id("card-off")).to_be_visible()
        expect(page.get_by_test_id("continue")).to_be_visible()  # cash still sells
        start_selling(page, pos.url)
        key_amount(page, "550")
        expect(page.get_by_test_id("pay-card")).to_be_disabled()
        expect(page.get_by_test_id("card-off")).to_contain_text("Cash sales still work")
        page.get_by_test_id("pay-cash").click()
        page.get_by_test_id("tendered").fill("10")
        page.get_by_test_id("cash-ok").click()
        expect(page.get_by_test_id("result")).to_have_attribute("data-result", "approved")
        expect(page.get_by_test_id("change")).to_contain_text("4.50")
    finally:
        pos.stop()
