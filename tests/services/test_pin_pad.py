"""The PIN pad port with the terminal: the pad holds the terminal's TPK (loaded when it is
attached and again at every sign-on) and gives only the encrypted block; the terminal sells
with that block and never sees the PIN."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from smartpos.cards.reading import CardInput
from smartpos.config import Settings
from smartpos.devices.pinpad import SimulatedPinPad
from smartpos.devices.ports import PinBlock
from smartpos.host.testcards import CATALOGUE
from smartpos.services.terminal import TerminalService
from smartpos.terminal.errors import Refusal, TerminalError
from tests.integration.test_card_flows import balance_of
from tests.sandbox import running_sandbox

pytestmark = pytest.mark.integration

GOOD = CATALOGUE[0]


def test_a_sale_with_the_pin_pads_block(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            service = TerminalService.open(Settings(), factory=lambda: t)
            typed: list[str] = []
            pad = SimulatedPinPad(lambda: typed.pop(0))
            try:
                with pytest.raises(TerminalError) as early:
                    await service.attach_pin_pad(pad)  # no TPK before the first sign-on
                assert early.value.code == Refusal.NOT_SIGNED_ON
                assert (await service.sign_on()).result == "approved"
                await service.attach_pin_pad(pad)
                card = CardInput.parse(GOOD.pan)
                before = balance_of(sb, GOOD)

                typed.append("000000")  # the wrong PIN
                wrong = await pad.pin_block(card.pan)
                assert isinstance(wrong, PinBlock) and GOOD.pin not in repr(wrong)
                declined = await service.sale(500, card, wrong, order_ref="pp-1")
                assert (declined.result, declined.response_code) == ("declined", "55")

                # A sign-on rotates the TPK; the pad follows it, and its block verifies.
                assert (await service.sign_on()).result == "approved"
                typed.append(GOOD.pin)
                block = await pad.pin_block(card.pan)
                approved = await service.sale(500, card, block, order_ref="pp-2")
                assert approved.result == "approved" and approved.pin_verified, approved
                assert balance_of(sb, GOOD) == before - 500
            finally:
                await service.close()

    asyncio.run(go())


def test_a_pin_pad_block_that_does_not_fit_the_scheme_is_refused(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            assert (await t.sign_on()).result == "approved"
            wide = PinBlock(bytes(16), format=4)  # format 4 on a format 0 acquirer
            with pytest.raises(TerminalError) as refused:
                await t.sale(500, CardInput.parse(GOOD.pan), wide)
            assert refused.value.code == Refusal.CANNOT_ENCODE
            assert t.pending_reversals() == 0  # nothing armed, nothing sent
            await t.close()

    asyncio.run(go())
