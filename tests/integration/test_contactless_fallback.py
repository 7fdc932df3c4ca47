"""Contactless (QuickPass) sales and chip fallback, terminal engine against the sandbox host:
the no-CVM limit on both sides, the slip of a no-PIN tap, chip cards refused at the swipe
(by the terminal, and by the host when a terminal sends one anyway) and fallback swipes."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from smartpos.cards import CardError
from smartpos.cards.reading import CardInput
from smartpos.host import steps
from smartpos.host.testcards import CATALOGUE, by_label_prefix
from smartpos.receipts.text import render_text
from smartpos.terminal.engine import TerminalError, card_or_error
from smartpos.terminal.receipts import receipts_for
from smartpos.terminal.tables import journal
from tests.integration.test_card_flows import assert_ledger_balanced, balance_of, signed_on
from tests.sandbox import running_sandbox

pytestmark = pytest.mark.integration
GOOD = CATALOGUE[0]  # a UnionPay debit card that needs its PIN
CHIP = by_label_prefix("UnionPay debit, chip card")
PIN = "123456"
LIMIT = 100_000  # the sandbox profile's no-CVM limit, CNY 1,000.00


def journal_rows(t: object) -> int:
    with t.engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(select(func.count()).select_from(journal)).scalar_one())


def test_tap_up_to_the_no_cvm_limit_needs_no_pin_and_no_signature(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            assert t.profile.contactless_no_cvm_limit_minor == LIMIT
            tap = CardInput.parse(GOOD.track2, tap=True)
            start = balance_of(sb, GOOD)

            # At the limit: no PIN asked (one given is not used), approved, money held.
            small = await t.sale(LIMIT, tap, PIN)
            assert (small.result, small.entry_mode, small.pin_verified) == (
                "approved",
                "contactless",
                False,
            ), small
            assert small.icc["ATC"] == "0001" and len(small.icc["ARQC"]) == 16
            assert balance_of(sb, GOOD) == start - LIMIT
            merchant, _ = receipts_for(
                small, merchant_name="Demo", tid=t.tid, mid=t.mid, pin_verified=False
            )
            slip = render_text(merchant)
            assert "小额免密免签" in slip and "持卡人签名" not in slip, slip
            assert "/C" in slip

            # One cent above: the terminal asks for the PIN and sends nothing without it.
            rows = journal_rows(t)
            with pytest.raises(TerminalError, match="PIN required"):
                await t.sale(LIMIT + 1, tap, None)
            assert journal_rows(t) == rows and balance_of(sb, GOOD) == start - LIMIT
            big = await t.sale(LIMIT + 1, tap, PIN)
            assert (big.result, big.pin_verified) == ("approved", True), big
            assert big.icc["ATC"] == "0002"

            # The card has left the field when the answer comes: tag 91 is not checked,
            # so a bad ARPC does not reverse a tap (it would reverse an inserted chip).
            real = steps.arpc_tag91
            monkeypatch.setattr(
                steps, "arpc_tag91", lambda *a, **kw: real(*a, **kw)[:-5] + bytes(5)
            )
            kept = await t.sale(300, tap, None)
            assert kept.result == "approved" and kept.reversal is None, kept
            monkeypatch.setattr(steps, "arpc_tag91", real)
            assert balance_of(sb, GOOD) == start - LIMIT - (LIMIT + 1) - 300
            assert_ledger_balanced(sb)
            await t.link.close()

    asyncio.run(go())


def test_host_requires_the_pin_above_its_no_cvm_limit(tmp_path: Path) -> None:
    """A terminal configured with a higher limit than the issuer's sends a tap without PIN:
    the host answers 55 and nothing moves."""

    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            t.profile = replace(t.profile, contactless_no_cvm_limit_minor=10 * LIMIT)
            start = balance_of(sb, GOOD)
            tap = CardInput.parse(GOOD.pan, tap=True)
            refused = await t.sale(LIMIT + 1, tap, None)
            assert (refused.result, refused.response_code) == ("declined", "55"), refused
            assert balance_of(sb, GOOD) == start
            # Balance inquiries are not purchases: no PIN, no answer but 55.
            inquiry = await t.balance(CardInput.parse(GOOD.pan), None)
            assert inquiry.response_code == "55"
            assert_ledger_balanced(sb)
            await t.link.close()

    asyncio.run(go())


def test_chip_card_is_not_swiped_except_as_fallback(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            start = balance_of(sb, CHIP)
            swipe = CardInput.parse(CHIP.track2)
            assert swipe.chip_card
            rows = journal_rows(t)
            with pytest.raises(TerminalError, match="insert or tap"):
                await t.sale(1_000, swipe, PIN)
            assert journal_rows(t) == rows
            # A terminal that ignores the service code: the host refuses the swipe (45).
            careless = replace(swipe, chip_card=False)
            refused = await t.sale(1_000, careless, PIN)
            assert (refused.result, refused.response_code) == ("declined", "45"), refused
            assert balance_of(sb, CHIP) == start
            # The chip cannot be read: fallback swipe, entry mode 80, approved.
            fallback = CardInput.parse(CHIP.track2, fallback=True)
            ok = await t.sale(1_000, fallback, PIN)
            assert (ok.result, ok.entry_mode) == ("approved", "fallback"), ok
            assert "/F" in render_text(
                receipts_for(ok, merchant_name="Demo", tid=t.tid, mid=t.mid)[1]
            )
            # The same card inserted and tapped works as any chip card.
            for card in (
                CardInput.parse(CHIP.track2, chip=True),
                CardInput.parse(CHIP.pan, tap=True),
            ):
                assert (await t.sale(500, card, PIN)).result == "approved"
            assert balance_of(sb, CHIP) == start - 2_000
            # Balance inquiry by chip (an ARQC for amount 0) and by tap.
            for card in (
                CardInput.parse(CHIP.track2, chip=True),
                CardInput.parse(CHIP.pan, tap=True),
            ):
                inquiry = await t.balance(card, PIN)
                assert (inquiry.result, inquiry.balance_minor) == ("approved", start - 2_000)
            # A refund reads the card too: not by swiping a chip card; tapped, it is refunded.
            with pytest.raises(TerminalError, match="insert or tap"):
                await t.refund(400, CardInput.parse(CHIP.track2), rrn=ok.rrn)
            back = await t.refund(400, CardInput.parse(CHIP.pan, tap=True), rrn=ok.rrn)
            assert (back.result, back.entry_mode) == ("approved", "contactless"), back
            assert balance_of(sb, CHIP) == start - 1_600
            assert_ledger_balanced(sb)
            await t.link.close()

    asyncio.run(go())


def test_card_reading_options_are_checked_before_anything_is_sent() -> None:
    with pytest.raises(CardError, match="chip cards"):
        CardInput.parse(GOOD.track2, fallback=True)  # service code 101: no chip
    with pytest.raises(CardError, match="track 2"):
        CardInput.parse(CHIP.pan, fallback=True)  # fallback is a swipe
    with pytest.raises(TerminalError, match="one way"):
        card_or_error(GOOD.pan, None, chip=True, tap=True)
