"""The compiled fast path gives pyiso8583's answer or none at all.

For generated messages (valid and subtly invalid: wrong lengths, odd hex, lower-case hex,
non-ASCII text, unknown keys) and for mutated encodings (flipped bytes, cut or extended
messages, random bitmaps), whenever the fast path answers, pyiso8583 gives the same answer;
and for every valid message the fast path does answer (otherwise it would be no faster).
"""

from __future__ import annotations

import copy
from typing import Any

import iso8583
from hypothesis import given, settings
from hypothesis import strategies as st

from smartpos.protocol import codec, compiled
from smartpos.protocol.spec import SPEC

FIELD_KEYS = [k for k in SPEC if k.isdigit() and k != "1"]
HEX = "0123456789ABCDEF"


def _valid_value(key: str) -> st.SearchStrategy[str]:
    spec = SPEC[key]
    fixed = spec["len_type"] == 0
    size = spec["max_len"]
    lo = size if fixed else 0
    if spec["data_enc"] == "ascii":
        return st.text(
            st.characters(min_codepoint=32, max_codepoint=126), min_size=lo, max_size=size
        )
    if spec.get("len_count") == "nibbles":
        alphabet = "0123456789D" if key == "35" else "0123456789"
        return st.text(alphabet, min_size=lo, max_size=size)
    return st.binary(min_size=lo, max_size=size).map(lambda b: b.hex().upper())


def _any_value(key: str) -> st.SearchStrategy[Any]:
    """Mostly valid, sometimes subtly wrong."""
    return st.one_of(
        _valid_value(key),
        _valid_value(key),
        _valid_value(key),
        _valid_value(key).map(str.lower),
        _valid_value(key).map(lambda v: v + "0"),
        _valid_value(key).map(lambda v: v[:-1]),
        st.text(max_size=6),
        st.integers(0, 99),
    )


mti = st.sampled_from(["0200", "0210", "0400", "0800", "0500", "02A0", "020", "0x20"])


@st.composite
def documents(draw: st.DrawFn, valid: bool) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from(FIELD_KEYS), unique=True, max_size=14))
    doc: dict[str, Any] = {"t": draw(mti) if not valid else draw(st.sampled_from(["0200", "0810"]))}
    for key in keys:
        doc[key] = draw(_valid_value(key) if valid else _any_value(key))
    if not valid and draw(st.booleans()):
        doc[draw(st.sampled_from(["1", "65", "99", "h", "p", "x"]))] = "00"
    return doc


def _slow_encode(doc: dict[str, Any]) -> bytes | None:
    try:
        return bytes(iso8583.encode(copy.deepcopy(doc), SPEC)[0])
    except (iso8583.EncodeError, TypeError, AttributeError, KeyError, ValueError):
        return None


def _slow_decode(raw: bytes) -> dict[str, str] | None:
    try:
        return dict(iso8583.decode(bytearray(raw), SPEC)[0])
    except (iso8583.DecodeError, KeyError, ValueError, IndexError, TypeError):
        return None


@given(documents(valid=True))
@settings(max_examples=300)
def test_valid_documents_take_the_fast_path_both_ways(doc: dict[str, str]) -> None:
    fast = compiled.encode(doc)
    assert fast is not None
    assert fast == _slow_encode(doc)
    decoded = compiled.decode(fast)
    assert decoded is not None
    assert decoded == _slow_decode(fast)


@given(documents(valid=False))
@settings(max_examples=500)
def test_fast_encode_answers_only_with_pyiso8583s_answer(doc: dict[str, Any]) -> None:
    fast = compiled.encode(doc)
    if fast is not None:
        assert fast == _slow_encode(doc)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(compiled.encode(draw(documents(valid=True))) or b"")
    for _ in range(draw(st.integers(1, 4))):
        choice = draw(st.integers(0, 3))
        if choice == 0 and raw:
            i = draw(st.integers(0, len(raw) - 1))
            raw[i] = draw(st.integers(0, 255))
        elif choice == 1:
            raw = raw[: draw(st.integers(0, len(raw)))]
        elif choice == 2:
            raw += draw(st.binary(min_size=1, max_size=4))
        elif len(raw) >= 10:
            raw[2:10] = draw(st.binary(min_size=8, max_size=8))
    return bytes(raw)


@given(mutated())
@settings(max_examples=800)
def test_fast_decode_answers_only_with_pyiso8583s_answer(raw: bytes) -> None:
    fast = compiled.decode(raw)
    if fast is not None:
        assert fast == _slow_decode(raw)


@given(st.binary(max_size=80))
def test_fast_decode_on_noise(raw: bytes) -> None:
    fast = compiled.decode(raw)
    if fast is not None:
        assert fast == _slow_decode(raw)


def test_codec_errors_still_come_from_pyiso8583() -> None:
    good = codec.encode({"t": "0200", "3": "000000", "11": "000001", "41": "TERM0001"})
    cut = good[:-3]
    assert compiled.decode(cut) is None
    try:
        codec.decode(cut)
    except codec.MessageError as exc:
        assert exc.field == "41"
    else:  # pragma: no cover
        raise AssertionError("a cut message decoded")
