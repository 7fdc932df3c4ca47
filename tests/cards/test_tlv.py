import contextlib
import inspect
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartpos.cards import CardError, decode_tlv, encode_tlv


def test_decode_known_field55() -> None:
    # ARQC, ATC, TVR
    data = bytes.fromhex("9F2608A1B2C3D4E5F607189F3602002A95050000008000")
    assert decode_tlv(data) == {
        "9F26": bytes.fromhex("A1B2C3D4E5F60718"),
        "9F36": bytes.fromhex("002A"),
        "95": bytes.fromhex("0000008000"),
    }


def test_decode_flattens_templates_and_uppercases_tags() -> None:
    data = bytes.fromhex("9C0101E0055F2A0201569F0200")
    assert decode_tlv(data) == {"9C": b"\x01", "5F2A": b"\x01\x56", "9F02": b""}


def test_decode_long_form_length() -> None:
    value = bytes(range(200))
    assert decode_tlv(bytes.fromhex("9F1081C8") + value) == {"9F10": value}


def test_encode_known() -> None:
    assert encode_tlv({"9f26": bytes.fromhex("A1B2C3D4E5F60718"), "95": b"\x00" * 5}) == (
        bytes.fromhex("9F2608A1B2C3D4E5F6071895050000000000")
    )
    assert encode_tlv({"9F10": bytes(200)}) == bytes.fromhex("9F1081C8") + bytes(200)
    assert encode_tlv({}) == b""


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("9F"),  # tag needs a second byte
        bytes.fromhex("9F26"),  # no length
        bytes.fromhex("9F2608A1B2"),  # value shorter than its length
        bytes.fromhex("9F1082"),  # long-form length cut short
        bytes.fromhex("E0039F2601"),  # template shorter than its content
        bytes.fromhex("9C01019C0102"),  # repeated tag
        bytes.fromhex("9C0101E0039C0102"),  # repeated tag inside a template
        bytes(1000),  # over the field 55 limit
    ],
)
def test_decode_rejects_malformed(data: bytes) -> None:
    with pytest.raises(CardError, match="ICC data"):
        decode_tlv(data)


def test_decode_rejects_non_bytes() -> None:
    with pytest.raises(CardError):
        decode_tlv("9C0101")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "tags",
    [
        {"9F": b""},  # incomplete multi-byte tag
        {"9C01": b""},  # extra byte after a one-byte tag
        {"9G": b""},
        {"9 C": b""},
        {"": b""},
        {"E0": b""},  # constructed
        {"9C": "01"},
        {"9c": b"\x01", "9C": b"\x02"},
        {"9F10": bytes(1000)},
    ],
)
def test_encode_rejects(tags: dict[str, bytes]) -> None:
    with pytest.raises(CardError):
        encode_tlv(tags)


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _nested(depth: int) -> bytes:
    data = bytes.fromhex("9C0101")
    for _ in range(depth):
        data = b"\xe0" + _length(len(data)) + data
    return data


def test_deep_nesting_is_a_card_error_not_a_crash() -> None:
    data = _nested(250)
    assert len(data) <= 999
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 100)
    try:
        with pytest.raises(CardError, match="nested"):
            decode_tlv(data)
    finally:
        sys.setrecursionlimit(limit)
    assert decode_tlv(_nested(3)) == {"9C": b"\x01"}


# Primitive tags: one byte without the "more bytes" pattern, or two bytes ending the tag.
one_byte_tags = (
    st.integers(0, 255)
    .filter(lambda b: b & 0x20 == 0 and b & 0x1F != 0x1F)
    .map(lambda b: f"{b:02X}")
)
two_byte_tags = st.tuples(
    st.integers(0, 255).filter(lambda b: b & 0x20 == 0).map(lambda b: b | 0x1F),
    st.integers(0, 0x7F),
).map(lambda t: f"{t[0]:02X}{t[1]:02X}")
tag_dicts = st.dictionaries(
    # 6 x (150 + 5 bytes of tag and length) stays under the 999-byte field 55 limit.
    st.one_of(one_byte_tags, two_byte_tags),
    st.binary(max_size=150),
    max_size=6,
)


@given(tag_dicts)
def test_round_trip(tags: dict[str, bytes]) -> None:
    encoded = encode_tlv(tags)
    assert decode_tlv(encoded) == tags
    assert list(decode_tlv(encoded)) == list(tags)


@given(st.binary(max_size=1100))
def test_decode_fuzz(data: bytes) -> None:
    try:
        decoded = decode_tlv(data)
    except CardError:
        return
    assert all(isinstance(v, bytes) for v in decoded.values())


@given(st.lists(st.sampled_from([b"\x9f", b"\x26", b"\xe0", b"\x81", b"\x82", b"\x02", b"\x00"])))
def test_decode_fuzz_tlv_shaped(parts: list[bytes]) -> None:
    with contextlib.suppress(CardError):
        decode_tlv(b"".join(parts))
