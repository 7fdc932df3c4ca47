"""What a cashier does, step by step, as browser actions shared by the browser tests."""

from __future__ import annotations

from typing import Any

from smartpos.security.seed import DEMO_LOGINS


def demo_login(role: str) -> Any:
    return next(login for login in DEMO_LOGINS if login.role == role)


def log_in(page: Any, url: str, role: str = "cashier", *, lang: str = "en") -> None:
    who = demo_login(role)
    page.goto(url + f"lang/{lang}?next=/login")
    page.get_by_test_id("identifier").fill(who.staff_no)
    page.get_by_test_id("password").fill(who.password)
    page.get_by_test_id("mode-cashier").check()
    page.get_by_test_id("login-lang").select_option(lang)
    page.get_by_test_id("login").click()


def open_shift_if_asked(page: Any, float_text: str = "200.00") -> None:
    page.wait_for_load_state()
    if page.url.endswith("/shift"):
        page.get_by_test_id("float").fill(float_text)
        page.get_by_test_id("open-shift").click()
    page.wait_for_url("**/sell")


def start_selling(page: Any, url: str, role: str = "cashier", *, lang: str = "en") -> None:
    """Logged in, the shift open, an empty cart (the cashier's cart of an earlier test is
    kept on the server: it is cleared, as a cashier would)."""
    log_in(page, url, role, lang=lang)
    open_shift_if_asked(page)
    page.wait_for_load_state("load")
    if page.get_by_test_id("line-1").count():
        page.get_by_test_id("clear").click()
        page.get_by_test_id("line-1").wait_for(state="detached")


def key_amount(page: Any, digits: str) -> None:
    """Key an amount on the sell screen's keypad (in fen: "1234" is 12.34) and add it."""
    for d in digits:
        page.locator(f'#keypad .key[data-key="{d}"]').click()
    minor = int(digits)
    page.get_by_test_id("keyed").filter(has_text=f"{minor // 100}.{minor % 100:02d}").wait_for()
    lines = page.locator("[data-testid^=line-]").count()
    page.get_by_test_id("add-amount").click()
    page.get_by_test_id(f"line-{lines + 1}").wait_for()


def pay_by_card(
    page: Any, pan: str, pin: str | None, entry: str = "insert", *, reopen: bool = True
) -> None:
    """Card payment of the cart (``reopen``: open the card dialog first)."""
    if reopen:
        page.get_by_test_id("pay-card").click()
    page.get_by_test_id("test-card").select_option(pan)
    page.get_by_test_id(entry).click()
    if pin is None:
        page.get_by_test_id("no-pin").click()
        return
    enter_pin(page, pin)
    page.get_by_test_id("pay").click()


def enter_pin(page: Any, pin: str) -> None:
    for d in pin:
        page.get_by_test_id(f"pin-key-{d}").click()
    page.get_by_test_id("pin-dots").filter(has_text="●" * len(pin)).wait_for()
