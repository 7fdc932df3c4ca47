"""ISO 9564 format 0 PIN blocks, encrypted under the terminal PIN key (TPK).

Only the encrypting side lives here: the terminal (PIN pad) turns a PIN into an encrypted
block. Decryption happens inside :class:`smartpos.keys.hsm.SoftHsm`, whose API never hands a
clear PIN or clear PIN block back to the caller.
"""

from __future__ import annotations

from psec.pinblock import encode_pinblock_iso_0

from smartpos.keys.keys import require_key
from smartpos.keys.tdes import tdes_key

__all__ = ["PIN_BLOCK_LEN", "PinError", "encrypt_pin_block", "is_valid_pan", "is_valid_pin"]

PIN_BLOCK_LEN = 8
_PIN_MIN_DIGITS = 4
_PIN_MAX_DIGITS = 12
# Format 0 takes the 12 rightmost PAN digits before the check digit, so it needs at least 13.
_PAN_MIN_DIGITS = 13
_PAN_MAX_DIGITS = 19


class PinError(ValueError):
    """A PIN, PAN or PIN verification parameter is malformed. Messages never contain the PIN."""


def _ascii_digits(text: str) -> bool:
    # str.isdigit alone accepts non-ASCII digits such as "٣", which no PIN pad can send.
    return text.isascii() and text.isdigit()


def is_valid_pin(pin: str) -> bool:
    """True if ``pin`` is 4 to 12 ASCII digits."""
    return _PIN_MIN_DIGITS <= len(pin) <= _PIN_MAX_DIGITS and _ascii_digits(pin)


def is_valid_pan(pan: str) -> bool:
    """True if ``pan`` is 13 to 19 ASCII digits (long enough for a format 0 PIN block)."""
    return _PAN_MIN_DIGITS <= len(pan) <= _PAN_MAX_DIGITS and _ascii_digits(pan)


def encrypt_pin_block(tpk: bytes, pin: str, pan: str) -> bytes:
    """Return the 8-byte ISO 9564 format 0 PIN block for ``pin`` and ``pan``, TDES-ECB
    encrypted under ``tpk``.

    Raises PinError if the PIN is not 4 to 12 digits or the PAN is not 13 to 19 digits, and
    KeyCheckError if ``tpk`` is not a 16-byte key.
    """
    require_key(tpk, "TPK")
    if not is_valid_pin(pin):
        raise PinError(f"PIN must be {_PIN_MIN_DIGITS} to {_PIN_MAX_DIGITS} digits")
    if not is_valid_pan(pan):
        raise PinError(f"PAN must be {_PAN_MIN_DIGITS} to {_PAN_MAX_DIGITS} digits")
    return tdes_key(bytes(tpk)).encrypt_ecb(encode_pinblock_iso_0(pin, pan))
