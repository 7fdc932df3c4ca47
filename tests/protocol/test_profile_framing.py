"""Framing per profile: the default is the CUP frame byte for byte; other length prefixes,
no TPDU and other headers frame and unframe both ways, and a bad frame is a FramingError."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartpos.protocol.framing import (
    Frame,
    FrameParts,
    Framing,
    FramingError,
    LengthPrefix,
    Tpdu,
    decode_body,
    encode_frame,
)
from smartpos.protocol.profiles import get_profile

MESSAGE = bytes.fromhex("0200") + bytes(8) + b"payload"


def test_the_default_framing_is_the_cup_frame() -> None:
    profile = get_profile("sandbox")
    framing = profile.framing
    tpdu = Tpdu(profile.host_nii, profile.terminal_nii)
    assert framing.request(MESSAGE) == encode_frame(Frame(tpdu, profile.app_header, MESSAGE))
    body = framing.request(MESSAGE)[2:]
    assert framing.split(body) == FrameParts(tpdu, profile.app_header, MESSAGE)
    old = decode_body(body, profile.header_len)
    answer = framing.answer(framing.split(body), b"ANSWER")
    assert answer == encode_frame(Frame(old.tpdu.swapped(), old.header, b"ANSWER"))


@given(st.integers(0, 4096))
def test_length_prefixes_state_the_length(length: int) -> None:
    for prefix in LengthPrefix:
        packed = prefix.pack(length)
        assert len(packed) == prefix.width
        assert prefix.unpack(packed) == length
    assert LengthPrefix.ASCII_4.pack(length) == f"{length:04d}".encode()
    assert LengthPrefix.BCD_2.pack(length) == bytes.fromhex(f"{length:04d}")


@pytest.mark.parametrize(
    ("prefix", "raw"), [(LengthPrefix.ASCII_4, b"00x1"), (LengthPrefix.BCD_2, b"\x0a\x00")]
)
def test_a_length_that_is_no_number_is_a_framing_error(prefix: LengthPrefix, raw: bytes) -> None:
    with pytest.raises(FramingError, match="is not 4"):
        prefix.unpack(raw)


def test_no_tpdu_and_a_header_of_its_own() -> None:
    framing = Framing(LengthPrefix.ASCII_4, None, b"ISO")
    frame = framing.request(MESSAGE)
    assert frame == f"{3 + len(MESSAGE):04d}".encode() + b"ISO" + MESSAGE
    parts = framing.split(frame[4:])
    assert parts == FrameParts(None, b"ISO", MESSAGE)
    assert framing.answer(parts, b"0210") == b"0007ISO0210"
    with pytest.raises(FramingError, match="too short"):
        framing.split(b"ISO" + bytes(9))


def test_a_frame_beyond_the_limit_is_refused_both_ways() -> None:
    framing = Framing(LengthPrefix.BINARY_4, None, b"")
    with pytest.raises(FramingError, match="exceeds 4096"):
        framing.request(bytes(4097))

    async def read(raw: bytes) -> bytes:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        return await framing.read_body(reader)

    assert asyncio.run(read(b"\x00\x00\x00\x0a" + bytes(10))) == bytes(10)
    with pytest.raises(FramingError, match=r"frame length 4097 outside 10\.\.4096"):
        asyncio.run(read(b"\x00\x00\x10\x01"))
    with pytest.raises(FramingError, match=r"frame length 9 outside"):
        asyncio.run(read(b"\x00\x00\x00\x09" + bytes(9)))


def test_a_tpdu_that_does_not_start_60_is_refused() -> None:
    framing = get_profile("cup-ecb").framing
    with pytest.raises(FramingError, match="bad TPDU"):
        framing.split(bytes.fromhex("7000010000") + MESSAGE)
