"""What the terminal can check itself is checked before anything is journaled or sent, and
its results never contradict themselves."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from smartpos.cards.reading import CardInput
from smartpos.host.testcards import CATALOGUE
from smartpos.terminal.engine import Terminal, TerminalError
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


class OneAnswerLink:
    """A link whose host answers every request with the same fields (MTI and trace
    matched to the request): an acquirer that misbehaves in one particular way."""

    def __init__(self, answer: dict[str, str]) -> None:
        self.answer = answer
        self.sent = 0

    async def exchange(self, message: bytes, timeout_ms: int | None = None) -> bytes:
        from smartpos.protocol import codec
        from smartpos.protocol.messages import response_mti

        self.sent += 1
        req = codec.decode(message)
        fields = {"t": response_mti(req["t"]), "11": req["11"], "41": req["41"], **self.answer}
        return codec.encode(fields)

    async def close(self) -> None:
        return None


def test_a_sign_on_approved_without_keys_is_an_error(tmp_path: Path) -> None:
    """An 0810 answered 00 without field 62 used to print
    '"result":"declined","response_code":"00","message":"Approved"'."""

    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            t.link = OneAnswerLink({"39": "00", "42": t.mid})  # type: ignore[assignment]
            r = await t.sign_on()
            assert (r.result, r.response_code) == ("error", "00")
            assert r.message == "the host approved the sign-on but sent no keys"
            assert t._tak is None and t._tpk is None  # nothing loaded
            t.link = OneAnswerLink({"39": "00", "62": "00" * 40})  # type: ignore[assignment]
            r = await t.sign_on()
            assert r.result == "error" and "keys refused" in r.message
            t.link = OneAnswerLink({"39": "05"})  # type: ignore[assignment]
            r = await t.sign_on()
            assert (r.result, r.response_code, r.message) == ("declined", "05", "Do not honor")

    asyncio.run(go())


def test_the_terminal_does_one_transaction_at_a_time(tmp_path: Path) -> None:
    """Two commands on one terminal at once: the second used to take the first's in-flight
    sale for one a crash had interrupted and reverse it — approved for one cashier,
    reversed at the bank by the other. Now the second is told the terminal is busy."""
    from smartpos.config import Settings
    from smartpos.terminal.setup import open_terminal

    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            assert (await t.sign_on()).result == "approved"
            home = sb.settings.home / f"terminal-{t.tid}"
            settings = Settings(home=home, terminal_db_url=f"sqlite:///{home / 'terminal.db'}")
            first = open_terminal(settings)
            with pytest.raises(TerminalError, match="busy"):
                open_terminal(settings)
            sale = await first.sale(100, CardInput.parse(GOOD.pan), GOOD.pin)
            assert sale.result == "approved"
            await first.close()
            second = open_terminal(settings)  # free again
            assert second.pending_reversals() == 0
            await second.close()

    asyncio.run(go())
