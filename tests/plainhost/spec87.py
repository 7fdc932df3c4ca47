"""ISO 8583:1987 as a pyiso8583 spec, in the ASCII representation.

Written from the 1987 edition's data element definitions, not from smartpos: a host built on
it checks smartpos's ``iso87-plain`` profile against an independent reading of the standard.
The representation is the common ASCII one (jPOS's ISO87APackager, most simulators): MTI as
4 ASCII digits; bitmaps as 16 hex characters; numeric (n) data and LL/LLL length prefixes as
ASCII digits, lengths counting characters; text as ASCII; binary (b) data as hex characters,
two per byte. Track 2 keeps its ``=`` separator. No message header, no length prefix of the
message itself (the host's framing adds a 2-byte length).

Notation in the comments, as in the standard: ``n`` digits, ``an`` letters and digits,
``ans`` letters, digits and specials, ``z`` track 2/3 code set, ``b`` bits (``b 64`` is 8
bytes), ``x+n`` a C/D sign then digits; ``..`` a variable length with an LL (up to 99) or LLL
(up to 999) prefix.
"""

from __future__ import annotations

from typing import Any

Spec = dict[str, dict[str, Any]]


def _fixed(chars: int, desc: str) -> dict[str, Any]:
    return {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": chars, "desc": desc}


def _ll(chars: int, desc: str) -> dict[str, Any]:
    return {"data_enc": "ascii", "len_enc": "ascii", "len_type": 2, "max_len": chars, "desc": desc}


def _lll(chars: int, desc: str) -> dict[str, Any]:
    return {"data_enc": "ascii", "len_enc": "ascii", "len_type": 3, "max_len": chars, "desc": desc}


def _bits(bits: int, desc: str) -> dict[str, Any]:
    """b data as hex characters: 4 bits a character."""
    return _fixed(bits // 4, desc)


SPEC87: Spec = {
    "h": {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": 0, "desc": "none"},
    "t": _fixed(4, "Message type identifier"),  # n 4
    "p": _bits(64, "Primary bitmap"),  # b 64
    "1": _bits(64, "Secondary bitmap"),  # b 64, present when bit 1 is set
    "2": _ll(19, "Primary account number"),  # n ..19 LLVAR
    "3": _fixed(6, "Processing code"),  # n 6: transaction type (2), from (2), to account (2)
    "4": _fixed(12, "Amount, transaction"),  # n 12
    "5": _fixed(12, "Amount, settlement"),  # n 12
    "6": _fixed(12, "Amount, cardholder billing"),  # n 12
    "7": _fixed(10, "Transmission date and time"),  # n 10, MMDDhhmmss
    "8": _fixed(8, "Amount, cardholder billing fee"),  # n 8
    "9": _fixed(8, "Conversion rate, settlement"),  # n 8
    "10": _fixed(8, "Conversion rate, cardholder billing"),  # n 8
    "11": _fixed(6, "Systems trace audit number"),  # n 6
    "12": _fixed(6, "Time, local transaction"),  # n 6, hhmmss
    "13": _fixed(4, "Date, local transaction"),  # n 4, MMDD
    "14": _fixed(4, "Date, expiration"),  # n 4, YYMM
    "15": _fixed(4, "Date, settlement"),  # n 4, MMDD
    "16": _fixed(4, "Date, conversion"),  # n 4, MMDD
    "17": _fixed(4, "Date, capture"),  # n 4, MMDD
    "18": _fixed(4, "Merchant type"),  # n 4
    "19": _fixed(3, "Acquiring institution country code"),  # n 3
    "20": _fixed(3, "PAN extended, country code"),  # n 3
    "21": _fixed(3, "Forwarding institution country code"),  # n 3
    "22": _fixed(3, "Point of service entry mode"),  # n 3
    "23": _fixed(3, "Card sequence number"),  # n 3
    "24": _fixed(3, "Network international identifier"),  # n 3
    "25": _fixed(2, "Point of service condition code"),  # n 2
    "26": _fixed(2, "Point of service PIN capture code"),  # n 2
    "27": _fixed(1, "Authorization identification response length"),  # n 1
    "28": _fixed(9, "Amount, transaction fee"),  # x+n 8
    "29": _fixed(9, "Amount, settlement fee"),  # x+n 8
    "30": _fixed(9, "Amount, transaction processing fee"),  # x+n 8
    "31": _fixed(9, "Amount, settlement processing fee"),  # x+n 8
    "32": _ll(11, "Acquiring institution identification code"),  # n ..11 LLVAR
    "33": _ll(11, "Forwarding institution identification code"),  # n ..11 LLVAR
    "34": _ll(28, "Primary account number, extended"),  # ns ..28 LLVAR
    "35": _ll(37, "Track 2 data"),  # z ..37 LLVAR
    "36": _lll(104, "Track 3 data"),  # n ..104 LLLVAR
    "37": _fixed(12, "Retrieval reference number"),  # an 12
    "38": _fixed(6, "Authorization identification response"),  # an 6
    "39": _fixed(2, "Response code"),  # an 2
    "40": _fixed(3, "Service restriction code"),  # an 3
    "41": _fixed(8, "Card acceptor terminal identification"),  # ans 8
    "42": _fixed(15, "Card acceptor identification code"),  # ans 15
    "43": _fixed(40, "Card acceptor name/location"),  # ans 40
    "44": _ll(25, "Additional response data"),  # an ..25 LLVAR
    "45": _ll(76, "Track 1 data"),  # an ..76 LLVAR
    "46": _lll(999, "Additional data - ISO"),  # an ..999 LLLVAR
    "47": _lll(999, "Additional data - national"),  # an ..999 LLLVAR
    "48": _lll(999, "Additional data - private"),  # an ..999 LLLVAR (ans in practice)
    # Currency codes are "a or n 3" in the 1987 table: an ISO 4217 code, letters (CNY) or
    # digits (156). In ASCII both are 3 characters, so the spec takes them as text and the
    # host compares the code as sent; only the 1993 edition made them n 3.
    "49": _fixed(3, "Currency code, transaction"),  # a or n 3
    "50": _fixed(3, "Currency code, settlement"),  # an 3
    "51": _fixed(3, "Currency code, cardholder billing"),  # a or n 3
    "52": _bits(64, "Personal identification number (PIN) data"),  # b 64
    "53": _fixed(16, "Security related control information"),  # n 16
    "54": _lll(120, "Additional amounts"),  # an ..120 LLLVAR
    # 55 is not defined in 1987 (later editions made it ICC data): reserved for ISO use.
    "55": _lll(999, "Reserved ISO"),  # ans ..999 LLLVAR
    "56": _lll(999, "Reserved ISO"),  # ans ..999 LLLVAR
    "57": _lll(999, "Reserved national"),  # ans ..999 LLLVAR
    "58": _lll(999, "Reserved national"),  # ans ..999 LLLVAR
    "59": _lll(999, "Reserved national"),  # ans ..999 LLLVAR
    "60": _lll(999, "Reserved national"),  # ans ..999 LLLVAR
    "61": _lll(999, "Reserved private"),  # ans ..999 LLLVAR
    "62": _lll(999, "Reserved private"),  # ans ..999 LLLVAR
    "63": _lll(999, "Reserved private"),  # ans ..999 LLLVAR
    "64": _bits(64, "Message authentication code"),  # b 64
    # 65 (b 1, "bitmap, extended") is not here: pyiso8583 reads bit 65 as a third bitmap.
    "66": _fixed(1, "Settlement code"),  # n 1
    "67": _fixed(2, "Extended payment code"),  # n 2
    "68": _fixed(3, "Receiving institution country code"),  # n 3
    "69": _fixed(3, "Settlement institution country code"),  # n 3
    "70": _fixed(3, "Network management information code"),  # n 3
    "71": _fixed(4, "Message number"),  # n 4
    "72": _fixed(4, "Message number, last"),  # n 4
    "73": _fixed(6, "Date, action"),  # n 6, YYMMDD
    "74": _fixed(10, "Credits, number"),  # n 10
    "75": _fixed(10, "Credits, reversal number"),  # n 10
    "76": _fixed(10, "Debits, number"),  # n 10
    "77": _fixed(10, "Debits, reversal number"),  # n 10
    "78": _fixed(10, "Transfer, number"),  # n 10
    "79": _fixed(10, "Transfer, reversal number"),  # n 10
    "80": _fixed(10, "Inquiries, number"),  # n 10
    "81": _fixed(10, "Authorizations, number"),  # n 10
    "82": _fixed(12, "Credits, processing fee amount"),  # n 12
    "83": _fixed(12, "Credits, transaction fee amount"),  # n 12
    "84": _fixed(12, "Debits, processing fee amount"),  # n 12
    "85": _fixed(12, "Debits, transaction fee amount"),  # n 12
    "86": _fixed(16, "Credits, amount"),  # n 16
    "87": _fixed(16, "Credits, reversal amount"),  # n 16
    "88": _fixed(16, "Debits, amount"),  # n 16
    "89": _fixed(16, "Debits, reversal amount"),  # n 16
    # Original data elements: MTI (4), STAN (6), transmission date and time (10),
    # acquiring (11) and forwarding (11) institution codes of the original.
    "90": _fixed(42, "Original data elements"),  # n 42
    "91": _fixed(1, "File update code"),  # an 1
    "92": _fixed(2, "File security code"),  # an 2
    "93": _fixed(5, "Response indicator"),  # an 5
    "94": _fixed(7, "Service indicator"),  # an 7
    "95": _fixed(42, "Replacement amounts"),  # an 42
    "96": _bits(64, "Message security code"),  # b 64
    "97": _fixed(17, "Amount, net settlement"),  # x+n 16
    "98": _fixed(25, "Payee"),  # ans 25
    "99": _ll(11, "Settlement institution identification code"),  # n ..11 LLVAR
    "100": _ll(11, "Receiving institution identification code"),  # n ..11 LLVAR
    "101": _ll(17, "File name"),  # ans ..17 LLVAR
    "102": _ll(28, "Account identification 1"),  # ans ..28 LLVAR
    "103": _ll(28, "Account identification 2"),  # ans ..28 LLVAR
    "104": _lll(100, "Transaction description"),  # ans ..100 LLLVAR
    **{str(n): _lll(999, "Reserved for ISO use") for n in range(105, 112)},  # ans ..999
    **{str(n): _lll(999, "Reserved for national use") for n in range(112, 120)},  # ans ..999
    **{str(n): _lll(999, "Reserved for private use") for n in range(120, 128)},  # ans ..999
    "128": _bits(64, "Message authentication code"),  # b 64
}

# Numeric fields: the host refuses a message whose n fields hold anything but digits.
NUMERIC = frozenset(
    {str(n) for n in (3, 4, *range(5, 28), 32, 33, 53, *range(66, 91), 99, 100)} | {"2"}
)
