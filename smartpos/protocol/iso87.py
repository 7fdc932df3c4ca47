"""The ISO 8583:1987 field dictionary (fields 2–64) and the ASCII way of writing it.

A plain 1987 host defines every field, where the CUP dialect (:mod:`smartpos.protocol.spec`)
defines the ones a CUP POS uses, so a terminal pointed at such a host must be able to read
an answer carrying, say, field 7 or 43 although it never sends them. Types and lengths are
the standard's; where the standard's notation has no equivalent here the field takes the form
jPOS's ISO87 packagers give it, the format most simulators and test hosts speak:

* 28–31 (``x+n8``, a ``C``/``D`` sign then 8 digits) are 9 characters of text;
* 34 (PAN extended) and 36 (track 3) are text of up to 28 and 104 characters;
* 49–51 (currency codes) are ``an3``: an ISO 4217 code, alphabetic or numeric (jPOS packs
  them as 3 characters in its ASCII and its BCD packagers alike, which ``n3`` would not be);
* 46–48 and 55–63 are ``ans..999`` (reserved for ISO, national and private use).

``REPRESENTATION`` is jPOS's ``ISO87APackager``: ASCII MTI, bitmap as 16 hex characters,
ASCII digits and text, ASCII length prefixes, and bytes (52 PIN data, 64 MAC) as hex
characters (``IFA_BINARY``: 16 characters for 8 bytes). A BCD form (``ISO87BPackager``) is the
same dictionary with another representation; docs/profiles.md shows both.
"""

from __future__ import annotations

from smartpos.protocol.formats import Encoding, FieldDef, FieldType, LengthType, Representation

_N, _Z, _AN, _ANS, _B = FieldType.N, FieldType.Z, FieldType.AN, FieldType.ANS, FieldType.B
_FIXED, _LL, _LLL = LengthType.FIXED, LengthType.LLVAR, LengthType.LLLVAR

FIELDS: dict[str, FieldDef] = {
    "2": FieldDef(_N, _LL, 19, "Primary Account Number"),
    "3": FieldDef(_N, _FIXED, 6, "Processing Code"),
    "4": FieldDef(_N, _FIXED, 12, "Amount, Transaction"),
    "5": FieldDef(_N, _FIXED, 12, "Amount, Settlement"),
    "6": FieldDef(_N, _FIXED, 12, "Amount, Cardholder Billing"),
    "7": FieldDef(_N, _FIXED, 10, "Transmission Date and Time (MMDDhhmmss)"),
    "8": FieldDef(_N, _FIXED, 8, "Amount, Cardholder Billing Fee"),
    "9": FieldDef(_N, _FIXED, 8, "Conversion Rate, Settlement"),
    "10": FieldDef(_N, _FIXED, 8, "Conversion Rate, Cardholder Billing"),
    "11": FieldDef(_N, _FIXED, 6, "System Trace Audit Number"),
    "12": FieldDef(_N, _FIXED, 6, "Time, Local Transaction (hhmmss)"),
    "13": FieldDef(_N, _FIXED, 4, "Date, Local Transaction (MMDD)"),
    "14": FieldDef(_N, _FIXED, 4, "Date, Expiration (YYMM)"),
    "15": FieldDef(_N, _FIXED, 4, "Date, Settlement (MMDD)"),
    "16": FieldDef(_N, _FIXED, 4, "Date, Conversion (MMDD)"),
    "17": FieldDef(_N, _FIXED, 4, "Date, Capture (MMDD)"),
    "18": FieldDef(_N, _FIXED, 4, "Merchant Type"),
    "19": FieldDef(_N, _FIXED, 3, "Acquiring Institution Country Code"),
    "20": FieldDef(_N, _FIXED, 3, "PAN Extended, Country Code"),
    "21": FieldDef(_N, _FIXED, 3, "Forwarding Institution Country Code"),
    "22": FieldDef(_N, _FIXED, 3, "POS Entry Mode"),
    "23": FieldDef(_N, _FIXED, 3, "Card Sequence Number"),
    "24": FieldDef(_N, _FIXED, 3, "Network International Identifier"),
    "25": FieldDef(_N, _FIXED, 2, "POS Condition Code"),
    "26": FieldDef(_N, _FIXED, 2, "POS PIN Capture Code"),
    "27": FieldDef(_N, _FIXED, 1, "Authorization Identification Response Length"),
    "28": FieldDef(_AN, _FIXED, 9, "Amount, Transaction Fee (x+n8)"),
    "29": FieldDef(_AN, _FIXED, 9, "Amount, Settlement Fee (x+n8)"),
    "30": FieldDef(_AN, _FIXED, 9, "Amount, Transaction Processing Fee (x+n8)"),
    "31": FieldDef(_AN, _FIXED, 9, "Amount, Settlement Processing Fee (x+n8)"),
    "32": FieldDef(_N, _LL, 11, "Acquiring Institution Identification Code"),
    "33": FieldDef(_N, _LL, 11, "Forwarding Institution Identification Code"),
    "34": FieldDef(_ANS, _LL, 28, "PAN Extended"),
    "35": FieldDef(_Z, _LL, 37, "Track 2 Data"),
    "36": FieldDef(_ANS, _LLL, 104, "Track 3 Data"),
    "37": FieldDef(_AN, _FIXED, 12, "Retrieval Reference Number"),
    "38": FieldDef(_AN, _FIXED, 6, "Authorization Identification Response"),
    "39": FieldDef(_AN, _FIXED, 2, "Response Code"),
    "40": FieldDef(_AN, _FIXED, 3, "Service Restriction Code"),
    "41": FieldDef(_ANS, _FIXED, 8, "Card Acceptor Terminal Identification"),
    "42": FieldDef(_ANS, _FIXED, 15, "Card Acceptor Identification Code"),
    "43": FieldDef(_ANS, _FIXED, 40, "Card Acceptor Name/Location"),
    "44": FieldDef(_AN, _LL, 25, "Additional Response Data"),
    "45": FieldDef(_ANS, _LL, 76, "Track 1 Data"),
    "46": FieldDef(_ANS, _LLL, 999, "Additional Data, ISO"),
    "47": FieldDef(_ANS, _LLL, 999, "Additional Data, National"),
    "48": FieldDef(_ANS, _LLL, 999, "Additional Data, Private"),
    "49": FieldDef(_AN, _FIXED, 3, "Currency Code, Transaction"),
    "50": FieldDef(_AN, _FIXED, 3, "Currency Code, Settlement"),
    "51": FieldDef(_AN, _FIXED, 3, "Currency Code, Cardholder Billing"),
    "52": FieldDef(_B, _FIXED, 8, "PIN Data"),
    "53": FieldDef(_N, _FIXED, 16, "Security Related Control Information"),
    "54": FieldDef(_AN, _LLL, 120, "Additional Amounts"),
    "55": FieldDef(_ANS, _LLL, 999, "Reserved ISO"),
    "56": FieldDef(_ANS, _LLL, 999, "Reserved ISO"),
    "57": FieldDef(_ANS, _LLL, 999, "Reserved National"),
    "58": FieldDef(_ANS, _LLL, 999, "Reserved National"),
    "59": FieldDef(_ANS, _LLL, 999, "Reserved National"),
    "60": FieldDef(_ANS, _LLL, 999, "Reserved Private"),
    "61": FieldDef(_ANS, _LLL, 999, "Reserved Private"),
    "62": FieldDef(_ANS, _LLL, 999, "Reserved Private"),
    "63": FieldDef(_ANS, _LLL, 999, "Reserved Private"),
    "64": FieldDef(_B, _FIXED, 8, "Message Authentication Code"),
}

REPRESENTATION = Representation(
    numeric=Encoding.ASCII,
    text=Encoding.ASCII,
    binary=Encoding.ASCII,
    prefix=Encoding.ASCII,
    mti=Encoding.ASCII,
    bitmap=Encoding.ASCII,
)
SECONDARY_BITMAP_DESC = "Secondary Bitmap (not supported)"
