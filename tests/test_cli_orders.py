"""`--order`: a sale, void or refund given the same order reference again (a cashier who
presses the key twice, a script that retries) is answered from the journal and never
charged twice; a reference used for another amount is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli import GOOD, cli, data, home, host, js  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration


def _balance(home: Path) -> int:
    done = cli(home, "terminal", "balance", "--pin", "--json", card=GOOD.pan, pin="123456")
    return int(data(done)["balance_minor"])


def test_the_same_order_reference_is_charged_once(home: Path, host: int) -> None:
    assert js(cli(home, "terminal", "signon", "--json"))["result"] == "approved"
    before = _balance(home)
    args = ("terminal", "sale", "--amount", "12.34", "--pin", "--order", "A-1001", "--json")
    first = data(cli(home, *args, card=GOOD.pan, pin="123456"))
    again = data(cli(home, *args, card=GOOD.pan, pin="123456"))
    assert first["rrn"] == again["rrn"] and again["repeated"] and not first["repeated"]
    assert first["order_ref"] == "A-1001"
    assert _balance(home) == before - 1234

    other = cli(
        home,
        "terminal",
        "sale",
        "--amount",
        "12.35",
        "--pin",
        "--order",
        "A-1001",
        "--json",
        ok=False,
        card=GOOD.pan,
        pin="123456",
    )
    refused = js(other)
    assert (refused["ok"], refused["code"]) == (False, "refused")
    assert "A-1001" in refused["message"] and "new reference" in refused["message"]
    assert _balance(home) == before - 1234

    void = ("terminal", "void", "--stan", first["stan"], "--order", "A-1001/void", "--json")
    assert js(cli(home, *void))["result"] == "approved"
    assert data(cli(home, *void))["repeated"] is True
    assert _balance(home) == before


def test_a_malformed_order_reference_is_a_usage_error(home: Path) -> None:
    done = cli(home, "terminal", "void", "--stan", "000001", "--order", "", "--json", ok=False)
    assert done.returncode == 2 and js(done)["code"] == "usage"
