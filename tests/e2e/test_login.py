"""Logging in, in the browser, on a demo of its own (a locked account must not disturb the
other tests): the lockout after 10 wrong passwords, the admin mode's second factor (TOTP
enrolment by QR, then codes; an SMS code from the outbox), the idle lock."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Demo, start_demo
from tests.e2e.steps import demo_login, open_shift_if_asked

IDLE_LOCK_MINUTES = 1


@pytest.fixture(scope="module")
def own_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    os.environ["SMARTPOS_IDLE_LOCK_MINUTES"] = str(IDLE_LOCK_MINUTES)
    try:
        running = start_demo(tmp_path_factory.mktemp("auth") / "home")
    finally:
        del os.environ["SMARTPOS_IDLE_LOCK_MINUTES"]
    try:
        yield running
    finally:
        running.stop()


def _login_form(page: Any, demo: Demo, staff_no: str, password: str, mode: str) -> None:
    page.goto(demo.url + "lang/en?next=/login")
    page.get_by_test_id("identifier").fill(staff_no)
    page.get_by_test_id("password").fill(password)
    page.get_by_test_id(f"mode-{mode}").check()
    page.get_by_test_id("login-lang").select_option("en")
    page.get_by_test_id("login").click()


def test_ten_wrong_passwords_lock_the_account(own_demo: Demo, page: Any) -> None:
    who = demo_login("cashier")
    for _ in range(9):
        _login_form(page, own_demo, who.staff_no, "wrong-password", "cashier")
        expect(page.get_by_test_id("error")).to_contain_text("wrong staff number or password")
    _login_form(page, own_demo, who.staff_no, "wrong-password", "cashier")
    expect(page.get_by_test_id("error")).to_contain_text("locked")
    _login_form(page, own_demo, who.staff_no, who.password, "cashier")  # the right one
    expect(page.get_by_test_id("error")).to_contain_text("locked")
    assert "/sell" not in page.url and "/shift" not in page.url


def test_a_cashier_cannot_choose_admin_mode(own_demo: Demo, page: Any) -> None:
    who = [login for login in _logins() if login.role == "cashier"][-1]
    _login_form(page, own_demo, who.staff_no, who.password, "admin")
    expect(page.get_by_test_id("error")).to_contain_text("admin mode")


def _logins() -> Any:
    from smartpos.security.seed import DEMO_LOGINS

    return DEMO_LOGINS


def test_admin_mode_needs_totp_enrolled_by_qr_then_a_code(own_demo: Demo, page: Any) -> None:
    admin = demo_login("admin")
    _login_form(page, own_demo, admin.staff_no, admin.password, "admin")
    page.wait_for_url("**/login/second-factor")
    expect(page.get_by_test_id("totp-qr").locator("svg")).to_be_visible()
    secret = page.get_by_test_id("totp-secret").inner_text().strip()
    page.goto(own_demo.url + "sell")  # a pending session is allowed nothing else
    page.wait_for_url("**/login/second-factor")
    page.get_by_test_id("code").fill("000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    page.get_by_test_id("verify").click()
    expect(page.get_by_test_id("error")).to_be_visible()
    page.get_by_test_id("code").fill(pyotp.TOTP(secret).now())
    page.get_by_test_id("verify").click()
    open_shift_if_asked(page)
    page.get_by_test_id("logout").click()
    page.wait_for_url("**/login")
    # Enrolled: the next admin login asks for a code, shows no QR, and refuses a replay.
    _login_form(page, own_demo, admin.staff_no, admin.password, "admin")
    page.wait_for_url("**/login/second-factor")
    assert page.get_by_test_id("totp-qr").count() == 0
    page.get_by_test_id("code").fill(pyotp.TOTP(secret).at(time.time() + 30))
    page.get_by_test_id("verify").click()
    page.wait_for_url(re.compile(r".*/(sell|shift)$"))


def test_admin_mode_by_an_sms_code_from_the_outbox(own_demo: Demo, page: Any) -> None:
    manager = demo_login("manager")
    _login_form(page, own_demo, manager.staff_no, manager.password, "admin")
    page.wait_for_url("**/login/second-factor")
    page.get_by_test_id("send-sms").click()
    outbox = page.get_by_test_id("sms-outbox").inner_text()
    found = re.search(r"\b(\d{6})\b", outbox)
    assert found is not None, outbox
    page.get_by_test_id("code").fill(found.group(1))
    page.get_by_test_id("verify").click()
    page.wait_for_url(re.compile(r".*/(sell|shift)$"))


def test_the_idle_lock_and_only_the_same_operator_unlocks(own_demo: Demo, page: Any) -> None:
    who = [login for login in _logins() if login.role == "cashier"][-1]
    _login_form(page, own_demo, who.staff_no, who.password, "cashier")
    open_shift_if_asked(page)
    page.wait_for_url("**/lock", timeout=(IDLE_LOCK_MINUTES * 60 + 20) * 1000)
    expect(page.get_by_test_id("locked-by")).to_contain_text(who.name)
    page.goto(own_demo.url + "sell")  # the server holds the lock, not the page
    page.wait_for_url("**/lock")
    other = demo_login("manager")
    page.get_by_test_id("password").fill(other.password)
    page.get_by_test_id("unlock").click()
    expect(page.get_by_test_id("error")).to_be_visible()
    page.get_by_test_id("password").fill(who.password)
    page.get_by_test_id("unlock").click()
    page.wait_for_url("**/sell")


def test_logout_ends_the_session(own_demo: Demo, page: Any, tmp_path: Path) -> None:
    who = demo_login("manager")
    _login_form(page, own_demo, who.staff_no, who.password, "cashier")
    open_shift_if_asked(page)
    cookies = page.context.cookies()
    page.get_by_test_id("logout").click()
    page.wait_for_url("**/login")
    page.context.add_cookies(cookies)  # the old cookie again: the session has ended
    page.goto(own_demo.url + "sell")
    page.wait_for_url("**/login")
