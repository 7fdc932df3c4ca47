"""Every role against every protected action, at the HTTP level (what the browser would
send, without the browser): the permission matrix holds at the server whatever a screen
shows. Cashier mode for everyone, admin mode for the manager and the admin (after TOTP)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pyotp
import pytest

from smartpos.security.permissions import Permissions
from smartpos.security.seed import DEMO_LOGINS
from tests.e2e.conftest import Demo

PERMS = Permissions()
OPERATORS = [
    ("cashier", "cashier"),
    ("manager", "cashier"),
    ("manager", "admin"),
    ("admin", "admin"),
]


def _login(demo: Demo, role: str, mode: str) -> httpx.Client:
    who = next(login for login in DEMO_LOGINS if login.role == role)
    client = _client(demo)
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    form = {"identifier": who.staff_no, "password": who.password, "mode": mode}
    done = client.post("/login", data={**form, "csrf": csrf.group(1), "lang": "en"})
    if "/login/second-factor" in str(done.url):
        secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', done.text)
        assert secret is not None, "the admin's TOTP is enrolled at its first admin login"
        token = re.search(r'name="csrf" value="([^"]+)"', done.text)
        assert token is not None
        done = client.post(
            "/login/second-factor",
            data={"code": pyotp.TOTP(secret.group(1)).now(), "csrf": token.group(1)},
        )
    if str(done.url).endswith("/shift"):
        token = re.search(r'name="csrf" value="([^"]+)"', done.text)
        assert token is not None
        done = client.post("/shift/open", data={"float": "100", "csrf": token.group(1)})
    assert str(done.url).endswith("/sell"), (role, mode, done.url)
    client.headers["X-CSRF-Token"] = _csrf(done.text)
    return client


def _client(demo: Demo) -> httpx.Client:
    """A client that sends the app's Secure cookies over plain http to 127.0.0.1, as
    browsers do for a loopback address (httpx, by the book, would not)."""
    client = httpx.Client(base_url=demo.url, follow_redirects=True, timeout=60)

    def keep(response: httpx.Response) -> None:
        for cookie in response.cookies.jar:
            client.cookies.delete(cookie.name)
            if cookie.value:
                client.cookies.set(cookie.name, cookie.value)

    client.event_hooks["response"] = [keep]
    return client


def _csrf(html: str) -> str:
    found = re.search(r'data-csrf="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _paid_order(client: httpx.Client, amount_minor: int) -> str:
    if client.get("/api/shifts/current").json() is None:  # another test closed it
        token = client.headers["X-CSRF-Token"]
        client.post("/shift/open", data={"float": "100", "csrf": token})
    order_id = uuid.uuid4().hex
    assert client.post("/api/orders", json={"id": order_id}).status_code == 201
    added = client.post(f"/api/orders/{order_id}/lines", json={"amount_minor": amount_minor})
    assert added.status_code == 200, added.text
    paid = client.post(f"/api/orders/{order_id}/cash", json={"tendered_minor": amount_minor})
    assert paid.status_code == 200, paid.text
    return order_id


@pytest.fixture(scope="module")
def operators(demo: Demo) -> Iterator[dict[tuple[str, str], httpx.Client]]:
    clients = {(role, mode): _login(demo, role, mode) for role, mode in OPERATORS}
    yield clients
    for client in clients.values():
        client.close()


def _refused(response: httpx.Response) -> bool:
    return response.status_code == 403 and 'data-testid="override"' in response.text


ACTIONS: list[tuple[str, Any]] = [
    ("refund_small", lambda c, o: c.post(f"/orders/{o}/refund", data={"amount": "1.00"})),
    ("refund_large", lambda c, o: c.post(f"/orders/{o}/refund", data={"amount": "150.00"})),
    ("void_own", lambda c, o: c.post(f"/orders/{o}/void")),
]


@pytest.mark.parametrize(("role", "mode"), OPERATORS)
@pytest.mark.parametrize(("permission", "act"), ACTIONS, ids=[a[0] for a in ACTIONS])
def test_each_role_against_each_order_action(
    operators: dict[tuple[str, str], httpx.Client], role: str, mode: str, permission: str, act: Any
) -> None:
    client = operators[(role, mode)]
    order_id = _paid_order(client, 20_000)  # ¥200.00: room for the large refund
    allowed = permission in PERMS.effective_permissions(role, mode)
    response = act(client, order_id)
    assert response.status_code < 500
    assert _refused(response) == (not allowed), (role, mode, permission, response.status_code)


@pytest.mark.parametrize(("role", "mode"), OPERATORS)
def test_each_role_against_a_large_discount_and_the_settlement(
    operators: dict[tuple[str, str], httpx.Client], role: str, mode: str
) -> None:
    client = operators[(role, mode)]
    effective = PERMS.effective_permissions(role, mode)
    added = client.post("/sell/amount", data={"amount_minor": "1000"}, headers={"HX-Request": "1"})
    line = re.search(r'"line_id": (\d+)', added.text)
    assert line is not None, added.text
    discount = client.post("/sell/discount", data={"line_id": line.group(1), "percent": "50"})
    assert _refused(discount) == ("discount_large" not in effective)
    client.post("/sell/clear", headers={"HX-Request": "1"})
    settle = client.get("/settle")
    assert settle.status_code == 200
    response = client.post("/settle")
    assert response.status_code < 500
    assert _refused(response) == ("settle" not in effective)


def test_without_a_session_every_action_is_refused(demo: Demo) -> None:
    with httpx.Client(base_url=demo.url, timeout=30) as anonymous:
        for path in ("/api/me", "/api/orders", "/api/shifts/current", "/api/catalog/search"):
            assert anonymous.get(path).status_code == 401, path
        assert anonymous.post("/api/orders", json={"id": uuid.uuid4().hex}).status_code == 401
        assert anonymous.post("/settle").status_code == 303  # to the login screen


def test_a_change_without_the_csrf_token_is_refused(
    operators: dict[tuple[str, str], httpx.Client],
) -> None:
    client = operators[("cashier", "cashier")]
    token = client.headers.pop("X-CSRF-Token")
    try:
        assert client.post("/api/orders", json={"id": uuid.uuid4().hex}).status_code == 403
    finally:
        client.headers["X-CSRF-Token"] = token
