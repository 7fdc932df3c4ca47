"""Card data as pure domain code: PANs, magnetic-stripe tracks and EMV TLV. No I/O."""

from smartpos.cards.pan import (
    Brand,
    CardError,
    PanTokenizer,
    brand_of,
    last4,
    luhn_check_digit,
    luhn_ok,
    mask_pan,
    normalize_pan,
)
from smartpos.cards.tlv import decode_tlv, encode_tlv
from smartpos.cards.track import (
    ServiceCode,
    Track1,
    Track2,
    expiry_passed,
    parse_expiry,
    parse_track1,
    parse_track2,
)

__all__ = [
    "Brand",
    "CardError",
    "PanTokenizer",
    "ServiceCode",
    "Track1",
    "Track2",
    "brand_of",
    "decode_tlv",
    "encode_tlv",
    "expiry_passed",
    "last4",
    "luhn_check_digit",
    "luhn_ok",
    "mask_pan",
    "normalize_pan",
    "parse_expiry",
    "parse_track1",
    "parse_track2",
]
