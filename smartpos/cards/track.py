"""ISO/IEC 7813 magnetic-stripe track 1 (format B) and track 2, expiry dates, service codes.

Track data must never be stored or logged (DESIGN.md §2): the ``Track1``/``Track2`` reprs show
only the masked PAN and the service code, and CardError messages never quote the input.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from smartpos.cards.pan import CardError, mask_pan, normalize_pan

__all__ = [
    "TRACK1_MAX_CHARS",
    "TRACK2_MAX_CHARS",
    "ServiceCode",
    "Track1",
    "Track2",
    "expiry_passed",
    "parse_expiry",
    "parse_track1",
    "parse_track2",
]

# ISO 7813 allows 40 track-2 and 79 track-1 characters, counting the start sentinel, end
# sentinel and LRC; these limits are for the data between the sentinels.
TRACK2_MAX_CHARS = 37
TRACK1_MAX_CHARS = 76
_NAME_MIN_CHARS = 2
_NAME_MAX_CHARS = 26
# Longest raw input worth looking at: data + both sentinels (+ a BCD pad nibble on track 2).
_TRACK2_MAX_INPUT = TRACK2_MAX_CHARS + 3
_TRACK1_MAX_INPUT = TRACK1_MAX_CHARS + 2

_DIGITS = re.compile(r"[0-9]*")
_YYMM = re.compile(r"[0-9]{4}")
_MM_SLASH_YY = re.compile(r"([0-9]{2})/([0-9]{2})")
_SERVICE_CODE = re.compile(r"[0-9]{3}")
# Track 1 carries 6-bit characters, ASCII 0x20-0x5F; "%", "^" and "?" are control characters
# (start sentinel, field separator, end sentinel) and cannot appear inside a field.
_TRACK1_FIELD = re.compile(r"[ -$&->@-\]_]*")
_TRACK2_SEPARATORS = "=Dd"


def _require_yymm(expiry: str) -> None:
    if not _YYMM.fullmatch(expiry):
        raise CardError("expiry must be 4 digits YYMM")
    if not 1 <= int(expiry[2:]) <= 12:
        raise CardError("expiry month must be 01..12")


def _require_track_pan(pan: str) -> None:
    # normalize_pan would quietly drop spaces and dashes; inside track data they are errors.
    if not _DIGITS.fullmatch(pan):
        raise CardError("PAN in track data must contain only digits")
    normalize_pan(pan)


@dataclass(frozen=True, slots=True)
class ServiceCode:
    """The 3-digit ISO 7813 service code: interchange, authorization and allowed services."""

    code: str

    def __post_init__(self) -> None:
        if not _SERVICE_CODE.fullmatch(self.code):
            raise CardError("service code must be exactly 3 digits")

    @property
    def chip_capable(self) -> bool:
        """The card has a chip (first digit 2 or 6): read it; swipe only under fallback rules."""
        return self.code[0] in "26"

    @property
    def international(self) -> bool:
        """International interchange is allowed (first digit 1 or 2)."""
        return self.code[0] in "12"

    @property
    def pin_required(self) -> bool:
        """A PIN is required (third digit 0, 3 or 5)."""
        return self.code[2] in "035"

    @property
    def pin_if_pad_present(self) -> bool:
        """Prompt for a PIN when a PIN pad is present (third digit 6 or 7)."""
        return self.code[2] in "67"

    @property
    def goods_and_services_allowed(self) -> bool:
        """The card may pay for goods and services at a POS.

        ISO 7813 third digit: 0, 1 and 6 are "no restrictions"; 2, 5 and 7 are "goods and
        services only (no cash)"; 3 is "ATM only" and 4 is "cash only", which forbid a
        purchase. The values 8 and 9 are not assigned, so they are not trusted either.
        """
        return self.code[2] in "012567"


def _track2_body(pan: str, expiry: str, service_code: ServiceCode, discretionary: str) -> str:
    return f"{pan}={expiry}{service_code.code}{discretionary}"


@dataclass(frozen=True, slots=True, repr=False)
class Track2:
    """Validated ISO 7813 track 2 data; construction raises CardError on any malformed field."""

    pan: str
    expiry: str  # YYMM
    service_code: ServiceCode
    discretionary: str

    def __post_init__(self) -> None:
        _require_track_pan(self.pan)
        _require_yymm(self.expiry)
        if not _DIGITS.fullmatch(self.discretionary):
            raise CardError("track 2 discretionary data must contain only digits")
        if len(self.encode()) > TRACK2_MAX_CHARS:
            raise CardError(f"track 2 data must be at most {TRACK2_MAX_CHARS} characters")

    def encode(self) -> str:
        """Return the track 2 body "PAN=YYMMSSSDDD...", without sentinels or LRC."""
        return _track2_body(self.pan, self.expiry, self.service_code, self.discretionary)

    def __repr__(self) -> str:
        return (
            f"Track2(pan={mask_pan(self.pan)!r}, expiry='****', "
            f"service_code={self.service_code.code!r}, "
            f"discretionary=<{len(self.discretionary)} digits>)"
        )


def _split_expiry_service(rest: str, track: str) -> tuple[str, ServiceCode, str]:
    if len(rest) < 7:
        raise CardError(f"track {track} is missing the expiry or service code")
    _require_yymm(rest[:4])
    return rest[:4], ServiceCode(rest[4:7]), rest[7:]


def parse_track2(text: str) -> Track2:
    """Parse track 2 data as read from a stripe or carried in ISO 8583 field 35.

    Accepts optional ";" start and "?" end sentinels, "=" or "D"/"d" as the separator and one
    trailing "F"/"f" pad nibble (the BCD form). Raises CardError, naming the problem but never
    quoting the data, unless the PAN is 12..19 digits and Luhn-valid, the expiry is YYMM with
    month 01..12, the service code is 3 digits, the discretionary data is digits only and the
    data between the sentinels is at most 37 characters.
    """
    if len(text) > _TRACK2_MAX_INPUT:
        raise CardError(f"track 2 data must be at most {TRACK2_MAX_CHARS} characters")
    body = text.removeprefix(";").removesuffix("?")
    if body[-1:] in ("F", "f"):
        body = body[:-1]
    if len(body) > TRACK2_MAX_CHARS:
        raise CardError(f"track 2 data must be at most {TRACK2_MAX_CHARS} characters")
    sep = next((i for i, ch in enumerate(body) if ch in _TRACK2_SEPARATORS), -1)
    if sep < 0:
        raise CardError("track 2 has no '=' or 'D' separator after the PAN")
    expiry, service_code, discretionary = _split_expiry_service(body[sep + 1 :], "2")
    return Track2(body[:sep], expiry, service_code, discretionary)


@dataclass(frozen=True, slots=True, repr=False)
class Track1:
    """Validated ISO 7813 track 1 format B data; construction raises CardError if malformed."""

    pan: str
    name: str
    expiry: str  # YYMM
    service_code: ServiceCode
    discretionary: str

    def __post_init__(self) -> None:
        _require_track_pan(self.pan)
        if not _NAME_MIN_CHARS <= len(self.name) <= _NAME_MAX_CHARS:
            raise CardError(f"track 1 name must be {_NAME_MIN_CHARS}..{_NAME_MAX_CHARS} characters")
        if not _TRACK1_FIELD.fullmatch(self.name):
            raise CardError("track 1 name has characters outside the track 1 character set")
        _require_yymm(self.expiry)
        if not _TRACK1_FIELD.fullmatch(self.discretionary):
            raise CardError(
                "track 1 discretionary data has characters outside the track 1 character set"
            )
        if len(self.encode()) > TRACK1_MAX_CHARS:
            raise CardError(f"track 1 data must be at most {TRACK1_MAX_CHARS} characters")

    def encode(self) -> str:
        """Return the track 1 body "BPAN^NAME^YYMMSSSDDD...", without sentinels or LRC."""
        return f"B{self.pan}^{self.name}^{self.expiry}{self.service_code.code}{self.discretionary}"

    def __repr__(self) -> str:
        return (
            f"Track1(pan={mask_pan(self.pan)!r}, name=<{len(self.name)} chars>, "
            f"expiry='****', service_code={self.service_code.code!r}, "
            f"discretionary=<{len(self.discretionary)} chars>)"
        )


def parse_track1(text: str) -> Track1:
    """Parse ISO 7813 track 1 format B: [%]B PAN ^ NAME ^ YYMM SSS discretionary [?].

    The name ("SURNAME/GIVEN" style) must be 2..26 characters; name and discretionary data must
    use the track 1 character set (ASCII space to "_", no "%", "^" or "?"). The data between
    the sentinels may be at most 76 characters (79 on the stripe with sentinels and LRC).
    Raises CardError, naming the problem but never quoting the data, on anything else.
    """
    if len(text) > _TRACK1_MAX_INPUT:
        raise CardError(f"track 1 data must be at most {TRACK1_MAX_CHARS} characters")
    body = text.removeprefix("%").removesuffix("?")
    if len(body) > TRACK1_MAX_CHARS:
        raise CardError(f"track 1 data must be at most {TRACK1_MAX_CHARS} characters")
    if not body.startswith("B"):
        raise CardError("track 1 must start with format code 'B'")
    fields = body[1:].split("^")
    if len(fields) != 3:
        raise CardError("track 1 must have exactly two '^' separators")
    pan, name, rest = fields
    expiry, service_code, discretionary = _split_expiry_service(rest, "1")
    return Track1(pan, name, expiry, service_code, discretionary)


def _expiry_year(yy: int, today: datetime.date) -> int:
    # Two-digit year: pick the century that puts it within 50 years of today, so "99" read in
    # 2025 is 1999 (long expired), not 2099.
    year = today.year - today.year % 100 + yy
    if year > today.year + 49:
        year -= 100
    elif year < today.year - 50:
        year += 100
    return year


def expiry_passed(expiry_yymm: str, today: datetime.date) -> bool:
    """True if a card expiring ``expiry_yymm`` (YYMM) is expired on ``today``.

    A card is valid through the last day of its expiry month. Raises CardError if the expiry is
    not YYMM with month 01..12.
    """
    _require_yymm(expiry_yymm)
    year = _expiry_year(int(expiry_yymm[:2]), today)
    return (today.year, today.month) > (year, int(expiry_yymm[2:]))


def parse_expiry(text: str) -> str:
    """Return the expiry in ``text`` as "YYMM".

    Accepts "YYMM" (as on track data) or "MM/YY" (as printed on the card and typed by a
    cashier), ignoring surrounding whitespace. Raises CardError for any other form or a month
    outside 01..12.
    """
    stripped = text.strip()
    typed = _MM_SLASH_YY.fullmatch(stripped)
    yymm = typed.group(2) + typed.group(1) if typed else stripped
    _require_yymm(yymm)
    return yymm
