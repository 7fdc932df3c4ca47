"""Encode and decode ISO 8583 messages with the project spec, and place/check the MAC.

A message is a ``dict[str, str]`` in pyiso8583's decoded form: ``"t"`` is the MTI, numeric
and binary fields are digit / hex strings, alphanumeric fields plain text. The MAC (field 64)
covers every byte of the message from the MTI up to (not including) the MAC itself.
"""

from __future__ import annotations

from collections.abc import Callable

import iso8583

from smartpos.protocol import compiled
from smartpos.protocol.spec import SPEC, SUPPORTED_FIELDS

Fields = dict[str, str]
MacFn = Callable[[bytes], bytes]

MAC_LEN = 8
_MAC_PLACEHOLDER = "00" * MAC_LEN
# Numeric fields (BCD digits) whose decoded value must be all digits; 35 (track 2) may hold
# the separator "D", and the MTI and bitmap are checked on their own.
_NUMERIC = frozenset(
    k
    for k, spec in SPEC.items()
    if spec.get("len_count") == "nibbles" and k not in ("35", "p", "t")
)


class MessageError(ValueError):
    """A message that cannot be encoded or decoded. ``field`` names where, when known.

    ``response_code`` is what a host answers such a request with (30 = format error)."""

    def __init__(
        self,
        reason: str,
        field: str | None = None,
        response_code: str = "30",
        partial: Fields | None = None,
    ):
        super().__init__(f"{reason}" + (f" (field {field})" if field else ""))
        self.reason = reason
        self.field = field
        self.response_code = response_code
        # What decoded before the defect (never the faulty field): a host echoes 11 and 41
        # from it so the terminal can match the 30 answer to its request.
        self.partial: Fields = partial or {}


def encode(fields: Fields, mac: MacFn | None = None) -> bytes:
    """Encode ``fields``; with ``mac``, set field 64 to ``mac(bytes before the MAC)``."""
    doc = {k: v for k, v in fields.items() if k not in ("p", "64")}
    if mac is not None:
        doc["64"] = _MAC_PLACEHOLDER
    raw = compiled.encode(doc)
    if raw is None:  # not sure: pyiso8583 encodes it or says what is wrong
        try:
            raw = bytes(iso8583.encode(doc, SPEC)[0])
        except iso8583.EncodeError as exc:
            raise MessageError(exc.msg, exc.field) from None
    if mac is None:
        return bytes(raw)
    body = bytes(raw[:-MAC_LEN])
    return body + mac(body)


def decode(raw: bytes) -> Fields:
    """Decode a message. Any defect (bad bitmap, field overrun, unknown or unsupported
    field, trailing bytes, bad BCD) is a ``MessageError`` naming the field."""
    doc = compiled.decode(raw)
    if doc is None:  # not sure: pyiso8583 decodes it or says what is wrong
        try:
            doc = iso8583.decode(bytearray(raw), SPEC)[0]
        except iso8583.DecodeError as exc:
            partial = {k: v for k, v in exc.doc_dec.items() if k != exc.field}
            raise MessageError(exc.msg, exc.field, partial=partial) from None
        except (KeyError, ValueError, IndexError, TypeError) as exc:
            raise MessageError(f"undecodable message: {type(exc).__name__}") from None
    if "1" in doc:
        raise MessageError("secondary bitmap is not supported", "1", partial=doc)
    unknown = [k for k in doc if k.isdigit() and k not in SUPPORTED_FIELDS]
    if unknown:
        raise MessageError("field not supported", unknown[0], partial=doc)
    mti = doc.get("t", "")
    if len(mti) != 4 or not mti.isdigit():
        raise MessageError("MTI must be 4 BCD digits", "t")
    for key, value in doc.items():
        if key in _NUMERIC and not value.isdigit():
            partial = {k: v for k, v in doc.items() if k != key}
            raise MessageError("numeric field holds non-digits", key, partial=partial)
    return dict(doc)


def mac_input(raw: bytes) -> tuple[bytes, bytes]:
    """Split an encoded message that carries field 64 into (MACed bytes, MAC)."""
    if len(raw) <= MAC_LEN:
        raise MessageError("message too short for a MAC", "64")
    return raw[:-MAC_LEN], raw[-MAC_LEN:]
