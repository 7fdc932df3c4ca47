"""Field formats: how one ISO 8583 field travels, as data, and its pyiso8583 spec entry.

ISO 8583 defines each field abstractly — ``n6``, ``an12``, ``n..19`` with an LL length —
and leaves the wire representation to each network: the same ``n6`` is 3 bytes of BCD at a
CUP acquirer and 6 ASCII digits at a host speaking jPOS's ISO87APackager. So a field is a
:class:`FieldDef` (what the standard or the acquirer's dictionary says) resolved against a
:class:`Representation` (how this dialect writes numbers, text, bytes and lengths) into a
:class:`FieldFormat`, which a profile may then override key by key. Every combination is
checked when it is built: a format that cannot travel faithfully (BCD text, a length prefix
on a fixed field, a BCD length that counts bytes and so loses a pad nibble) is refused with
the key that is wrong, never turned into a spec pyiso8583 would mis-encode.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

PyisoSpec = dict[str, Any]

# EBCDIC as Python's codec names it: code page 500 (international). Digits, upper- and
# lower-case letters and space are the same in every EBCDIC page.
EBCDIC_CODEC = "cp500"


class FormatError(ValueError):
    """A field format that makes no sense. ``key`` names the setting at fault."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


class FieldType(StrEnum):
    N = "n"  # digits
    AN = "an"  # letters and digits
    ANS = "ans"  # letters, digits and specials
    B = "b"  # bytes
    Z = "z"  # track 2/3 code set: digits and the separator (BCD nibble D, ASCII "=")


class Encoding(StrEnum):
    ASCII = "ascii"
    BCD = "bcd"
    BINARY = "binary"
    EBCDIC = "ebcdic"


class LengthType(StrEnum):
    FIXED = "fixed"
    LLVAR = "LLVAR"
    LLLVAR = "LLLVAR"


class Counts(StrEnum):
    """What a length prefix counts: digits (nibbles of BCD, hex digits of hex text) or bytes."""

    DIGITS = "digits"
    BYTES = "bytes"


class Pad(StrEnum):
    LEFT = "left"
    RIGHT = "right"


NUMERIC_TYPES = frozenset({FieldType.N, FieldType.Z})
TEXT_TYPES = frozenset({FieldType.AN, FieldType.ANS})
TEXT_ENCODINGS = frozenset({Encoding.ASCII, Encoding.EBCDIC})
PAD_CHARS = ("0", "F")
# The largest value each length type's prefix can state (LL: 2 digits, LLL: 3 digits).
PREFIX_MAX = {LengthType.LLVAR: 99, LengthType.LLLVAR: 999}
FIXED_MAX = 999


@dataclass(frozen=True, slots=True)
class FieldDef:
    """A field as a dictionary defines it: ``n..19 LLVAR`` is ``FieldDef(N, LLVAR, 19)``.
    ``max`` is in the type's unit: digits (n, z), characters (an, ans) or bytes (b)."""

    type: FieldType
    length: LengthType
    max: int
    desc: str


@dataclass(frozen=True, slots=True)
class Representation:
    """How a dialect writes each kind of data when a field says nothing else."""

    numeric: Encoding  # n and z fields
    text: Encoding  # an and ans fields
    binary: Encoding  # b fields: raw bytes, or hex digits as ASCII text
    prefix: Encoding  # length prefixes of variable fields
    mti: Encoding  # bcd (2 bytes) or 4 characters
    bitmap: Encoding  # binary (8 bytes) or 16 hex characters

    def check(self) -> None:
        for key, value, allowed in (
            ("numeric", self.numeric, (Encoding.BCD, Encoding.ASCII, Encoding.EBCDIC)),
            ("text", self.text, (Encoding.ASCII, Encoding.EBCDIC)),
            ("binary", self.binary, (Encoding.BINARY, Encoding.ASCII)),
            ("prefix", self.prefix, tuple(Encoding)),
            ("mti", self.mti, (Encoding.BCD, Encoding.ASCII, Encoding.EBCDIC)),
            ("bitmap", self.bitmap, (Encoding.BINARY, Encoding.ASCII, Encoding.EBCDIC)),
        ):
            if value not in allowed:
                raise FormatError(key, f"{str(value)!r} is not one of {[str(a) for a in allowed]}")


@dataclass(frozen=True, slots=True)
class FieldFormat:
    """One field on the wire. ``prefix`` and ``counts`` belong to variable fields only;
    ``pad``/``pad_char`` to BCD digits only (an odd digit count needs a filler nibble)."""

    type: FieldType
    encoding: Encoding
    length: LengthType
    max: int
    prefix: Encoding | None = None
    counts: Counts | None = None
    pad: Pad | None = None
    pad_char: str = ""
    desc: str = ""

    @property
    def bcd_digits(self) -> bool:
        return self.type in NUMERIC_TYPES and self.encoding == Encoding.BCD

    @property
    def hex_text(self) -> bool:
        """Bytes travelling as hex digits in ASCII (jPOS ``IFA_BINARY``)."""
        return self.type == FieldType.B and self.encoding == Encoding.ASCII

    @property
    def wire_max(self) -> int:
        """The length in the unit pyiso8583 counts: hex text is two characters a byte."""
        return 2 * self.max if self.hex_text else self.max

    def check(self) -> FieldFormat:
        """This format, if it makes sense; else ``FormatError`` naming the key at fault."""
        t, enc = self.type, self.encoding
        if t in NUMERIC_TYPES and enc not in (Encoding.BCD, *TEXT_ENCODINGS):
            raise FormatError("encoding", f"a {t} field is bcd, ascii or ebcdic digits, not {enc}")
        if t in TEXT_TYPES and enc not in TEXT_ENCODINGS:
            raise FormatError(
                "encoding",
                f"an {t} field is text (ascii or ebcdic); {enc} cannot carry letters"
                if enc == Encoding.BCD
                else f"an {t} field is text (ascii or ebcdic), not {enc}",
            )
        if t == FieldType.B and enc not in (Encoding.BINARY, Encoding.ASCII):
            raise FormatError(
                "encoding", f"a b field is binary (raw bytes) or ascii (hex digits), not {enc}"
            )
        if isinstance(self.max, bool) or not isinstance(self.max, int) or self.max < 1:
            raise FormatError("max", f"must be a whole number of at least 1, not {self.max!r}")
        if self.length == LengthType.FIXED:
            if self.prefix is not None:
                raise FormatError("prefix", "a fixed-length field has no length prefix")
            if self.counts is not None:
                raise FormatError("counts", "a fixed-length field has no length prefix to count")
            if self.wire_max > FIXED_MAX:
                raise FormatError("max", f"a fixed field of {self.max} is beyond {FIXED_MAX}")
        else:
            self._check_prefix()
        if self.bcd_digits:
            if self.pad is None or self.pad_char not in PAD_CHARS:
                raise FormatError(
                    "pad_char", f"BCD digits need a pad nibble, one of {list(PAD_CHARS)}"
                )
        elif self.pad is not None or self.pad_char:
            raise FormatError(
                "pad",
                "only BCD digits are padded (an odd digit count fills half a byte); "
                f"a {t} field in {enc} travels at its exact length",
            )
        return self

    def _check_prefix(self) -> None:
        if self.prefix is None:
            raise FormatError("prefix", f"an {self.length} field needs a length prefix encoding")
        if self.counts is None:
            raise FormatError("counts", "say what the length prefix counts: digits or bytes")
        t, enc, counts = self.type, self.encoding, self.counts
        if self.bcd_digits and counts != Counts.DIGITS:
            raise FormatError(
                "counts",
                "a BCD length counts digits: counting bytes cannot tell 5 digits from 6, "
                "the pad nibble would become a digit",
            )
        if t in TEXT_TYPES and counts != Counts.BYTES:
            raise FormatError("counts", f"an {t} field's length counts bytes (characters)")
        if t == FieldType.B and enc == Encoding.BINARY and counts != Counts.BYTES:
            raise FormatError("counts", "a binary field's length counts bytes")
        if self.hex_text and counts != Counts.DIGITS:
            raise FormatError(
                "counts",
                "bytes as hex text are counted in hex digits (characters on the wire); a "
                "prefix counting the bytes they stand for is not supported",
            )
        limit = PREFIX_MAX[self.length]
        if self.wire_max > limit:
            what = f"{self.max} bytes are {self.wire_max} hex digits" if self.hex_text else ""
            raise FormatError(
                "max",
                f"an {self.length} prefix states at most {limit}, not {self.max}"
                + (f" ({what})" if what else ""),
            )

    def pyiso8583(self) -> PyisoSpec:
        """This format as a pyiso8583 field spec (``check`` it first)."""
        spec: PyisoSpec = {
            "data_enc": _pyiso_data_enc(self.encoding),
            "len_enc": "bcd" if self.prefix is None else _pyiso_len_enc(self.prefix),
            "len_type": _prefix_bytes(self.length, self.prefix),
            "max_len": self.wire_max,
        }
        if self.bcd_digits:
            spec["len_count"] = "nibbles"
            spec["left_pad" if self.pad == Pad.LEFT else "right_pad"] = self.pad_char
        spec["desc"] = self.desc
        return spec


def _pyiso_data_enc(enc: Encoding) -> str:
    if enc in (Encoding.BCD, Encoding.BINARY):
        return "b"
    return EBCDIC_CODEC if enc == Encoding.EBCDIC else "ascii"


def _pyiso_len_enc(enc: Encoding) -> str:
    return {
        Encoding.BCD: "bcd",
        Encoding.BINARY: "b",
        Encoding.ASCII: "ascii",
        Encoding.EBCDIC: EBCDIC_CODEC,
    }[enc]


def _prefix_bytes(length: LengthType, prefix: Encoding | None) -> int:
    """Bytes of the length prefix: BCD and binary pack two digits a byte (LL in 1 byte, LLL
    in 2), text spends a byte a digit."""
    if length == LengthType.FIXED or prefix is None:
        return 0
    digits = 2 if length == LengthType.LLVAR else 3
    return digits if prefix in TEXT_ENCODINGS else (digits + 1) // 2


def resolve(field: FieldDef, rep: Representation) -> FieldFormat:
    """The format a dictionary field takes in a representation, before overrides."""
    t = field.type
    if t in NUMERIC_TYPES:
        enc = rep.numeric
    elif t in TEXT_TYPES:
        enc = rep.text
    else:
        enc = rep.binary
    fmt = FieldFormat(t, enc, field.length, field.max, desc=field.desc)
    return with_defaults(fmt, prefix=rep.prefix)


def with_defaults(fmt: FieldFormat, prefix: Encoding | None = None) -> FieldFormat:
    """Fill what follows from the rest: a variable field's prefix and what it counts, and
    BCD digits' pad (fixed: a leading ``0``; variable: a trailing ``0``, track 2 ``F``).
    Settings that do not apply to the format are dropped (an inherited pad on a field made
    ASCII, an inherited prefix on a field made fixed)."""
    variable = fmt.length != LengthType.FIXED
    counts = fmt.counts
    if variable and counts is None:
        counts = Counts.DIGITS if fmt.type in NUMERIC_TYPES or fmt.hex_text else Counts.BYTES
    pad, pad_char = fmt.pad, fmt.pad_char
    if fmt.bcd_digits:
        if pad is None:
            pad = Pad.RIGHT if variable else Pad.LEFT
        if not pad_char:
            pad_char = "F" if fmt.type == FieldType.Z else "0"
    else:
        pad, pad_char = None, ""
    return replace(
        fmt,
        prefix=(fmt.prefix or prefix) if variable else None,
        counts=counts if variable else None,
        pad=pad,
        pad_char=pad_char,
    )


def mti_spec(enc: Encoding) -> PyisoSpec:
    if enc == Encoding.BCD:
        return {"data_enc": "b", "len_enc": "bcd", "len_type": 0, "max_len": 2,
                "desc": "Message Type Identifier"}  # fmt: skip
    return {"data_enc": _pyiso_data_enc(enc), "len_enc": "bcd", "len_type": 0, "max_len": 4,
            "desc": "Message Type Identifier"}  # fmt: skip


def bitmap_spec(enc: Encoding, desc: str) -> PyisoSpec:
    if enc == Encoding.BINARY:
        return {"data_enc": "b", "len_enc": "bcd", "len_type": 0, "max_len": 8, "desc": desc}
    return {"data_enc": _pyiso_data_enc(enc), "len_enc": "bcd", "len_type": 0, "max_len": 16,
            "desc": desc}  # fmt: skip


HEADER_SPEC: PyisoSpec = {
    "data_enc": "ascii",
    "len_enc": "ascii",
    "len_type": 0,
    "max_len": 0,
    "desc": "Header",
}


def build_spec(
    formats: dict[str, FieldFormat], rep: Representation, *, secondary_desc: str
) -> PyisoSpec:
    """The pyiso8583 spec: no message header (framing carries it), MTI, bitmaps, fields in
    ascending order. Bit 1 is in the spec so a secondary bitmap decodes far enough to be
    refused by name."""
    spec: PyisoSpec = {
        "h": dict(HEADER_SPEC),
        "t": mti_spec(rep.mti),
        "p": bitmap_spec(rep.bitmap, "Primary Bitmap"),
        "1": bitmap_spec(rep.bitmap, secondary_desc),
    }
    for key in sorted(formats, key=int):
        spec[key] = formats[key].pyiso8583()
    return spec
