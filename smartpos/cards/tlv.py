"""EMV BER-TLV for ICC data (ISO 8583 field 55), on top of :mod:`pyemv.tlv`.

Field 55 carries primitive data objects (9F26 cryptogram, 9F36 ATC, 95 TVR, ...). Decoding
flattens constructed templates into their primitive tags, which is what authorization needs.
"""

from __future__ import annotations

import re

from pyemv import tlv as _pyemv_tlv

from smartpos.cards.pan import CardError

__all__ = ["ICC_DATA_MAX_BYTES", "decode_tlv", "encode_tlv"]

# Field 55 is LLLVAR: its length prefix cannot describe more than 999 bytes.
ICC_DATA_MAX_BYTES = 999

_TAG_HEX = re.compile(r"(?:[0-9A-F]{2})+")
_CONSTRUCTED_BIT = 0x20


def decode_tlv(data: bytes) -> dict[str, bytes]:
    """Decode BER-TLV ``data`` into {tag hex upper-case: value bytes}, in input order.

    Constructed templates (e.g. 70, 77) are flattened: their primitive tags appear in the
    result, the template tags do not. Raises CardError, and never any other exception, if
    ``data`` is not bytes, is longer than 999 bytes, is not well-formed BER-TLV or repeats a tag.
    """
    if not isinstance(data, bytes | bytearray):
        raise CardError(f"ICC data must be bytes, got {type(data).__name__}")
    if len(data) > ICC_DATA_MAX_BYTES:
        raise CardError(f"ICC data must be at most {ICC_DATA_MAX_BYTES} bytes, got {len(data)}")
    seen: list[str] = []

    def keep(tag: str, value: bytes | bytearray) -> bytes:
        seen.append(tag)
        return bytes(value)

    try:
        decoded = _pyemv_tlv.decode(bytes(data), flatten=True, convert=keep)
    except _pyemv_tlv.DecodeError as e:
        raise CardError(f"malformed ICC data: {e}") from None
    except RecursionError:
        # Each nesting level costs only 2 bytes, so 999 bytes can nest deeper than the stack.
        raise CardError("malformed ICC data: templates nested too deeply") from None
    if len(seen) != len(decoded):
        raise CardError("malformed ICC data: a tag occurs more than once")
    return decoded


def encode_tlv(tags: dict[str, bytes]) -> bytes:
    """Encode primitive ``tags`` ({tag hex: value bytes}) as BER-TLV, in dict order.

    Tags are hex strings of either case, e.g. "9F26". ``decode_tlv(encode_tlv(tags))`` gives
    ``tags`` back with upper-case keys. Raises CardError for a malformed or constructed tag, a
    tag given twice (ignoring case), a value that is not bytes, or a result over 999 bytes.
    """
    canonical: dict[str, bytes] = {}
    for tag, value in tags.items():
        upper = tag.upper()
        if not _TAG_HEX.fullmatch(upper):
            raise CardError(f"ICC tag {tag!r} is not a hex string")
        if bytes.fromhex(upper)[0] & _CONSTRUCTED_BIT:
            raise CardError(f"ICC tag {upper} is constructed; only primitive tags are encoded")
        if upper in canonical:
            raise CardError(f"ICC tag {upper} is given more than once")
        if not isinstance(value, bytes | bytearray):
            raise CardError(f"ICC tag {upper} value must be bytes")
        canonical[upper] = bytes(value)
    try:
        encoded = _pyemv_tlv.encode(canonical)
    except _pyemv_tlv.EncodeError as e:
        raise CardError(f"malformed ICC tag: {e}") from None
    if len(encoded) > ICC_DATA_MAX_BYTES:
        raise CardError(f"ICC data must be at most {ICC_DATA_MAX_BYTES} bytes, got {len(encoded)}")
    return encoded
