"""What the terminal can check itself is checked before anything is journaled or sent, and
its results never contradict themselves."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from smartpos.host.testcards import CATALOGUE
from smartpos.terminal.engine import CardInput, Terminal, TerminalError
from smartpos.terminal.tables import journal, reversals
from tests.sandbox import running_sandbox

pytestmark = pytest.mark.integration
GOOD = CATALOGUE[0]


def journal_rows(t: Terminal) -> tuple[int, int]:
    with t.engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(journal)).scalar_one(),
            conn.execute(select(func.count()).select_from(reversals)).scalar_one(),
        )


def test_a_malformed_refund_reference_is_refused_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    """`terminal refund --rrn abc` used to journal the refund, fail to encode it, and send a
    0400 reversal for a refund that never went out."""

    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            assert (await t.sign_on()).result == "approved"
            sold = await t.sale(1000, CardInput.parse(GOOD.pan), GOOD.pin)
            assert sold.result == "approved"
            rows, stan, requests = journal_rows(t), t.batch_no(), sb.service.stats.requests
            with t.engine.connect() as conn:
                trace = t._cfg(conn).stan
            for bad in ("abc", "", "1234567890123", "12345678901!", "１２３４５６７８９０１２"):
                with pytest.raises(TerminalError, match="reference number"):
                    await t.refund(100, CardInput.parse(GOOD.pan), rrn=bad)
            assert journal_rows(t) == rows and t.batch_no() == stan
            assert sb.service.stats.requests == requests  # nothing reached the host
            with t.engine.connect() as conn:
                assert t._cfg(conn).stan == trace  # no trace number used up
            assert t.pending_reversals() == 0
            ok = await t.refund(100, CardInput.parse(GOOD.pan), rrn=sold.rrn)
            assert ok.result == "approved"
            await t.link.close()

    asyncio.run(go())


def test_answers_say_what_happened(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            assert (await t.sign_on()).result == "approved"
            # A debit card sold without its PIN: the host says 55 — "PIN required", not
            # "Incorrect PIN" (nothing was typed).
            no_pin = await t.sale(1000, CardInput.parse(GOOD.pan), None)
            assert (no_pin.response_code, no_pin.message) == (
                "55",
                "PIN required: this card needs the cardholder's PIN",
            )
            assert no_pin.pin_verified is False
            wrong = await t.sale(1000, CardInput.parse(GOOD.pan), "000000")
            assert (wrong.message, wrong.pin_verified) == ("Incorrect PIN", False)
            inquiry = await t.balance(CardInput.parse(GOOD.pan), GOOD.pin)
            assert inquiry.result == "approved" and inquiry.pin_verified is True
            sale = await t.sale(1000, CardInput.parse(GOOD.pan), GOOD.pin)
            assert sale.result == "approved" and sale.pin_verified is True
            await t.link.close()

    asyncio.run(go())
