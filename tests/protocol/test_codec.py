"""The codec and framing: round trips, and every malformed input is a clear error."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartpos.protocol import codec
from smartpos.protocol.codec import MessageError
from smartpos.protocol.framing import (
    MAX_FRAME_BYTES,
    Frame,
    FramingError,
    Tpdu,
    decode_body,
    encode_frame,
    read_body,
)
from smartpos.protocol.messages import (
    F60,
    F61,
    SettlementTotals,
    SettleResult,
    TotalsGroup,
    TxnType,
    balance_f54,
    classify,
    parse_f54,
)

PURCHASE = {
    "t": "0200",
    "2": "6212340000000001",
    "3": "000000",
    "4": "000000001234",
    "11": "000001",
    "12": "101010",
    "13": "1123",
    "22": "021",
    "25": "00",
    "41": "10000001",
    "42": "898310048160001",
    "49": "156",
    "52": "0123456789ABCDEF",
    "60": "22000001000",
}


def test_purchase_round_trip_and_bcd_layout() -> None:
    raw = codec.encode(PURCHASE)
    assert raw[:2] == b"\x02\x00"  # BCD MTI
    assert b"\x16\x62\x12\x34" in raw  # LLVAR PAN: BCD length 16 then BCD digits
    decoded = codec.decode(raw)
    assert {k: v for k, v in decoded.items() if k != "p"} == PURCHASE
    assert classify(decoded) == TxnType.PURCHASE


def test_mac_covers_everything_before_it() -> None:
    raw = codec.encode(PURCHASE, mac=lambda data: data[-8:])
    body, mac = codec.mac_input(raw)
    assert mac == body[-8:]
    assert codec.decode(raw)["64"] == mac.hex().upper()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"\x02\x00", "p"),  # no bitmap
        (b"\x02\x00" + bytes.fromhex("8000000000000000") + bytes(8), "1"),  # secondary bitmap
        (b"\x02\x00" + bytes.fromhex("0000000000000002") + b"\x01", "63"),  # field 63 overrun
        (b"\x02\x00" + bytes.fromhex("2000000000000000") + b"\x00\x00", "3"),  # truncated 3
        (codec.encode(PURCHASE) + b"\x00", None),  # trailing byte
        (b"\x02\x00" + bytes.fromhex("0000000000000000") + b"", None),
    ],
)
def test_malformed_messages_name_the_field(raw: bytes, field: str | None) -> None:
    with pytest.raises(MessageError) as exc:
        fields = codec.decode(raw)
        classify(fields)
    if field:
        assert exc.value.field == field


def test_non_bcd_digits_are_a_format_error() -> None:
    raw = bytearray(codec.encode(PURCHASE))
    # F3 starts right after MTI (2) + bitmap (8) + PAN (1 + 8): make it 0xAB.
    raw[19] = 0xAB
    with pytest.raises(MessageError) as exc:
        codec.decode(bytes(raw))
    assert exc.value.field == "3"


def test_unsupported_transaction_is_code_12() -> None:
    with pytest.raises(MessageError) as exc:
        classify({**PURCHASE, "3": "990000"})
    assert exc.value.response_code == "12"


def test_missing_mandatory_field_is_format_error() -> None:
    fields = dict(PURCHASE)
    del fields["60"]
    with pytest.raises(MessageError):
        classify(fields)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_decode_never_raises_anything_but_message_error(data: bytes) -> None:
    try:
        fields = codec.decode(data)
    except MessageError:
        return
    assert len(fields["t"]) == 4


@settings(max_examples=200, deadline=None)
@given(
    amount=st.integers(min_value=1, max_value=999_999_999_999),
    stan=st.integers(min_value=1, max_value=999_999),
    pan=st.from_regex(r"\A[0-9]{12,19}\Z"),
)
def test_round_trip_property(amount: int, stan: int, pan: str) -> None:
    fields = {**PURCHASE, "2": pan, "4": f"{amount:012d}", "11": f"{stan:06d}"}
    decoded = codec.decode(codec.encode(fields))
    assert decoded["2"] == pan and int(decoded["4"]) == amount


def test_frame_round_trip_and_swapped_tpdu() -> None:
    frame = Frame(Tpdu(1, 0), bytes.fromhex("603100000000"), codec.encode(PURCHASE))
    wire = encode_frame(frame)
    assert wire[:2] == len(wire[2:]).to_bytes(2, "big")
    assert wire[2:7] == bytes.fromhex("6000010000")
    back = decode_body(wire[2:], 6)
    assert back == frame
    assert back.tpdu.swapped() == Tpdu(0, 1)


@pytest.mark.parametrize(
    "body", [b"", b"\x60\x00", b"\x61" + bytes(20), b"\x60\x00\x01\x00\x00" + b"\x02"]
)
def test_bad_frames_are_framing_errors(body: bytes) -> None:
    with pytest.raises(FramingError):
        decode_body(body, 0)


def test_oversized_frame_is_refused_unread() -> None:
    async def go() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data((MAX_FRAME_BYTES + 1).to_bytes(2, "big"))
        with pytest.raises(FramingError):
            await read_body(reader)

    asyncio.run(go())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80), st.sampled_from([0, 6]))
def test_decode_body_fuzz(body: bytes, header_len: int) -> None:
    try:
        frame = decode_body(body, header_len)
    except FramingError:
        return
    assert len(frame.header) == header_len


def test_subfields_round_trip_and_refuse_garbage() -> None:
    assert F60.decode(F60("22", "000123", "000").encode()) == F60("22", "000123", "000")
    assert F61.decode(F61("000001", "000042", "1123").encode()).stan == "000042"
    totals = SettlementTotals(TotalsGroup(100, 1, 50, 1), TotalsGroup(0, 0, 0, 0))
    back, result = SettlementTotals.decode(totals.encode(SettleResult.BALANCED))
    assert back == totals and result == SettleResult.BALANCED
    assert parse_f54(balance_f54(-500, "156")) == -500
    for bad in (
        lambda: F60.decode("22"),
        lambda: F61.decode("x" * 12),
        lambda: SettlementTotals.decode("1" * 61),
        lambda: parse_f54("garbage"),
    ):
        with pytest.raises(MessageError):
            bad()
