"""Dialects: the CUP one unchanged byte for byte, the 1987 ones as jPOS writes them, and any
dialect a profile can express encodes and decodes what it says — or says why not.

* Every frame captured in docs/protocol.md §11 decodes through the sandbox profile's codec
  exactly as pyiso8583 decodes it with the CUP spec, and encodes back to the same bytes.
* The ``iso87-plain`` and BCD 1987 dialects put the bytes jPOS's ISO87A/B packagers do.
* For random dialects (random representations and field overrides) and random messages:
  encode → decode gives the message back, the fast path agrees with pyiso8583 on valid and
  mutated bytes, and anything wrong is a ``MessageError``/``FormatError``, never a crash.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import iso8583
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from smartpos.protocol import codec, compiled
from smartpos.protocol.codec import Codec, MessageError
from smartpos.protocol.dialect import FIELD_KEYS, Dialect
from smartpos.protocol.formats import (
    Counts,
    Encoding,
    FieldType,
    FormatError,
    LengthType,
    Pad,
)
from smartpos.protocol.framing import FrameParts, Tpdu
from smartpos.protocol.profiles import PROFILES, get_profile
from smartpos.protocol.spec import SPEC
from tests.protocol.test_protocol_vectors import DOC, read_dumps

PURCHASE = {
    "t": "0200",
    "3": "000000",
    "4": "000000001234",
    "11": "000001",
    "12": "101010",
    "13": "1123",
    "22": "051",
    "23": "001",
    "25": "00",
    "35": "6212340000000001D3012101000000000",
    "41": "10000001",
    "42": "898310048160001",
    "49": "156",
    "52": "0123456789ABCDEF",
    "55": "9F2608AABBCCDDEEFF0011",
    "60": "22000001000",
}

ISO87B = Dialect.build(
    "iso87",
    {"mti": "bcd", "bitmap": "binary", "numeric": "bcd", "binary": "binary", "prefix": "bcd"},
    {
        "35": {"pad_char": "0"},
        "55": {"type": "b", "encoding": "ascii", "max": 499},
        "62": {"type": "b", "encoding": "ascii", "max": 499},
    },
)


def _without_bitmap(doc: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in doc.items() if k != "p"}


# -- the CUP dialect stays what it was --------------------------------------------------------


def test_the_cup_profiles_share_the_default_codec() -> None:
    for name in ("sandbox", "sandbox-plain", "cup-ecb", "no-mac"):
        assert get_profile(name).codec is codec.DEFAULT
    assert codec.DEFAULT.spec == SPEC


def _dumps() -> list[Any]:
    return read_dumps(DOC.read_text(encoding="utf-8"))


def test_every_captured_frame_decodes_and_encodes_identically() -> None:
    profile = get_profile("sandbox")
    dumps = _dumps()
    assert len(dumps) >= 20
    for dump in dumps:
        frame = dump.frame
        parts = profile.framing.split(frame[profile.framing.prefix_len :])
        message = dump.message()
        assert parts.message == message, dump.title
        fields = profile.codec.decode(message)
        assert fields == dict(iso8583.decode(bytearray(message), SPEC)[0]), dump.title
        assert fields == codec.decode(message), dump.title
        mac = bytes.fromhex(fields["64"]) if "64" in fields else b""

        def same_mac(_body: bytes, m: bytes = mac) -> bytes:
            return m

        again = profile.codec.encode(fields, mac=same_mac if mac else None)
        assert again == message, dump.title
        if parts.tpdu == Tpdu(profile.host_nii, profile.terminal_nii):  # a request
            assert profile.framing.request(message) == frame, dump.title
        else:  # an answer: to a request from the terminal's NII
            request = FrameParts(Tpdu(profile.host_nii, profile.terminal_nii), parts.header, b"")
            assert profile.framing.answer(request, message) == frame, dump.title


def test_cup_frames_through_the_plain_1987_codec_fail_cleanly() -> None:
    plain = get_profile("iso87-plain").codec
    for dump in _dumps():
        with pytest.raises(MessageError):
            plain.decode(dump.message())


# -- the 1987 dialects ------------------------------------------------------------------------


def test_iso87_plain_writes_what_jpos_iso87apackager_writes() -> None:
    plain = get_profile("iso87-plain").codec
    raw = plain.encode(PURCHASE)
    assert raw[:4] == b"0200"  # IFA_NUMERIC(4)
    assert raw[4:20] == b"3038068020C09210"  # IFA_BITMAP: 16 hex characters
    assert raw[20:26] == b"000000"  # F3, ASCII digits
    assert b"336212340000000001=3012101000000000" in raw  # IFA_LLNUM(37): "33", "=" kept
    assert b"0123456789ABCDEF" in raw  # F52 IFA_BINARY(8): 16 hex characters
    assert b"0229F2608AABBCCDDEEFF0011" in raw  # F55 LLLCHAR: "022" hex characters
    assert b"01122000001000" in raw  # F60 LLLCHAR: "011", the digits as text
    assert _without_bitmap(plain.decode(raw)) == PURCHASE


def test_iso87_bcd_writes_what_jpos_iso87bpackager_writes() -> None:
    bcd = Codec(ISO87B)
    raw = bcd.encode(PURCHASE)
    assert raw[:10] == bytes.fromhex("0200 3038068020C09210")  # BCD MTI, binary bitmap
    assert bytes.fromhex("33 6212340000000001D3012101000000000" + "0") in raw  # pad 0 right
    assert bytes.fromhex("0051") in raw  # F22 n3: a leading 0 nibble
    assert bytes.fromhex("0123456789ABCDEF") in raw  # F52 IFB_BINARY(8): raw
    assert bytes.fromhex("0022") + b"9F2608AABBCCDDEEFF0011" in raw  # F55: BCD "022", text
    assert bytes.fromhex("0011") + b"22000001000" in raw  # F60 IFB_LLLCHAR
    assert _without_bitmap(bcd.decode(raw)) == PURCHASE


def test_the_mti_of_an_undecodable_message() -> None:
    plain, bcd = get_profile("iso87-plain").codec, Codec(ISO87B)
    assert plain.mti_of(b"0200garbage") == "0200" and plain.mti_of(b"\xff\x00") == "\ufffd\x00"
    assert bcd.mti_of(b"\x02\x00junk") == codec.DEFAULT.mti_of(b"\x02\x00") == "0200"


def test_a_mac_as_hex_text_covers_everything_before_it() -> None:
    plain = get_profile("iso87-plain").codec
    raw = plain.encode(PURCHASE, mac=lambda data: data[-8:])
    body, mac = plain.mac_input(raw)
    assert raw[-16:] == mac.hex().upper().encode() and mac == body[-8:]
    assert plain.decode(raw)["64"] == mac.hex().upper()
    with pytest.raises(MessageError, match="MAC is not hex"):
        plain.mac_input(body + b"XYZXYZXYZXYZXYZX")


@pytest.mark.parametrize(
    ("mutate", "field", "reason"),
    [
        (lambda raw: raw.replace(b"=", b"D"), None, None),  # a D separator is accepted too
        (lambda raw: raw.replace(b"9F2608", b"9f2608"), None, None),  # lower-case hex
        (lambda raw: raw.replace(b"9F2608", b"9G2608"), "55", "non-hex"),
        (lambda raw: raw.replace(b"000000001234", b"00000000123A"), "4", "non-digits"),
        (lambda raw: raw[:4] + raw[4:20].lower() + raw[20:], None, None),
        (lambda raw: raw[:4] + b"3038068020C0921 " + raw[20:], "p", None),
        (lambda raw: b"02A0" + raw[4:], "t", "4 digits"),
        (lambda raw: raw + b"0", None, "Extra data"),
    ],
)
def test_iso87_plain_decoding_checks_what_pyiso8583_does_not(
    mutate: Any, field: str | None, reason: str | None
) -> None:
    plain = get_profile("iso87-plain").codec
    raw = mutate(plain.encode(PURCHASE))
    if reason is None and field is None:
        assert _without_bitmap(plain.decode(raw)) == PURCHASE
        return
    with pytest.raises(MessageError) as failed:
        plain.decode(raw)
    if field is not None:
        assert failed.value.field == field
    if reason is not None:
        assert reason in str(failed.value)


def test_bytes_as_hex_text_refuse_what_is_not_hex_when_encoding() -> None:
    plain = get_profile("iso87-plain").codec
    with pytest.raises(MessageError, match="non-hex") as failed:
        plain.encode({**PURCHASE, "55": "9F26ZZ"})
    assert failed.value.field == "55"
    with pytest.raises(MessageError, match="odd-length"):
        plain.encode({**PURCHASE, "52": "0123456789ABCDE"})


def test_an_ebcdic_dialect_round_trips() -> None:
    ebcdic = Codec(
        Dialect.build(
            "iso87",
            {"mti": "ebcdic", "bitmap": "ebcdic", "numeric": "ebcdic", "text": "ebcdic",
             "binary": "binary", "prefix": "ebcdic"},
            {"55": {"type": "b", "max": 255}},  # raw bytes: the dialect's "binary"
        )
    )  # fmt: skip
    raw = ebcdic.encode(PURCHASE)
    assert raw[:4] == "0200".encode("cp500") == b"\xf0\xf2\xf0\xf0"
    assert _without_bitmap(ebcdic.decode(raw)) == PURCHASE


def test_every_built_in_dialect_is_compiled() -> None:
    for profile in PROFILES.values():
        fast = profile.codec._fast_decode  # the fast path, not the stand-in
        assert fast(profile.codec.encode({"t": "0800", "11": "000001"})) is not None


# -- any dialect a profile can express --------------------------------------------------------

_ENCODINGS = {
    FieldType.N: [Encoding.BCD, Encoding.ASCII, Encoding.EBCDIC],
    FieldType.Z: [Encoding.BCD, Encoding.ASCII, Encoding.EBCDIC],
    FieldType.AN: [Encoding.ASCII, Encoding.EBCDIC],
    FieldType.ANS: [Encoding.ASCII, Encoding.EBCDIC],
    FieldType.B: [Encoding.BINARY, Encoding.ASCII],
}


@st.composite
def field_tables(draw: st.DrawFn) -> dict[str, Any]:
    """A whole, valid field definition as a profile file writes it."""
    t = draw(st.sampled_from(list(FieldType)))
    enc = draw(st.sampled_from(_ENCODINGS[t]))
    length = draw(st.sampled_from(list(LengthType)))
    bcd = t in (FieldType.N, FieldType.Z) and enc == Encoding.BCD
    hex_text = t == FieldType.B and enc == Encoding.ASCII
    table: dict[str, Any] = {"type": str(t), "encoding": str(enc), "length": str(length)}
    if length == LengthType.FIXED:
        table["max"] = draw(st.integers(1, 24))
    else:
        limit = 99 if length == LengthType.LLVAR else 999
        table["max"] = draw(st.integers(1, min(limit // 2 if hex_text else limit, 40)))
        table["prefix"] = str(draw(st.sampled_from(list(Encoding))))
        if bcd or hex_text:
            table["counts"] = str(Counts.DIGITS)
        elif t in (FieldType.N, FieldType.Z):
            table["counts"] = str(draw(st.sampled_from(list(Counts))))
        else:
            table["counts"] = str(Counts.BYTES)
    if bcd:
        table["pad"] = str(draw(st.sampled_from(list(Pad))))
        table["pad_char"] = draw(st.sampled_from(["0", "F"]))
    return table


@st.composite
def dialects(draw: st.DrawFn) -> Dialect:
    message: dict[str, str] = {}
    for key, options in (
        ("mti", ["bcd", "ascii", "ebcdic"]),
        ("bitmap", ["binary", "ascii", "ebcdic"]),
        ("numeric", ["bcd", "ascii", "ebcdic"]),
        ("text", ["ascii", "ebcdic"]),
        ("binary", ["binary", "ascii"]),
        ("prefix", ["bcd", "ascii", "binary", "ebcdic"]),
    ):
        if draw(st.booleans()):
            message[key] = draw(st.sampled_from(options))
    numbers = draw(st.lists(st.integers(2, 64), unique=True, max_size=6))
    overrides = {str(n): draw(field_tables()) for n in numbers}
    try:
        return Dialect.build(draw(st.sampled_from(["cup", "iso87"])), message, overrides)
    except FormatError:  # e.g. 512 bytes of field 62 as hex text: beyond LLL
        reject()


def _value(fmt: Any, draw: st.DrawFn) -> str:
    size = fmt.max
    lo = size if fmt.length == LengthType.FIXED else 0
    if fmt.type == FieldType.N:  # at least a digit: an empty numeric is a format error
        lo = max(lo, 1)
        return draw(st.text("0123456789", min_size=lo, max_size=size))
    if fmt.type == FieldType.Z:
        return draw(st.text("0123456789D", min_size=lo, max_size=size))
    if fmt.type == FieldType.B:
        return draw(st.binary(min_size=lo, max_size=size)).hex().upper()
    printable = st.characters(min_codepoint=32, max_codepoint=126)
    return draw(st.text(printable, min_size=lo, max_size=size))


@st.composite
def messages(draw: st.DrawFn) -> tuple[Dialect, dict[str, str]]:
    dialect = draw(dialects())
    formats = dialect.fields
    # Field 64 is the codec's to place (encode(..., mac=...)), never the caller's.
    candidates = sorted((k for k in formats if k != "64"), key=int)
    keys = draw(st.lists(st.sampled_from(candidates), unique=True, max_size=12))
    doc = {"t": draw(st.sampled_from(["0200", "0810", "0400"]))}
    for key in keys:
        doc[key] = _value(formats[key], draw)
    return dialect, doc


_SLOW = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@given(messages())
@_SLOW
def test_any_dialect_round_trips_any_valid_message(case: tuple[Dialect, dict[str, str]]) -> None:
    dialect, doc = case
    c = Codec(dialect)
    raw = c.encode(doc)
    assert _without_bitmap(c.decode(raw)) == doc
    assert c._fast_decode(raw) is not None  # valid messages take the fast path


def _wire(c: Codec, doc: dict[str, str]) -> dict[str, str]:
    """``doc`` as pyiso8583 sees it (track 2 separators as the dialect writes them)."""
    out = dict(doc)
    c._to_wire(out)
    return out


@given(messages(), st.data())
@_SLOW
def test_the_fast_path_of_any_dialect_gives_pyiso8583s_answer(
    case: tuple[Dialect, dict[str, str]], data: st.DataObject
) -> None:
    dialect, doc = case
    spec = dialect.pyiso8583_spec()
    fast_decode, fast_encode = compiled.compile_spec(spec)
    wire = _wire(Codec(dialect), doc)
    raw = fast_encode(wire)
    assert raw is not None
    assert raw == bytes(iso8583.encode(copy.deepcopy(wire), spec)[0])
    mutated = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 3))):
        choice = data.draw(st.integers(0, 2))
        if choice == 0 and mutated:
            i = data.draw(st.integers(0, len(mutated) - 1))
            mutated[i] = data.draw(st.integers(0, 255))
        elif choice == 1:
            mutated = mutated[: data.draw(st.integers(0, len(mutated)))]
        else:
            mutated += data.draw(st.binary(min_size=1, max_size=3))
    fast = fast_decode(bytes(mutated))
    if fast is not None:
        assert fast == dict(iso8583.decode(bytearray(mutated), spec)[0])
    with contextlib.suppress(MessageError):  # and nothing else
        Codec(dialect).decode(bytes(mutated))


_JUNK = st.one_of(
    st.sampled_from(["n", "an", "ans", "b", "z", "x", "bcd", "ascii", "binary", "ebcdic"]),
    st.sampled_from(["fixed", "LLVAR", "LLLVAR", "LL", "digits", "bytes", "left", "right"]),
    st.sampled_from(["0", "F", "D", ""]),
    st.integers(-2, 1200),
    st.booleans(),
    st.none(),
)


@given(
    st.dictionaries(st.sampled_from(["2", "3", "35", "41", "52", "64", "7", "1", "65", "x"]),
                    st.dictionaries(st.sampled_from([*FIELD_KEYS, "size"]), _JUNK, max_size=6),
                    max_size=3),
    st.dictionaries(st.sampled_from(["mti", "bitmap", "numeric", "text", "binary", "prefix",
                                     "other"]), _JUNK, max_size=3),
)  # fmt: skip
@settings(max_examples=400, deadline=None)
def test_any_override_builds_a_dialect_or_names_its_fault(
    overrides: dict[str, dict[str, Any]], message: dict[str, Any]
) -> None:
    try:
        dialect = Dialect.build("cup", message, overrides)
    except FormatError as exc:
        assert exc.key.startswith(("fields.", "message."))
        return
    Codec(dialect).encode({"t": "0800", "11": "000001"}) if "11" in dialect.fields else None


@pytest.mark.parametrize(
    ("overrides", "key", "text"),
    [
        ({"41": {"encoding": "bcd"}}, "fields.41.encoding", "cannot carry letters"),
        ({"3": {"prefix": "ascii"}}, "fields.3.prefix", "fixed-length field has no length"),
        ({"3": {"counts": "digits"}}, "fields.3.counts", "fixed-length"),
        ({"2": {"counts": "bytes"}}, "fields.2.counts", "BCD length counts digits"),
        ({"41": {"pad": "left"}}, "fields.41.pad", "only BCD digits are padded"),
        ({"2": {"pad_char": "7"}}, "fields.2.pad_char", "pad nibble"),
        ({"2": {"max": 100}}, "fields.2.max", "LLVAR prefix states at most 99"),
        ({"62": {"encoding": "ascii"}}, "fields.62.max", "1024 hex digits"),
        ({"62": {"encoding": "ascii", "counts": "bytes"}}, "fields.62.counts", "hex digits"),
        ({"52": {"encoding": "bcd"}}, "fields.52.encoding", "binary (raw bytes) or ascii"),
        ({"4": {"encoding": "binary"}}, "fields.4.encoding", "bcd, ascii or ebcdic digits"),
        ({"7": {"type": "n"}}, "fields.7.length", "not in the dictionary"),
        ({"65": {"type": "n"}}, "fields.65", "primary bitmap"),
        ({"1": {"type": "n"}}, "fields.1", "fields 2–64 only"),
        ({"x": {}}, "fields.x", "named by its number"),
        ({"3": {"size": 6}}, "fields.3.size", "unknown key"),
        ({"3": {"max": "6"}}, "fields.3.max", "whole number"),
        ({"3": {"type": "numeric"}}, "fields.3.type", "is not one of"),
    ],
)
def test_a_format_that_makes_no_sense_is_named(
    overrides: dict[str, dict[str, Any]], key: str, text: str
) -> None:
    with pytest.raises(FormatError) as failed:
        Dialect.build("cup", {}, overrides)
    assert failed.value.key == key
    assert text in failed.value.message


def test_an_override_changes_only_what_it_says() -> None:
    dialect = Dialect.build("cup", {}, {"35": {"encoding": "ascii"}, "7": {
        "type": "n", "length": "fixed", "max": 10}})  # fmt: skip
    f35, f7 = dialect.fields["35"], dialect.fields["7"]
    assert (f35.type, f35.length, f35.max, f35.prefix) == ("z", "LLVAR", 37, "bcd")
    assert (f35.pad, f35.pad_char, f35.counts) == (None, "", "digits")  # no pad in ASCII
    assert (f7.encoding, f7.pad, f7.pad_char) == ("bcd", "left", "0")  # the dialect's BCD
    c = Codec(dialect)
    raw = c.encode({"t": "0200", "7": "0315101010", "35": "6212D3012"})
    assert bytes.fromhex("0315101010") + bytes.fromhex("09") + b"6212=3012" in raw
    assert c.decode(raw)["35"] == "6212D3012"
