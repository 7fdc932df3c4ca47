"""Primary account numbers: Luhn, brand by BIN, masking and keyed tokens.

Cardholder-data rule (DESIGN.md §2): a PAN leaves this module only masked (first 6 / last 4 at
most) or as a keyed token. Error messages never contain the PAN, not even masked, because a
malformed PAN cannot be masked reliably.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from enum import StrEnum

__all__ = [
    "PAN_MAX_DIGITS",
    "PAN_MIN_DIGITS",
    "TOKEN_KEY_MIN_BYTES",
    "Brand",
    "CardError",
    "PanTokenizer",
    "brand_of",
    "last4",
    "luhn_check_digit",
    "luhn_ok",
    "mask_pan",
    "normalize_pan",
]

# ISO/IEC 7812-1: a PAN is 8..19 digits; card schemes issue 12..19.
PAN_MIN_DIGITS = 12
PAN_MAX_DIGITS = 19
TOKEN_KEY_MIN_BYTES = 16
_TOKEN_HEX_CHARS = 32
_MASK_KEEP_FIRST_MAX = 6
_MASK_KEEP_LAST = 4
# PCI DSS allows first 6 / last 4; for short PANs that would leave too little hidden.
_MASK_HIDDEN_MIN = 6

# [0-9] and not \d: \d matches non-ASCII digits such as "٣", which no card carries.
_DIGITS = re.compile(r"[0-9]+")


class CardError(ValueError):
    """Card data (PAN, track, expiry, service code, ICC data) is malformed.

    Messages say what is wrong and never contain a full PAN or track data.
    """


def _strip_separators(text: str) -> str:
    return text.replace(" ", "").replace("-", "")


def _require_digits(text: str, what: str) -> None:
    if not _DIGITS.fullmatch(text):
        raise CardError(f"{what} must contain only digits 0-9")


def _require_pan_length(digits: str) -> None:
    if not PAN_MIN_DIGITS <= len(digits) <= PAN_MAX_DIGITS:
        raise CardError(
            f"PAN must have {PAN_MIN_DIGITS}..{PAN_MAX_DIGITS} digits, got {len(digits)}"
        )


def _luhn_sum(digits: str, double_first: bool) -> int:
    """Luhn sum over ``digits`` read right to left; ``double_first`` doubles the rightmost."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if (i % 2 == 0) == double_first:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total


def luhn_check_digit(partial: str) -> str:
    """Return the Luhn check digit that completes ``partial`` (a PAN without its last digit).

    Raises CardError unless ``partial`` is one or more ASCII digits.
    """
    _require_digits(partial, "partial PAN")
    return str((10 - _luhn_sum(partial, double_first=True) % 10) % 10)


def luhn_ok(pan: str) -> bool:
    """True if ``pan`` is at least two ASCII digits and passes the Luhn (mod 10) check.

    Never raises: anything that is not a digit string is simply not Luhn-valid.
    """
    if len(pan) < 2 or not _DIGITS.fullmatch(pan):
        return False
    return _luhn_sum(pan, double_first=False) % 10 == 0


def normalize_pan(text: str) -> str:
    """Return the PAN in ``text`` as bare digits, with spaces and dashes removed.

    Raises CardError unless the result is 12..19 ASCII digits and passes the Luhn check.
    """
    digits = _strip_separators(text)
    _require_digits(digits, "PAN")
    _require_pan_length(digits)
    if not luhn_ok(digits):
        raise CardError("PAN fails the Luhn check")
    return digits


class Brand(StrEnum):
    UNIONPAY = "unionpay"
    VISA = "visa"
    MASTERCARD = "mastercard"
    AMEX = "amex"
    JCB = "jcb"
    DISCOVER = "discover"
    UNKNOWN = "unknown"

    @property
    def label_en(self) -> str:
        """Scheme name for English screens and receipts."""
        return _LABELS[self][0]

    @property
    def label_zh(self) -> str:
        """Scheme name for Chinese screens and receipts."""
        return _LABELS[self][1]

    @property
    def is_domestic(self) -> bool:
        """True for the "domestic card" (内卡) group a China acquirer totals separately."""
        return self is Brand.UNIONPAY


_LABELS: dict[Brand, tuple[str, str]] = {
    Brand.UNIONPAY: ("UnionPay", "银联"),
    Brand.VISA: ("Visa", "维萨"),
    Brand.MASTERCARD: ("Mastercard", "万事达"),
    Brand.AMEX: ("American Express", "美国运通"),
    Brand.JCB: ("JCB", "JCB"),
    Brand.DISCOVER: ("Discover", "发现"),
    Brand.UNKNOWN: ("Unknown", "未知"),
}

# (prefix length, lowest prefix, highest prefix, brand); the first matching row wins.
# 62 comes first: UnionPay/Discover co-badged ranges (622126-622925 etc.) are UnionPay in China.
_BIN_TABLE: tuple[tuple[int, int, int, Brand], ...] = (
    (2, 62, 62, Brand.UNIONPAY),
    (4, 8100, 8171, Brand.UNIONPAY),
    (1, 4, 4, Brand.VISA),
    (2, 51, 55, Brand.MASTERCARD),
    (4, 2221, 2720, Brand.MASTERCARD),
    (2, 34, 34, Brand.AMEX),
    (2, 37, 37, Brand.AMEX),
    (4, 3528, 3589, Brand.JCB),
    (4, 6011, 6011, Brand.DISCOVER),
    (3, 644, 649, Brand.DISCOVER),
    (2, 65, 65, Brand.DISCOVER),
)


def brand_of(pan: str) -> Brand:
    """Return the card brand for ``pan`` by its BIN (leading digits).

    Spaces and dashes are ignored. A partial PAN (a BIN prefix) is accepted, so no length or
    Luhn check is made; a prefix too short to decide, or a BIN outside the table, is UNKNOWN.
    Raises CardError if ``pan`` holds anything but digits or more than 19 of them.
    """
    digits = _strip_separators(pan)
    _require_digits(digits, "PAN")
    if len(digits) > PAN_MAX_DIGITS:
        raise CardError(f"PAN must have at most {PAN_MAX_DIGITS} digits, got {len(digits)}")
    for prefix_len, low, high, brand in _BIN_TABLE:
        if len(digits) >= prefix_len and low <= int(digits[:prefix_len]) <= high:
            return brand
    return Brand.UNKNOWN


def _masking_digits(pan: str) -> str:
    digits = _strip_separators(pan)
    _require_digits(digits, "PAN")
    _require_pan_length(digits)
    return digits


def mask_pan(pan: str) -> str:
    """Return ``pan`` with the middle digits replaced by "*", same length as the digits.

    The last 4 digits are always kept. The first 6 are kept when the PAN has 16 or more digits;
    shorter PANs keep fewer leading digits so that at least 6 stay hidden:
    12 digits -> first 2, 13 -> 3, 14 -> 4, 15 -> 5. So "6212345678901234" gives
    "621234******1234" and a 12-digit "123456789012" gives "12******9012". Never more than
    first 6 / last 4.

    Spaces and dashes are ignored. No Luhn check is made, so a mistyped PAN can still be shown
    masked. Raises CardError unless the PAN is 12..19 digits.
    """
    digits = _masking_digits(pan)
    keep_first = min(_MASK_KEEP_FIRST_MAX, len(digits) - _MASK_KEEP_LAST - _MASK_HIDDEN_MIN)
    hidden = len(digits) - keep_first - _MASK_KEEP_LAST
    return digits[:keep_first] + "*" * hidden + digits[-_MASK_KEEP_LAST:]


def last4(pan: str) -> str:
    """Return the last 4 digits of ``pan`` (spaces and dashes ignored).

    Raises CardError unless the PAN is 12..19 digits; no Luhn check is made.
    """
    return _masking_digits(pan)[-_MASK_KEEP_LAST:]


class PanTokenizer:
    """Keyed, deterministic PAN tokens: the same PAN and key always give the same token.

    Lets stored records be matched by card (refunds, velocity checks) without storing the PAN.
    The key must be kept secret: anyone holding it can test candidate PANs against a token.
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < TOKEN_KEY_MIN_BYTES:
            raise ValueError(f"token key must be at least {TOKEN_KEY_MIN_BYTES} bytes")
        self._key = bytes(key)

    def __repr__(self) -> str:
        return "PanTokenizer(key=<hidden>)"

    def token(self, pan: str) -> str:
        """Return 32 lowercase hex characters: HMAC-SHA256(key, normalized PAN), truncated.

        Raises CardError if ``pan`` is not a valid PAN (see :func:`normalize_pan`).
        """
        digits = normalize_pan(pan)
        mac = hmac.new(self._key, digits.encode("ascii"), hashlib.sha256)
        return mac.hexdigest()[:_TOKEN_HEX_CHARS]

    def digest(self, purpose: str, text: str) -> str:
        """HMAC-SHA256 under the token key of ``text`` (which may contain a PAN), separated
        from PAN tokens and other purposes by ``purpose``: 64 lowercase hex characters."""
        data = f"{purpose}\x00{text}".encode()
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()
