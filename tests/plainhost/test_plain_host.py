"""The plain 1987 host on its own: requests built with pyiso8583 and spec87 only, over its
TCP port, and the money it moves (each sale held once, voids and reversals release, refunds
credit, a duplicate changes nothing, a malformed frame never crashes it)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable

import iso8583
import pytest

from tests.plainhost.host import PlainHost
from tests.plainhost.spec87 import SPEC87

PAN = "6212340000000001"
TRACK2 = f"{PAN}=30121010000000000"
TID, MID = "12345678", "898310048160001"


def encode(doc: dict[str, str]) -> bytes:
    return bytes(iso8583.encode(copy.deepcopy(doc), SPEC87)[0])


def decode(raw: bytes) -> dict[str, str]:
    return dict(iso8583.decode(bytearray(raw), SPEC87)[0])


def base(mti: str, stan: str, **fields: str) -> dict[str, str]:
    return {"t": mti, "11": stan, "12": "101010", "13": "0315", "41": TID, "42": MID, **fields}


def sale(stan: str, amount: int, **fields: str) -> dict[str, str]:
    return base(
        "0200", stan, **{"3": "000000", "4": f"{amount:012d}", "22": "021", "25": "00",
                         "35": TRACK2, "49": "156", **fields},
    )  # fmt: skip


def void(stan: str, amount: int, rrn: str) -> dict[str, str]:
    return base("0200", stan, **{"3": "200000", "4": f"{amount:012d}", "25": "00", "37": rrn,
                                 "49": "156", "60": "23000001", "61": "000001000001"})  # fmt: skip


def refund(stan: str, amount: int, rrn: str) -> dict[str, str]:
    return base("0220", stan, **{"3": "200000", "4": f"{amount:012d}", "22": "012", "25": "00",
                                 "2": PAN, "37": rrn, "49": "156"})  # fmt: skip


def reversal(original: dict[str, str], mti: str = "0400") -> dict[str, str]:
    keep = ("3", "4", "11", "12", "13", "22", "25", "41", "42", "49")
    return {"t": mti, **{k: original[k] for k in keep if k in original}, "39": "98"}


Session = Callable[[dict[str, str]], Awaitable[dict[str, str]]]


def run(test: Callable[[PlainHost, Session], Awaitable[None]], **host_args: object) -> None:
    async def go() -> None:
        async with PlainHost(**host_args) as host:  # type: ignore[arg-type]
            reader, writer = await asyncio.open_connection("127.0.0.1", host.port)

            async def send(doc: dict[str, str]) -> dict[str, str]:
                raw = encode(doc)
                writer.write(len(raw).to_bytes(2, "big") + raw)
                await writer.drain()
                length = int.from_bytes(await reader.readexactly(2), "big")
                return decode(await reader.readexactly(length))

            try:
                await test(host, send)
            finally:
                writer.close()

    asyncio.run(go())


def test_sign_on_and_echo_are_answered_00() -> None:
    async def t(host: PlainHost, send: Session) -> None:
        signon = await send(base("0800", "000001", **{"60": "00000001003", "63": "01 "}))
        assert (signon["t"], signon["39"], signon["11"], signon["41"]) == (
            "0810",
            "00",
            "000001",
            TID,
        )
        echo = await send(base("0820", "000002", **{"60": "00000001301"}))
        assert (echo["t"], echo["39"]) == ("0830", "00")
        assert host.ledger.moves == []

    run(t)


def test_a_sale_holds_its_amount_once_and_answers_rrn_and_auth_code() -> None:
    async def t(host: PlainHost, send: Session) -> None:
        answer = await send(sale("000001", 12_345))
        assert answer["t"] == "0210" and answer["39"] == "00"
        assert len(answer["37"]) == 12 and len(answer["38"]) == 6
        assert (answer["4"], answer["11"], answer["41"]) == ("000000012345", "000001", TID)
        assert "35" not in answer and "2" not in answer  # no card data back
        assert host.ledger.held(PAN) == 12_345
        assert host.ledger.available(PAN) == 50_000 - 12_345
        assert host.ledger.moves == [("hold", PAN, 12_345)]

    run(t, balances={PAN: 50_000})


def test_a_sale_beyond_the_balance_is_declined_51_and_moves_nothing() -> None:
    async def t(host: PlainHost, send: Session) -> None:
        assert (await send(sale("000001", 40_000)))["39"] == "00"
        declined = await send(sale("000002", 10_001))
        assert declined["39"] == "51" and "38" not in declined
        assert host.ledger.moves == [("hold", PAN, 40_000)]

    run(t, balances={PAN: 50_000})


def test_a_card_told_to_fail_its_pin_is_declined_55() -> None:
    async def t(host: PlainHost, send: Session) -> None:
        answer = await send(sale("000001", 100, **{"52": "0123456789ABCDEF", "26": "12"}))
        assert answer["39"] == "55"
        assert (await send(sale("000002", 100)))["39"] == "00"  # no PIN: not a PIN failure

    run(t, wrong_pin=frozenset({PAN}))


def test_an_unknown_card_without_a_default_account_is_14() -> None:
    async def t(host: PlainHost, send: Session) -> None:
        assert (await send(sale("000001", 100)))["39"] == "14"

    run(t, default_balance_minor=None)


def test_a_void_releases_the_sale_once() -> None:
    async def t(host: PlainHost, send: Session) -> None:
        rrn = (await send(sale("000001", 5_000)))["37"]
        answer = await send(void("000002", 5_000, rrn))
        assert (answer["t"], answer["39"]) == ("0210", "00")
        assert answer["37"] != rrn and len(answer["38"]) == 6
        assert host.ledger.held(PAN) == 0 and host.ledger.available(PAN) == 50_000
        assert (await send(void("000003", 5_000, rrn)))["39"] == "12"  # voided already
        assert host.ledger.moves == [("hold", PAN, 5_000), ("release", PAN, 5_000)]

    run(t, balances={PAN: 50_000})


def test_a_void_of_another_amount_or_an_unknown_sale_moves_nothing() -> None:
    async def t(host: PlainHost, send: Session) -> None:
        rrn = (await send(sale("000001", 5_000)))["37"]
        assert (await send(void("000002", 4_999, rrn)))["39"] == "64"
        assert (await send(void("000003", 5_000, "999999999999")))["39"] == "25"
        assert host.ledger.moves == [("hold", PAN, 5_000)]

    run(t, balances={PAN: 50_000})


def test_a_refund_credits_the_card_up_to_the_sale() -> None:
    async def t(host: PlainHost, send: Session) -> None:
        rrn = (await send(sale("000001", 5_000)))["37"]
        answer = await send(refund("000002", 3_000, rrn))
        assert (answer["t"], answer["39"]) == ("0230", "00")
        assert (await send(refund("000003", 2_001, rrn)))["39"] == "64"  # only 2,000 left
        assert (await send(refund("000004", 2_000, rrn)))["39"] == "00"
        assert host.ledger.posted[PAN] == 50_000 + 5_000
        assert host.ledger.moves == [
            ("hold", PAN, 5_000),
            ("credit", PAN, 3_000),
            ("credit", PAN, 2_000),
        ]

    run(t, balances={PAN: 50_000})


def test_a_reversal_releases_the_sale_and_its_repeat_changes_nothing() -> None:
    async def t(host: PlainHost, send: Session) -> None:
        original = sale("000001", 7_000)
        assert (await send(original))["39"] == "00"
        first = await send(reversal(original))
        assert (first["t"], first["39"], first["11"]) == ("0410", "00", "000001")
        repeat = await send(reversal(original, "0401"))
        assert (repeat["t"], repeat["39"]) == ("0410", "00")
        assert host.ledger.moves == [("hold", PAN, 7_000), ("release", PAN, 7_000)]
        assert host.ledger.available(PAN) == 50_000

    run(t, balances={PAN: 50_000})


def test_a_reversal_is_matched_by_terminal_trace_and_date() -> None:
    async def t(host: PlainHost, send: Session) -> None:
        original = sale("000001", 7_000)
        await send(original)
        other_day = {**reversal(original), "13": "0316"}
        assert (await send(other_day))["39"] == "00"  # acknowledged: nothing of its own
        other_amount = {**reversal(original), "4": "000000006999"}
        assert (await send(other_amount))["39"] == "25"
        assert host.ledger.moves == [("hold", PAN, 7_000)]

    run(t, balances={PAN: 50_000})


def test_a_reversal_before_its_original_makes_the_late_original_decline() -> None:
    async def t(host: PlainHost, send: Session) -> None:
        original = sale("000005", 1_000)
        assert (await send(reversal(original)))["39"] == "00"
        assert (await send(original))["39"] == "12"
        assert host.ledger.moves == []

    run(t)


def test_reversals_of_a_void_and_of_a_refund_undo_them() -> None:
    async def t(host: PlainHost, send: Session) -> None:
        rrn = (await send(sale("000001", 5_000)))["37"]
        v = void("000002", 5_000, rrn)
        await send(v)
        assert (await send(reversal(v)))["39"] == "00"
        assert host.ledger.held(PAN) == 5_000  # the sale stands again
        r = refund("000003", 1_000, rrn)
        await send(r)
        assert (await send(reversal(r)))["39"] == "00"
        assert host.ledger.posted[PAN] == 50_000
        assert host.ledger.moves[-2:] == [("credit", PAN, 1_000), ("debit", PAN, 1_000)]

    run(t, balances={PAN: 50_000})


def test_a_duplicate_gets_the_stored_answer_and_moves_nothing() -> None:
    async def t(host: PlainHost, send: Session) -> None:
        first = await send(sale("000001", 2_000))
        again = await send(sale("000001", 2_000))
        assert again == first
        changed = await send(sale("000001", 2_001))
        assert changed["39"] == "94"
        assert host.ledger.moves == [("hold", PAN, 2_000)]

    run(t, balances={PAN: 50_000})


def test_format_errors_are_answered_30_with_what_decoded() -> None:
    async def t(host: PlainHost, send: Session) -> None:
        raw = encode(sale("000009", 100))
        cut = raw[:-5]
        answer = host.answer(cut)
        assert answer is not None
        doc = decode(answer)
        assert (doc["t"], doc["39"], doc["11"], doc["41"]) == ("0210", "30", "000009", TID)
        letters = sale("000010", 100)
        letters["4"] = "00000000012A"
        assert (await send(letters))["39"] == "30"
        assert host.ledger.moves == []

    run(t)


@pytest.mark.parametrize(
    "frame",
    [
        b"\x00\x05hello",  # shorter than an MTI and a bitmap
        b"\xff\xff",  # longer than any message
        b"\x00\x1a" + b"0210" + b"0" * 22,  # a response, not a request
        b"\x00\x18" + b"\x00\x01\x02\x03" + bytes(20),  # no MTI at all
    ],
)
def test_frames_that_are_no_request_close_the_link_and_the_host_serves_on(frame: bytes) -> None:
    async def go() -> None:
        async with PlainHost() as host:
            reader, writer = await asyncio.open_connection("127.0.0.1", host.port)
            writer.write(frame)
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, no answer
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", host.port)
            raw = encode(base("0820", "000001"))
            writer.write(len(raw).to_bytes(2, "big") + raw)
            length = int.from_bytes(await reader.readexactly(2), "big")
            assert decode(await reader.readexactly(length))["39"] == "00"
            writer.close()

    asyncio.run(go())


def test_the_wire_is_ascii_1987() -> None:
    raw = encode(sale("000001", 12_345))
    assert raw[:4] == b"0200"
    assert raw[4:20] == b"3038048020C08000"  # fields 3 4 11 12 13 22 25 35 41 42 49
    assert b"34" + TRACK2.encode() in raw  # LL prefix "34", track 2 with its "="
    assert b"000000012345" in raw
