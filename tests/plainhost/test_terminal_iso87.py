"""The done-when of acquirer profiles: smartpos's real terminal, with a plain ISO 8583:1987
profile (no TLS, no TPDU, no header, no MAC, no working keys) loaded from the user's TOML
file, completes a sale, a void, a refund and a reversal against a host that shares none of
its code (tests/plainhost: pyiso8583 with a spec written from the standard) — and the
host's own ledger shows every amount moved exactly once."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from smartpos.cards.reading import CardInput
from smartpos.config import Settings
from smartpos.keys.keys import kcv
from smartpos.terminal.engine import Terminal
from smartpos.terminal.errors import Refusal, TerminalError
from smartpos.terminal.link import LinkError
from smartpos.terminal.setup import open_terminal, open_terminal_db, provision
from tests.plainhost.host import PlainHost

pytestmark = pytest.mark.integration

PAN = "6212340000000001"
TRACK2 = f"{PAN}=30121010000000000"
OPENING = 500_000

# What a user writes for an acquirer that speaks plain 1987 in ASCII (jPOS ISO87A style):
# every choice spelled out rather than inherited, so the file alone defines the dialect.
PROFILES_TOML = """\
[profile.acme-1987]
description = "ACME acquiring: ISO 8583:1987, ASCII, 2-byte length, nothing else"
tls.enabled = false
frame.tpdu = false
frame.header = false
mac.enabled = false
keys.delivery = "none"
message.dictionary = "iso87"
"""


class LosesTheAnswer:
    """The link delivers the request, and the host's answer is lost on the way back."""

    def __init__(self, link: object) -> None:
        self.link, self.armed = link, False

    async def exchange(self, message: bytes, timeout_ms: int | None = None) -> bytes:
        answer = await self.link.exchange(message, timeout_ms)  # type: ignore[attr-defined]
        if self.armed:
            self.armed = False
            raise LinkError("no answer from the host within 10 s", sent=True)
        return bytes(answer)

    async def close(self) -> None:
        await self.link.close()  # type: ignore[attr-defined]


def _terminal(home: Path, port: int) -> Terminal:
    (home).mkdir(mode=0o700, parents=True, exist_ok=True)
    (home / "profiles.toml").write_text(PROFILES_TOML)
    settings = Settings(home=home)
    tmk = os.urandom(16)
    provision(
        open_terminal_db(settings),
        tid="20000001",
        mid="898310048160002",
        merchant_name="ACME",
        tmk=tmk,
        tmk_kcv=kcv(tmk),
        link_host="127.0.0.1",
        link_port=port,
        host_fingerprint=None,
        profile="acme-1987",
    )
    return open_terminal(settings)


def test_sale_void_refund_and_reversal_against_a_plain_1987_host(tmp_path: Path) -> None:
    async def go() -> None:
        async with PlainHost({PAN: OPENING}) as host:
            t = _terminal(tmp_path / "home", host.port)
            assert t.profile.name == "acme-1987" and t.profile.source.endswith("profiles.toml")
            assert not (t.profile.tls or t.profile.tpdu or t.profile.mac_required)
            try:
                # A sign-on is answered without keys (this acquirer delivers none): fine.
                signed = await t.sign_on()
                assert signed.result == "approved", signed
                swiped = CardInput.parse(TRACK2)
                sale = await t.sale(12_34, swiped, order_ref="acme-1")
                assert (sale.result, sale.response_code) == ("approved", "00"), sale
                assert len(sale.rrn) == 12 and sale.auth_code
                assert host.ledger.available(PAN) == OPENING - 12_34

                void = await t.void(stan=sale.stan, order_ref="acme-1/void")
                assert void.result == "approved", void
                assert host.ledger.available(PAN) == OPENING

                second = await t.sale(50_00, swiped, order_ref="acme-2")
                assert second.result == "approved", second
                refund = await t.refund(20_00, swiped, rrn=second.rrn, order_ref="acme-2/r")
                assert refund.result == "approved", refund
                assert host.ledger.available(PAN) == OPENING - 50_00 + 20_00
                with pytest.raises(TerminalError) as over:  # never more than is left
                    await t.refund(30_01, swiped, rrn=second.rrn, order_ref="acme-2/r2")
                assert over.value.code == Refusal.OVER_REFUND
                assert host.ledger.available(PAN) == OPENING - 50_00 + 20_00

                # The third sale's answer is lost: the terminal reverses it (0400).
                lossy = LosesTheAnswer(t.link)
                t.link = lossy  # type: ignore[assignment]
                lossy.armed = True
                lost = await t.sale(7_00, swiped, order_ref="acme-3")
                assert lost.result == "error" and lost.reversal == "sent", lost
                assert host.ledger.available(PAN) == OPENING - 50_00 + 20_00
                reversals = [req for req, _ in host.exchanges if req and req["t"] == "0400"]
                assert len(reversals) == 1 and reversals[0]["11"] == lost.stan

                # Orders already answered are not sent again.
                sent = len(host.exchanges)
                again = await t.sale(12_34, swiped, order_ref="acme-1")
                assert again.repeated and again.rrn == sale.rrn
                assert len(host.exchanges) == sent
            finally:
                await t.close()
            holds = [m for m in host.ledger.moves if m[0] == "hold"]
            releases = [m for m in host.ledger.moves if m[0] == "release"]
            # sale 1 (voided), sale 2, sale 3 (reversed): three holds, two released
            assert [m[2] for m in holds] == [12_34, 50_00, 7_00]
            assert sorted(m[2] for m in releases) == [7_00, 12_34]

    asyncio.run(go())
