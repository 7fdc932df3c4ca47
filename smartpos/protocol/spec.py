"""The CUP-style ISO 8583 (1987) message layout, as data for pyiso8583.

Encoding rules (DESIGN §3.1, documented field by field in docs/protocol.md):

* MTI: 2 bytes BCD. Bitmap: 8 bytes binary (primary only; bit 1 is refused).
* Numeric fields: BCD. Fixed-length odd digit counts are right-aligned with a leading ``0``
  nibble; variable-length numerics are left-aligned with a trailing ``0`` nibble, and their
  length prefix is BCD (1 byte for LLVAR, 2 bytes for LLLVAR) counting digits.
* Alphanumeric fields: ASCII. Binary fields (52 PIN block, 55 ICC data, 62 keys, 64 MAC) raw.
"""

from __future__ import annotations

from typing import Any

FieldSpec = dict[str, Any]


def _n(digits: int, desc: str) -> FieldSpec:
    """Fixed numeric, BCD, right-aligned."""
    return {
        "data_enc": "b",
        "len_enc": "bcd",
        "len_type": 0,
        "max_len": digits,
        "len_count": "nibbles",
        "left_pad": "0",
        "desc": desc,
    }


def _nvar(max_digits: int, len_bytes: int, desc: str, pad: str = "0") -> FieldSpec:
    """Variable numeric (or track 'z'), BCD, left-aligned, BCD length in digits."""
    return {
        "data_enc": "b",
        "len_enc": "bcd",
        "len_type": len_bytes,
        "max_len": max_digits,
        "len_count": "nibbles",
        "right_pad": pad,
        "desc": desc,
    }


def _an(length: int, desc: str) -> FieldSpec:
    return {"data_enc": "ascii", "len_enc": "bcd", "len_type": 0, "max_len": length, "desc": desc}


def _anvar(max_len: int, len_bytes: int, desc: str) -> FieldSpec:
    return {
        "data_enc": "ascii",
        "len_enc": "bcd",
        "len_type": len_bytes,
        "max_len": max_len,
        "desc": desc,
    }


def _b(length: int, desc: str) -> FieldSpec:
    return {"data_enc": "b", "len_enc": "bcd", "len_type": 0, "max_len": length, "desc": desc}


def _bvar(max_len: int, len_bytes: int, desc: str) -> FieldSpec:
    return {
        "data_enc": "b",
        "len_enc": "bcd",
        "len_type": len_bytes,
        "max_len": max_len,
        "desc": desc,
    }


SPEC: dict[str, FieldSpec] = {
    "h": {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": 0, "desc": "Header"},
    "t": _b(2, "Message Type Identifier"),
    "p": _b(8, "Primary Bitmap"),
    "1": _b(8, "Secondary Bitmap (not used)"),
    "2": _nvar(19, 1, "Primary Account Number"),
    "3": _n(6, "Processing Code"),
    "4": _n(12, "Amount, Transaction"),
    "11": _n(6, "System Trace Audit Number"),
    "12": _n(6, "Time, Local Transaction (hhmmss)"),
    "13": _n(4, "Date, Local Transaction (MMDD)"),
    "14": _n(4, "Date, Expiration (YYMM)"),
    "15": _n(4, "Date, Settlement (MMDD)"),
    "22": _n(3, "POS Entry Mode"),
    "23": _n(3, "Card Sequence Number"),
    "25": _n(2, "POS Condition Code"),
    "26": _n(2, "POS PIN Capture Code"),
    "32": _nvar(11, 1, "Acquiring Institution ID"),
    "35": _nvar(37, 1, "Track 2 Data", pad="F"),
    "37": _an(12, "Retrieval Reference Number"),
    "38": _an(6, "Authorization Code"),
    "39": _an(2, "Response Code"),
    "41": _an(8, "Card Acceptor Terminal ID"),
    "42": _an(15, "Card Acceptor ID (Merchant)"),
    "44": _anvar(25, 1, "Additional Response Data"),
    "48": _nvar(322, 2, "Additional Data (settlement totals)"),
    "49": _an(3, "Currency Code, Transaction"),
    "52": _b(8, "PIN Block"),
    "53": _n(16, "Security Related Control Information"),
    "54": _anvar(20, 2, "Balance Amount"),
    "55": _bvar(255, 2, "ICC Data (EMV TLV)"),
    "60": _nvar(17, 2, "Reserved Private (60.1 type, 60.2 batch, 60.3 network code)"),
    "61": _nvar(29, 2, "Original Message (61.1 batch, 61.2 trace, 61.3 date)"),
    "62": _bvar(512, 2, "Reserved Private (working keys / batch upload details)"),
    "63": _anvar(163, 2, "Reserved Private (operator / card organisation)"),
    "64": _b(8, "Message Authentication Code"),
}

# Fields a request may carry; anything else set in the bitmap is a format error.
SUPPORTED_FIELDS = frozenset(k for k in SPEC if k.isdigit() and k != "1")
