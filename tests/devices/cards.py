"""Test cards for the device tests, built here (the terminal side does not read the host's
catalogue): Luhn-valid PANs, their tracks as a wedge reader types them."""

from __future__ import annotations

from smartpos.cards import luhn_check_digit

PAN = "621234000000000" + luhn_check_digit("621234000000000")  # UnionPay debit, stripe only
CHIP_PAN = "621234000000002" + luhn_check_digit("621234000000002")  # UnionPay, chip
VISA_PAN = "476173000000000" + luhn_check_digit("476173000000000")
EXPIRY = "3012"
NAME = "ZHANG/SAN"


def track2(pan: str = PAN, service_code: str = "101", expiry: str = EXPIRY) -> str:
    """Track 2's data between the sentinels."""
    return f"{pan}={expiry}{service_code}0000000000"


def track1(pan: str = PAN, service_code: str = "101", expiry: str = EXPIRY) -> str:
    """Track 1 (format B) data between the sentinels."""
    return f"B{pan}^{NAME}^{expiry}{service_code}00000000000000"


def lrc(framed: str, track: int) -> str:
    """An LRC computed here, independently of the reader: XOR of each character's data
    bits (6 on track 1, 4 on track 2), sentinels included."""
    base, mask = (0x20, 0x3F) if track == 1 else (0x30, 0x0F)
    value = 0
    for ch in framed:
        value ^= (ord(ch) - base) & mask
    return chr(base + value)
