"""The CUP-style ISO 8583 (1987) message layout: the field dictionary and how it travels.

Encoding rules (DESIGN §3.1, documented field by field in docs/protocol.md):

* MTI: 2 bytes BCD. Bitmap: 8 bytes binary (primary only; bit 1 is refused).
* Numeric fields: BCD. Fixed-length odd digit counts are right-aligned with a leading ``0``
  nibble; variable-length numerics are left-aligned with a trailing ``0`` nibble, and their
  length prefix is BCD (1 byte for LLVAR, 2 bytes for LLLVAR) counting digits.
* Alphanumeric fields: ASCII. Binary fields (52 PIN block, 55 ICC data, 62 keys, 64 MAC) raw.

This is the default dialect (:mod:`smartpos.protocol.dialect`); ``SPEC`` is it as data for
pyiso8583, and the compiled fast path (:mod:`smartpos.protocol.compiled`) reads it too.
"""

from __future__ import annotations

from typing import Any

from smartpos.protocol.formats import (
    Encoding,
    FieldDef,
    FieldType,
    LengthType,
    Representation,
    build_spec,
    resolve,
)

FieldSpec = dict[str, Any]

_N, _Z, _AN, _ANS, _B = FieldType.N, FieldType.Z, FieldType.AN, FieldType.ANS, FieldType.B
_FIXED, _LL, _LLL = LengthType.FIXED, LengthType.LLVAR, LengthType.LLLVAR

FIELDS: dict[str, FieldDef] = {
    "2": FieldDef(_N, _LL, 19, "Primary Account Number"),
    "3": FieldDef(_N, _FIXED, 6, "Processing Code"),
    "4": FieldDef(_N, _FIXED, 12, "Amount, Transaction"),
    "11": FieldDef(_N, _FIXED, 6, "System Trace Audit Number"),
    "12": FieldDef(_N, _FIXED, 6, "Time, Local Transaction (hhmmss)"),
    "13": FieldDef(_N, _FIXED, 4, "Date, Local Transaction (MMDD)"),
    "14": FieldDef(_N, _FIXED, 4, "Date, Expiration (YYMM)"),
    "15": FieldDef(_N, _FIXED, 4, "Date, Settlement (MMDD)"),
    "22": FieldDef(_N, _FIXED, 3, "POS Entry Mode"),
    "23": FieldDef(_N, _FIXED, 3, "Card Sequence Number"),
    "25": FieldDef(_N, _FIXED, 2, "POS Condition Code"),
    "26": FieldDef(_N, _FIXED, 2, "POS PIN Capture Code"),
    "32": FieldDef(_N, _LL, 11, "Acquiring Institution ID"),
    "35": FieldDef(_Z, _LL, 37, "Track 2 Data"),
    "37": FieldDef(_AN, _FIXED, 12, "Retrieval Reference Number"),
    "38": FieldDef(_AN, _FIXED, 6, "Authorization Code"),
    "39": FieldDef(_AN, _FIXED, 2, "Response Code"),
    "41": FieldDef(_ANS, _FIXED, 8, "Card Acceptor Terminal ID"),
    "42": FieldDef(_ANS, _FIXED, 15, "Card Acceptor ID (Merchant)"),
    "44": FieldDef(_AN, _LL, 25, "Additional Response Data"),
    "48": FieldDef(_N, _LLL, 322, "Additional Data (settlement totals)"),
    "49": FieldDef(_AN, _FIXED, 3, "Currency Code, Transaction"),
    "52": FieldDef(_B, _FIXED, 8, "PIN Block"),
    "53": FieldDef(_N, _FIXED, 16, "Security Related Control Information"),
    "54": FieldDef(_AN, _LLL, 20, "Balance Amount"),
    "55": FieldDef(_B, _LLL, 255, "ICC Data (EMV TLV)"),
    "60": FieldDef(_N, _LLL, 17, "Reserved Private (60.1 type, 60.2 batch, 60.3 network code)"),
    "61": FieldDef(_N, _LLL, 29, "Original Message (61.1 batch, 61.2 trace, 61.3 date)"),
    "62": FieldDef(_B, _LLL, 512, "Reserved Private (working keys / batch upload details)"),
    "63": FieldDef(_ANS, _LLL, 163, "Reserved Private (operator / card organisation)"),
    "64": FieldDef(_B, _FIXED, 8, "Message Authentication Code"),
}

REPRESENTATION = Representation(
    numeric=Encoding.BCD,
    text=Encoding.ASCII,
    binary=Encoding.BINARY,
    prefix=Encoding.BCD,
    mti=Encoding.BCD,
    bitmap=Encoding.BINARY,
)
SECONDARY_BITMAP_DESC = "Secondary Bitmap (not used)"

SPEC: dict[str, FieldSpec] = build_spec(
    {k: resolve(f, REPRESENTATION).check() for k, f in FIELDS.items()},
    REPRESENTATION,
    secondary_desc=SECONDARY_BITMAP_DESC,
)

# Fields a request may carry; anything else set in the bitmap is a format error.
SUPPORTED_FIELDS = frozenset(k for k in SPEC if k.isdigit() and k != "1")
