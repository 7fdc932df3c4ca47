"""Chip entry at the host: an ARQC from the card's chip is checked before any money moves,
for this card, this amount and a fresh transaction counter; the answer carries tag 91 for
the card to check. Messages are built as a chip terminal sends them (F22 051, F23, F55)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from smartpos.cards.emv import SimulatedChip, TerminalData
from smartpos.cards.tlv import decode_tlv, encode_tlv
from smartpos.host.ledger import check
from smartpos.host.testcards import CATALOGUE
from smartpos.protocol import codec
from tests.host.test_bad_input import frame, purchase_fields, send_raw, transfer_count
from tests.sandbox import Sandbox, running_sandbox

pytestmark = pytest.mark.integration
GOOD = CATALOGUE[0]
OTHER = next(c for c in CATALOGUE[1:] if c.pin and c.pan[:2] == "62")


async def _answer(sb: Sandbox, wire: bytes) -> dict[str, str]:
    resp = await send_raw(sb, wire)
    assert resp is not None
    return codec.decode(resp)


def test_chip_purchase_checks_the_arqc_and_answers_with_an_arpc(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path, tls=False) as sb:
            t = sb.terminal(profile=sb.profile)
            assert (await t.sign_on()).result == "approved"
            chip = SimulatedChip(GOOD.pan, "01")
            stan = [100]

            def purchase(
                amount: int, icc: dict[str, bytes] | None, same_stan: bool = False, **extra: str
            ) -> bytes:
                stan[0] += 0 if same_stan else 1
                fields = {
                    **purchase_fields(t, amount, icc),
                    "11": f"{stan[0]:06d}",
                    "12": "101010",
                    "13": "1123",
                    **extra,
                }
                return frame(sb, codec.encode(fields, mac=t._mac))

            async def answer(wire: bytes) -> dict[str, str]:
                return await _answer(sb, wire)

            before = transfer_count(sb)
            icc = chip.generate_arqc(TerminalData(1234), atc=7)
            ok = await answer(purchase(1234, icc))
            assert ok["39"] == "00", ok
            tag91 = decode_tlv(bytes.fromhex(ok["55"]))["91"]
            assert chip.check_arpc(icc, tag91)  # the card accepts the issuer's answer
            assert transfer_count(sb) == before + 1
            # The very same request again (a resend): the original answer, nothing posted.
            resent = await answer(purchase(1234, icc, same_stan=True))
            assert (resent["39"], resent["37"], resent["55"]) == ("00", ok["37"], ok["55"])
            # Same trace, another cryptogram: not the same request (94), nothing posted.
            other = chip.generate_arqc(TerminalData(1234), atc=20)
            assert (await answer(purchase(1234, other, same_stan=True)))["39"] == "94"
            assert transfer_count(sb) == before + 1

            # The same cryptogram again, in a new request: a replay.
            assert (await answer(purchase(1234, icc)))["39"] == "05"
            # A cryptogram for 12.34 on a purchase of 99.00.
            cheap = chip.generate_arqc(TerminalData(1234), atc=8)
            assert (await answer(purchase(9900, cheap)))["39"] == "05"
            # Another card's chip (its keys) with this card's PAN.
            forged = SimulatedChip(OTHER.pan, "01").generate_arqc(TerminalData(500), atc=9)
            assert (await answer(purchase(500, forged)))["39"] == "05"
            # The right chip with a tampered TVR.
            tampered = chip.generate_arqc(TerminalData(500), atc=10)
            tampered["95"] = b"\x80" + tampered["95"][1:]
            assert (await answer(purchase(500, tampered)))["39"] == "05"
            # Chip entry without ICC data, or with ICC data missing the ARQC.
            assert (await answer(purchase(500, None)))["39"] == "30"
            partial = {k: v for k, v in chip.generate_arqc(TerminalData(500), 11).items()}
            del partial["9F26"]
            assert (await answer(purchase(500, partial)))["39"] == "30"
            assert transfer_count(sb) == before + 1  # none of those moved money

            # A declined chip purchase still gets an ARPC (with the decline in its CSU).
            broke = chip.generate_arqc(TerminalData(900_051), atc=12)  # test amount → 51
            declined = await answer(purchase(900_051, broke))
            assert declined["39"] == "51"
            assert chip.check_arpc(broke, decode_tlv(bytes.fromhex(declined["55"]))["91"])
            # Counters move forward: the next genuine one is approved.
            fresh = chip.generate_arqc(TerminalData(200), atc=13)
            assert (await answer(purchase(200, fresh)))["39"] == "00"
            with sb.host.engine.connect() as conn:
                assert check(conn).balanced
            await t.link.close()

    asyncio.run(go())


def test_tc_advice_is_kept_only_for_the_sales_own_certificate(tmp_path: Path) -> None:
    """0320 with 60.3 = 203: the card's TC for an approved chip sale, checked against the
    sale (its card, amount and counter) and the card's keys before the host keeps it."""

    async def go() -> None:
        async with running_sandbox(tmp_path, tls=False) as sb:
            t = sb.terminal(profile=sb.profile)
            assert (await t.sign_on()).result == "approved"
            chip = SimulatedChip(GOOD.pan, "01")
            stan = [200]

            def message(fields: dict[str, Any]) -> bytes:
                stan[0] += 1
                base = {"11": f"{stan[0]:06d}", "13": "1124", "41": t.tid, "42": t.mid}
                return frame(sb, codec.encode({**base, **fields}, mac=t._mac))

            async def answer(wire: bytes) -> dict[str, str]:
                return await _answer(sb, wire)

            def purchase(amount: int, icc: dict[str, bytes] | None) -> bytes:
                return message(purchase_fields(t, amount, icc, entry="051" if icc else "021"))

            def advice(rrn: str, amount: int, tc: dict[str, bytes], pan: str = GOOD.pan) -> bytes:
                return message(
                    {
                        "t": "0320",
                        "2": pan,
                        "4": f"{amount:012d}",
                        "23": "001",
                        "37": rrn,
                        "55": encode_tlv(tc).hex().upper(),
                        "60": "22000001203",
                    }
                )

            def stored_tc(rrn: str) -> str | None:
                from sqlalchemy import select

                from smartpos.host.tables import requests

                with sb.host.engine.connect() as conn:
                    return conn.execute(
                        select(requests.c.tc).where(requests.c.rrn == rrn)
                    ).scalar_one()

            arqc = chip.generate_arqc(TerminalData(1500), atc=21)
            sale = await answer(purchase(1500, arqc))
            assert sale["39"] == "00"
            tc = chip.complete(arqc, decode_tlv(bytes.fromhex(sale["55"]))["91"], approved=True)
            rrn = sale["37"]

            # Not the sale's certificate: nothing kept.
            assert (await answer(advice(rrn, 1500, arqc)))["39"] == "05"  # an ARQC, not a TC
            forged = {**tc, "9F36": (22).to_bytes(2, "big")}
            assert (await answer(advice(rrn, 1500, forged)))["39"] == "05"  # other counter
            assert (await answer(advice(rrn, 1500, {**tc, "9F26": bytes(8)})))["39"] == "05"
            assert (await answer(advice(rrn, 1500, tc, pan=OTHER.pan)))["39"] == "14"
            assert (await answer(advice("261199999999", 1500, tc)))["39"] == "25"
            swiped = await answer(purchase(700, None))
            assert (await answer(advice(swiped["37"], 700, tc)))["39"] == "25"
            assert stored_tc(rrn) is None

            # The sale's own TC: kept; the same advice again gets the same answer.
            wire = advice(rrn, 1500, tc)
            first = await answer(wire)
            assert (first["39"], first.get("37")) == ("00", rrn), first  # names the sale
            assert stored_tc(rrn) == encode_tlv(tc).hex().upper()
            again = await answer(wire)
            assert (again["39"], again.get("37")) == ("00", first.get("37"))
            with sb.host.engine.connect() as conn:
                assert check(conn).balanced
            await t.link.close()

    asyncio.run(go())
