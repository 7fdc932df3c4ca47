"""Bad input at the host, over a real socket: an answer with the right code or a closed
connection; never a crash, a hang or a posting — and the host keeps serving."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from smartpos.cards.reading import CardInput
from smartpos.cards.tlv import encode_tlv
from smartpos.host.ledger import check
from smartpos.host.tables import terminals, transfers
from smartpos.host.testcards import CATALOGUE
from smartpos.keys.keys import generate_key, signon_mac_key
from smartpos.keys.mac import compute_mac
from smartpos.protocol import codec
from smartpos.protocol.framing import Frame, Tpdu, encode_frame, read_body
from smartpos.protocol.messages import F60, NET_SIGN_ON, TYPE_NETWORK, trace_after
from smartpos.terminal.engine import Terminal
from tests.sandbox import Sandbox, running_sandbox

pytestmark = pytest.mark.integration
GOOD = CATALOGUE[0]


async def send_raw(sb: Sandbox, wire: bytes) -> bytes | None:
    """Send bytes; return the answer message, or None if the host closed the link."""
    reader, writer = await asyncio.open_connection("127.0.0.1", sb.server.port)
    try:
        writer.write(wire)
        await writer.drain()
        body = await asyncio.wait_for(read_body(reader), 5)
        return body[5 + sb.profile.header_len :]
    except asyncio.IncompleteReadError:
        return None
    finally:
        writer.close()


def frame(sb: Sandbox, message: bytes) -> bytes:
    return encode_frame(Frame(Tpdu(1, 0), sb.profile.app_header, message))


def sign_on_fields(t: Terminal, stan: str) -> dict[str, str]:
    """A sign-on request of terminal ``t`` with trace ``stan`` (to be MACed by the caller)."""
    return {
        "t": "0800",
        "11": stan,
        "12": "101010",
        "13": "1123",
        "41": t.tid,
        "42": t.mid,
        "60": F60(TYPE_NETWORK, "000001", NET_SIGN_ON).encode(),
        "63": "01 ",
    }


def purchase_fields(
    t: Terminal, amount: int, icc: dict[str, bytes] | None, entry: str = "051"
) -> dict[str, Any]:
    """A purchase of ``amount`` with GOOD's PIN block (chip entry by default, field 55 from
    ``icc``), without trace, time and date."""
    fields: dict[str, Any] = {
        "t": "0200",
        "3": "000000",
        "4": f"{amount:012d}",
        "22": entry,
        "25": "00",
        "26": "12",
        "2": GOOD.pan,
        "41": t.tid,
        "42": t.mid,
        "49": "156",
        "52": t._card_fields(CardInput.parse(GOOD.pan), GOOD.pin)["52"],
        "60": "22000001000",
    }
    if entry == "051":
        fields["23"] = "001"
    if icc is not None:
        fields["55"] = encode_tlv(icc).hex().upper()
    return fields


def transfer_count(sb: Sandbox) -> int:
    with sb.host.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(transfers)).scalar_one())


def test_bad_input_never_posts(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path, tls=False) as sb:
            t = sb.terminal(profile=sb.profile)
            await t.sign_on()
            base = {
                **purchase_fields(t, 1000, None, entry="011"),
                "11": "000500",
                "12": "101010",
                "13": "1123",
            }
            before = transfer_count(sb)

            # Framing: wrong length prefixes, bad TPDU → connection closed.
            assert await send_raw(sb, struct.pack(">H", 3) + b"abc") is None
            assert await send_raw(sb, struct.pack(">H", 60000) + b"x" * 10) is None
            assert await send_raw(sb, struct.pack(">H", 20) + b"\x61" + bytes(19)) is None
            # Undecodable message with a non-request MTI → closed.
            assert await send_raw(sb, frame(sb, b"\x99\x99" + bytes(10))) is None

            async def answer(fields: dict[str, str], maced: bool = True) -> str:
                raw = codec.encode(fields, mac=t._mac if maced else None)
                resp = await send_raw(sb, frame(sb, raw))
                assert resp is not None
                return codec.decode(resp)["39"]

            # Bitmap announcing a field that is not there → format error 30.
            truncated = codec.encode(base, mac=t._mac)[:-20]
            resp = await send_raw(sb, frame(sb, truncated))
            assert resp is not None
            answer_30 = codec.decode(resp)
            assert answer_30["39"] == "30"
            # What decoded before the defect is echoed, so the terminal can match the answer.
            assert (answer_30["t"], answer_30["11"], answer_30["41"]) == ("0210", "000500", t.tid)
            assert "64" not in answer_30
            # A field broken before 11 decodes: nothing to echo, still a 30.
            bad_early = bytearray(codec.encode(base, mac=t._mac))
            bad_early[10] = 0x99  # field 2's length prefix: 99 digits > 19
            resp = await send_raw(sb, frame(sb, bytes(bad_early)))
            assert resp is not None
            early = codec.decode(resp)
            assert early["39"] == "30" and "11" not in early and "41" not in early
            assert await answer({**base, "3": "990000"}) == "12"  # unknown processing code
            assert await answer({**base, "41": "99999999"}) == "97"  # unknown terminal
            assert await answer({**base, "42": "000000000000000"}) == "03"  # wrong merchant
            assert await answer(base, maced=False) == "A0"  # MAC missing
            bad_mac = codec.encode(base, mac=lambda d: bytes(8))
            resp = await send_raw(sb, frame(sb, bad_mac))
            assert resp is not None and codec.decode(resp)["39"] == "A0"
            no_amount = {k: v for k, v in base.items() if k != "4"}
            assert await answer(no_amount) == "30"
            assert await answer({**base, "60": "2200"}) == "30"  # sub-field too short
            assert transfer_count(sb) == before

            # The host still works, and a replay with other content is a duplicate (94).
            assert await answer(base) == "00"
            assert await answer(base) == "00"  # exact replay: original answer
            assert await answer({**base, "4": "000000009999"}) == "94"
            assert transfer_count(sb) == before + 1
            with sb.host.engine.connect() as conn:
                assert check(conn).balanced
            await t.link.close()

    asyncio.run(go())


def test_wrong_host_certificate_is_refused(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            t.link.fingerprint = "00" * 32
            r = await t.sign_on()
            assert r.result == "error" and "fingerprint" in r.message

    asyncio.run(go())


def test_sign_on_needs_proof_of_the_tmk(tmp_path: Path) -> None:
    """Anyone who knows a TID and MID could otherwise make the host rotate that terminal's
    keys. A sign-on without a MAC, or MACed under anything but the TMK's sign-on variant, is
    answered A0 and leaves the keys as they were; the terminal's own sign-on works."""

    async def go() -> None:
        async with running_sandbox(tmp_path, tls=False) as sb:
            t = sb.terminal(profile=sb.profile)
            assert (await t.sign_on()).result == "approved"
            keys_before = sb.service.terminals[t.tid]
            req = sign_on_fields(t, "000900")
            alg = sb.profile.mac_algorithm

            async def sign_on_with(mac_key: bytes | None) -> str:
                mac = None if mac_key is None else (lambda d: compute_mac(alg, mac_key, d))
                resp = await send_raw(sb, frame(sb, codec.encode(req, mac=mac)))
                assert resp is not None
                return codec.decode(resp)["39"]

            assert await sign_on_with(None) == "A0"
            assert await sign_on_with(generate_key()) == "A0"
            assert await sign_on_with(t._tmk) == "A0"  # the TMK itself, not its variant
            assert sb.service.terminals[t.tid] == keys_before
            with sb.host.engine.connect() as conn:
                row = conn.execute(select(terminals).where(terminals.c.tid == t.tid)).one()
            assert (row.sealed_tpk, row.sealed_tak) == (
                keys_before.sealed_tpk,
                keys_before.sealed_tak,
            )
            # The terminal still holds working keys the host accepts...
            r = await t.sale(1000, CardInput.parse(GOOD.pan), "123456")
            assert r.result == "approved", r
            # ...and a sign-on MACed under the right variant rotates them.
            assert await sign_on_with(signon_mac_key(t._tmk)) == "00"
            assert sb.service.terminals[t.tid] != keys_before
            await t.link.close()

    asyncio.run(go())


def test_replayed_sign_ons_cannot_rotate_keys(tmp_path: Path) -> None:
    """A captured sign-on sent again: the latest one gets the current keys once more (a
    resend), an older one is refused (94); neither rotates the keys."""

    async def go() -> None:
        async with running_sandbox(tmp_path, tls=False) as sb:
            t = sb.terminal(profile=sb.profile)
            key = signon_mac_key(t._tmk)
            alg = sb.profile.mac_algorithm

            def sign_on(stan: str) -> bytes:
                req = sign_on_fields(t, stan)
                return frame(sb, codec.encode(req, mac=lambda d: compute_mac(alg, key, d)))

            async def send(wire: bytes) -> dict[str, str]:
                resp = await send_raw(sb, wire)
                assert resp is not None
                return codec.decode(resp)

            old, new = sign_on("000010"), sign_on("000011")
            assert (await send(old))["39"] == "00"
            latest = await send(new)
            assert latest["39"] == "00"
            keys = sb.service.terminals[t.tid]
            assert (await send(old))["39"] == "94"  # an older capture: refused
            again = await send(new)  # the latest again: same keys, no rotation
            assert again["39"] == "00" and again["62"] == latest["62"]
            assert sb.service.terminals[t.tid] == keys
            # Across the trace counter's wrap, 000001 comes after 999999.
            assert (await send(sign_on("999999")))["39"] == "94"  # half a cycle behind
            # Provisioning again (a new TMK) forgets the old sign-ons.
            t2 = sb.terminal(profile=sb.profile)
            assert (await t2.sign_on()).result == "approved"

    asyncio.run(go())


def test_trace_order_wraps() -> None:
    assert trace_after("000002", "000001")
    assert trace_after("000001", "999999")
    assert not trace_after("000001", "000001")
    assert not trace_after("000001", "000002")
    assert not trace_after("500000", "000001")  # more than half a cycle ahead: behind
    assert not trace_after("", "000001")


def test_a_0320_is_an_upload_advice_or_a_tc_advice_only(tmp_path: Path) -> None:
    """A 0320 is classified by its 60.3 (201 upload advice, 202 upload end, 203 TC advice);
    anything else is an unsupported transaction (12) — not taken, during an upload, as an
    advice confirming a sale."""
    from smartpos.protocol.messages import NET_SETTLE, SettlementTotals, TotalsGroup

    async def go() -> None:
        async with running_sandbox(tmp_path, tls=False) as sb:
            t = sb.terminal(profile=sb.profile)
            await t.sign_on()
            sold = await t.sale(100, CardInput.parse(GOOD.pan), GOOD.pin)
            assert sold.result == "approved"

            async def answer(fields: dict[str, str]) -> str:
                resp = await send_raw(sb, frame(sb, codec.encode(fields, mac=t._mac)))
                assert resp is not None
                return codec.decode(resp)["39"]

            wrong = SettlementTotals(TotalsGroup(999, 1), TotalsGroup()).encode()
            settle = {
                **sign_on_fields(t, "000800"),
                "t": "0500",
                "48": wrong,
                "49": "156",
                "60": F60(TYPE_NETWORK, "000001", NET_SETTLE).encode(),
            }
            assert await answer(settle) == "00"  # not balanced: the host awaits the upload
            advice = {
                "t": "0320",
                "4": "000000000100",
                "11": sold.stan,
                "13": "1123",
                "37": sold.rrn,
                "41": t.tid,
                "42": t.mid,
            }
            for net_code in ("000", "301", "999"):
                assert await answer({**advice, "60": F60("22", "000001", net_code).encode()}) == (
                    "12"
                ), net_code
            assert await answer(advice) == "12"  # no 60 at all
            assert await answer({**advice, "60": F60("22", "000001", "201").encode()}) == "00"
            await t.link.close()

    asyncio.run(go())
