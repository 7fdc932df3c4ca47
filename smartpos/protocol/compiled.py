"""The message layout of :mod:`smartpos.protocol.spec` compiled into a fast path for
well-formed messages; pyiso8583 stays the codec of record.

pyiso8583 interprets the spec dictionary field by field on every call: ~90 µs to decode and
~80 µs to encode a purchase here, about a third of the host's CPU per purchase (measured in
docs/benchmarks.md). The functions below read the same SPEC once, at import, and then do
the same work as straight-line code (~15 µs each way).

They only ever answer for messages they are sure about. Anything unusual — a field or bitmap
bit outside the spec, a secondary bitmap, a bad length prefix, a missing pad nibble,
non-ASCII text, non-hex data, a wrong length, trailing bytes — returns ``None`` and the caller
hands the message to pyiso8583, which accepts it or raises its precise error. So errors are
always pyiso8583's, and for every message the fast path does answer, the answer is
pyiso8583's too: tests/protocol/test_compiled.py checks both on generated and mutated
messages.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

from smartpos.protocol.spec import SPEC, FieldSpec

__all__ = ["decode", "encode"]

_NIBBLES, _BINARY, _TEXT = 0, 1, 2


@dataclass(frozen=True, slots=True)
class _Field:
    key: str
    bit: int  # mask in the 64-bit primary bitmap
    kind: int
    len_type: int  # length prefix bytes (BCD); 0 = fixed length
    max_len: int  # digits for _NIBBLES, bytes otherwise
    left_pad: str
    right_pad: str

    @property
    def fixed_bytes(self) -> int:
        return (self.max_len + 1) // 2 if self.kind == _NIBBLES else self.max_len


def _compile(key: str, spec: FieldSpec) -> _Field:
    number = int(key)
    nibbles = spec.get("len_count", "bytes") == "nibbles"
    if spec["data_enc"] == "b":
        kind = _NIBBLES if nibbles else _BINARY
    elif spec["data_enc"] == "ascii" and not nibbles:
        kind = _TEXT
    else:  # pragma: no cover - the spec has no such field
        raise ValueError(f"field {key}: layout not supported by the fast path")
    if spec["len_type"] and spec["len_enc"] != "bcd":  # pragma: no cover
        raise ValueError(f"field {key}: only BCD length prefixes are compiled")
    return _Field(
        key,
        1 << (64 - number),
        kind,
        spec["len_type"],
        spec["max_len"],
        spec.get("left_pad", "")[:1],
        spec.get("right_pad", "")[:1],
    )


def _check_frame_spec() -> None:
    # The fast path hard-codes these three; fail at import if the spec ever changes them.
    assert SPEC["h"]["max_len"] == 0, "no message header"
    assert SPEC["t"]["data_enc"] == "b" and SPEC["p"]["data_enc"] == "b", "binary MTI/bitmap"


_check_frame_spec()
_FIELDS = tuple(_compile(k, SPEC[k]) for k in sorted((k for k in SPEC if k.isdigit()), key=int))
_FIELDS = tuple(f for f in _FIELDS if f.key != "1")  # secondary bitmap: always the slow path
_BY_KEY = {f.key: f for f in _FIELDS}
_KNOWN_BITS = 0
for _f in _FIELDS:
    _KNOWN_BITS |= _f.bit


def decode(raw: bytes) -> dict[str, str] | None:
    """The decoded fields of ``raw`` as pyiso8583 would return them, or None when the fast
    path is not sure (the caller then asks pyiso8583)."""
    end = len(raw)
    if end < 10:
        return None
    bitmap = int.from_bytes(raw[2:10], "big")
    if bitmap & ~_KNOWN_BITS:
        return None
    doc = {"t": raw[:2].hex().upper(), "p": raw[2:10].hex().upper()}
    idx = 10
    for f in _FIELDS:
        if not bitmap & f.bit:
            continue
        if f.len_type:
            prefix = raw[idx : idx + f.len_type].hex()
            if len(prefix) != 2 * f.len_type or not prefix.isdigit():
                return None
            length = int(prefix)
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
                    value = data.decode("ascii")
                except UnicodeDecodeError:
                    return None
        doc[f.key] = value
        idx += size
    if idx != end:
        return None
    return doc


def encode(doc: dict[str, str]) -> bytes | None:
    """``doc`` (MTI in ``"t"``, no bitmap) encoded as pyiso8583 would encode it, or None when
    the fast path is not sure (the caller then asks pyiso8583)."""
    mti = doc.get("t")
    if type(mti) is not str or len(mti) != 4:
        return None
    try:
        out = [binascii.a2b_hex(mti)]
    except ValueError:
        return None
    present = []
    for key, value in doc.items():
        f = _BY_KEY.get(key)
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
                data = value.encode("ascii")
                length = len(data)
        except ValueError:  # binascii.Error, non-ASCII text or hex: pyiso8583 decides
            return None
        if f.len_type:
            if length > f.max_len:
                return None
            body.append(binascii.a2b_hex(f"{length:0{2 * f.len_type}d}"))
        elif length != f.max_len:
            return None
        body.append(data)
        bitmap |= f.bit
    out.append(bitmap.to_bytes(8, "big"))
    out.extend(body)
    return b"".join(out)
