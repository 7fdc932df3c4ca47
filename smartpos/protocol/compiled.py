"""A message layout compiled into a fast path for well-formed messages; pyiso8583 stays the
codec of record.

pyiso8583 interprets the spec dictionary field by field on every call: ~90 µs to decode and
~80 µs to encode a purchase here, about a third of the host's CPU per purchase (measured in
docs/benchmarks.md). :func:`compile_spec` reads a spec once and returns functions that do the
same work as straight-line code (~10 µs each way). Module-level :func:`decode` and
:func:`encode` are those of the default layout, :mod:`smartpos.protocol.spec`; every other
dialect a profile defines (ASCII or EBCDIC digits and lengths, a hex bitmap, a text MTI) gets
its own from :func:`compile_spec`.

They only ever answer for messages they are sure about. Anything unusual — a field or bitmap
bit outside the spec, a secondary bitmap, a bad length prefix, a missing pad nibble,
undecodable text, non-hex data, a wrong length, trailing bytes — returns ``None`` and the
caller hands the message to pyiso8583, which accepts it or raises its precise error. So
errors are always pyiso8583's, and for every message the fast path does answer, the answer
is pyiso8583's too: tests/protocol/test_compiled.py checks both on generated and mutated
messages, for the default layout and for generated dialects.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from smartpos.protocol.spec import SPEC

__all__ = ["Unsupported", "compile_spec", "decode", "encode"]

Decoder = Callable[[bytes], "dict[str, str] | None"]
Encoder = Callable[[dict[str, str]], "bytes | None"]

_NIBBLES, _BINARY, _TEXT = 0, 1, 2
_LEN_BCD, _LEN_BINARY, _LEN_TEXT = 0, 1, 2
_UPPER_HEX = frozenset("0123456789ABCDEF")


class Unsupported(ValueError):
    """A layout the fast path does not compile (the codec then uses pyiso8583 alone)."""


@dataclass(frozen=True, slots=True)
class _Field:
    key: str
    bit: int  # mask in the 64-bit primary bitmap
    kind: int
    codec: str  # Python codec of _TEXT data
    len_type: int  # length prefix bytes; 0 = fixed length
    len_kind: int
    len_codec: str  # Python codec of a _LEN_TEXT prefix
    max_len: int  # digits for _NIBBLES, bytes otherwise
    left_pad: str
    right_pad: str


def _compile(key: str, spec: Mapping[str, Any]) -> _Field:
    number = int(key)
    nibbles = spec.get("len_count", "bytes") == "nibbles"
    data_enc = spec["data_enc"]
    if data_enc == "b":
        kind = _NIBBLES if nibbles else _BINARY
    elif not nibbles:
        kind = _TEXT
    else:
        raise Unsupported(f"field {key}: text counted in nibbles")
    len_enc = spec["len_enc"]
    len_kind = {"bcd": _LEN_BCD, "b": _LEN_BINARY}.get(len_enc, _LEN_TEXT)
    len_type = spec["len_type"]
    if len_type:
        capacity = (
            10 ** (2 * len_type) if len_kind == _LEN_BCD
            else 256**len_type if len_kind == _LEN_BINARY
            else 10**len_type
        )  # fmt: skip
        if spec["max_len"] >= capacity:
            raise Unsupported(f"field {key}: its length prefix cannot state its maximum")
    return _Field(
        key,
        1 << (64 - number),
        kind,
        data_enc if kind == _TEXT else "",
        len_type,
        len_kind,
        len_enc if len_kind == _LEN_TEXT else "",
        spec["max_len"],
        spec.get("left_pad", "")[:1],
        spec.get("right_pad", "")[:1],
    )


def compile_spec(spec: Mapping[str, Mapping[str, Any]]) -> tuple[Decoder, Encoder]:
    """Fast ``decode`` and ``encode`` for a pyiso8583 ``spec`` (fields 2–64, no message
    header), or ``Unsupported``."""
    if spec["h"]["max_len"] != 0:
        raise Unsupported("a message header inside the ISO message")
    mti_codec = "" if spec["t"]["data_enc"] == "b" else spec["t"]["data_enc"]
    bitmap_codec = "" if spec["p"]["data_enc"] == "b" else spec["p"]["data_enc"]
    numbers = sorted((k for k in spec if k.isdigit() and k != "1"), key=int)
    if any(not 2 <= int(k) <= 64 for k in numbers):
        raise Unsupported("fields beyond the primary bitmap")
    fields = tuple(_compile(k, spec[k]) for k in numbers)
    by_key = {f.key: f for f in fields}
    known_bits = 0
    for f in fields:
        known_bits |= f.bit
    mti_len = 4 if mti_codec else 2
    head_len = mti_len + (16 if bitmap_codec else 8)

    def decode(raw: bytes) -> dict[str, str] | None:
        """The decoded fields of ``raw`` as pyiso8583 would return them, or None when the
        fast path is not sure (the caller then asks pyiso8583)."""
        end = len(raw)
        if end < head_len:
            return None
        if mti_codec:
            try:
                mti = raw[:mti_len].decode(mti_codec)
            except UnicodeDecodeError:
                return None
        else:
            mti = raw[:2].hex().upper()
        if bitmap_codec:
            try:
                p = raw[mti_len:head_len].decode(bitmap_codec)
            except UnicodeDecodeError:
                return None
            if not _UPPER_HEX.issuperset(p):
                return None
            bitmap = int(p, 16)
        else:
            p = raw[mti_len:head_len].hex().upper()
            bitmap = int.from_bytes(raw[mti_len:head_len], "big")
        if bitmap & ~known_bits:
            return None
        doc = {"t": mti, "p": p}
        idx = head_len
        for f in fields:
            if not bitmap & f.bit:
                continue
            if f.len_type:
                prefix = raw[idx : idx + f.len_type]
                if len(prefix) != f.len_type:
                    return None
                if f.len_kind == _LEN_BCD:
                    digits = prefix.hex()
                    if not digits.isdigit():
                        return None
                    length = int(digits)
                elif f.len_kind == _LEN_BINARY:
                    length = int.from_bytes(prefix, "big")
                else:
                    try:
                        text = prefix.decode(f.len_codec)
                    except UnicodeDecodeError:
                        return None
                    if not (text.isascii() and text.isdigit()):
                        return None
                    length = int(text)
                if length > f.max_len:
                    return None
                idx += f.len_type
            else:
                length = f.max_len
            if f.kind == _NIBBLES:
                size = (length + 1) // 2
                data = raw[idx : idx + size]
                if len(data) != size:
                    return None
                value = data.hex().upper()
                if length & 1:
                    if f.left_pad:
                        if value[:1] != f.left_pad:
                            return None
                        value = value[1:]
                    elif f.right_pad and value[-1:] == f.right_pad:
                        value = value[:-1]
                    else:
                        return None
            else:
                size = length
                data = raw[idx : idx + size]
                if len(data) != size:
                    return None
                if f.kind == _BINARY:
                    value = data.hex().upper()
                else:
                    try:
                        value = data.decode(f.codec)
                    except UnicodeDecodeError:
                        return None
            doc[f.key] = value
            idx += size
        if idx != end:
            return None
        return doc

    def encode(doc: dict[str, str]) -> bytes | None:
        """``doc`` (MTI in ``"t"``, no bitmap) encoded as pyiso8583 would encode it, or None
        when the fast path is not sure (the caller then asks pyiso8583)."""
        mti = doc.get("t")
        if type(mti) is not str or len(mti) != 4:
            return None
        try:
            out = [mti.encode(mti_codec) if mti_codec else binascii.a2b_hex(mti)]
        except ValueError:  # binascii.Error, UnicodeEncodeError
            return None
        if len(out[0]) != mti_len:
            return None
        present = []
        for key, value in doc.items():
            f = by_key.get(key)
            if f is None:
                if key == "t":
                    continue
                return None
            if type(value) is not str:
                return None
            present.append(f)
        present.sort(key=lambda f: -f.bit)
        bitmap = 0
        body = []
        for f in present:
            value = doc[f.key]
            try:
                if f.kind == _NIBBLES:
                    length = len(value)
                    if length & 1:
                        value = f.left_pad + value if f.left_pad else value + f.right_pad
                    data = binascii.a2b_hex(value)
                elif f.kind == _BINARY:
                    data = binascii.a2b_hex(value)
                    length = len(data)
                else:
                    data = value.encode(f.codec)
                    length = len(data)
            except ValueError:  # binascii.Error, unencodable text or hex: pyiso8583 decides
                return None
            if f.len_type:
                if length > f.max_len:
                    return None
                if f.len_kind == _LEN_BCD:
                    body.append(binascii.a2b_hex(f"{length:0{2 * f.len_type}d}"))
                elif f.len_kind == _LEN_BINARY:
                    body.append(length.to_bytes(f.len_type, "big"))
                else:
                    body.append(f"{length:0{f.len_type}d}".encode(f.len_codec))
            elif length != f.max_len:
                return None
            body.append(data)
            bitmap |= f.bit
        if bitmap_codec:
            out.append(f"{bitmap:016X}".encode(bitmap_codec))
        else:
            out.append(bitmap.to_bytes(8, "big"))
        out.extend(body)
        return b"".join(out)

    return decode, encode


decode, encode = compile_spec(SPEC)
