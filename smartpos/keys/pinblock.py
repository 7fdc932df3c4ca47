"""ISO 9564 PIN blocks: format 0 under a TDES key, format 4 under an AES key.

Only the encrypting side lives here: the terminal (PIN pad) turns a PIN into an encrypted
block. Decryption happens inside :class:`smartpos.keys.hsm.SoftHsm`, whose API never hands a
clear PIN or clear PIN block back to the caller.

Format 4 (ISO 9564-1:2017 9.4.2) is psec's: a 16-byte PIN field (``4``, PIN length, PIN,
``A`` fill to 16 nibbles, 8 random bytes) encrypted under the AES key, XORed with the PAN
field (PAN length − 12, the PAN, ``0`` fill) and encrypted again. psec's encoding matches
ANSI X9.24-3-2017's published format 4 example byte for byte once its random fill is the
example's (tests/keys/test_pin_format4.py), so it is used as it is.
"""

from __future__ import annotations

from enum import StrEnum

from psec.pinblock import encipher_pinblock_iso_4, encode_pinblock_iso_0

from smartpos.keys.keys import KeyCheckError, require_key
from smartpos.keys.tdes import tdes_key

__all__ = [
    "AES_KEY_LENS",
    "PIN_BLOCK_ISO4_LEN",
    "PIN_BLOCK_LEN",
    "PinBlockFormat",
    "PinError",
    "encrypt_pin_block",
    "encrypt_pin_block_iso4",
    "is_valid_pan",
    "is_valid_pin",
    "require_aes_key",
    "require_pin_and_pan",
]

PIN_BLOCK_LEN = 8
"""Length of a format 0 PIN block (one TDES block)."""
PIN_BLOCK_ISO4_LEN = 16
"""Length of a format 4 PIN block (one AES block): field 52 is b16 in a profile using it."""
AES_KEY_LENS = (16, 24, 32)
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


class PinBlockFormat(StrEnum):
    """The PIN block formats an acquirer profile can name."""

    ISO0 = "iso0"
    """ISO 9564 format 0 (ANSI X9.8): 8 bytes under a double-length TDES key."""
    ISO4 = "iso4"
    """ISO 9564 format 4: 16 bytes under an AES key, with a random fill."""

    @property
    def block_len(self) -> int:
        """Bytes on the wire (field 52)."""
        return PIN_BLOCK_LEN if self is PinBlockFormat.ISO0 else PIN_BLOCK_ISO4_LEN


def require_pin_and_pan(pin: str, pan: str) -> None:
    """Raise PinError unless ``pin`` is 4 to 12 digits and ``pan`` 13 to 19 digits (the
    message names neither)."""
    if not is_valid_pin(pin):
        raise PinError(f"PIN must be {_PIN_MIN_DIGITS} to {_PIN_MAX_DIGITS} digits")
    if not is_valid_pan(pan):
        raise PinError(f"PAN must be {_PAN_MIN_DIGITS} to {_PAN_MAX_DIGITS} digits")


def require_aes_key(key: bytes, what: str = "key") -> None:
    """Raise KeyCheckError unless ``key`` is an AES-128, -192 or -256 key."""
    if not isinstance(key, bytes | bytearray) or len(key) not in AES_KEY_LENS:
        raise KeyCheckError(f"{what} must be 16, 24 or 32 bytes (AES)")


def encrypt_pin_block_iso4(key: bytes, pin: str, pan: str) -> bytes:
    """Return the 16-byte ISO 9564 format 4 PIN block for ``pin`` and ``pan`` under the AES
    ``key``, with a fresh random fill (so the same PIN gives a different block every time).

    Raises PinError if the PIN is not 4 to 12 digits or the PAN is not 13 to 19 digits, and
    KeyCheckError if ``key`` is not 16, 24 or 32 bytes.
    """
    require_aes_key(key, "PIN key")
    require_pin_and_pan(pin, pan)
    return encipher_pinblock_iso_4(bytes(key), pin, pan)


def encrypt_pin_block(tpk: bytes, pin: str, pan: str) -> bytes:
    """Return the 8-byte ISO 9564 format 0 PIN block for ``pin`` and ``pan``, TDES-ECB
    encrypted under ``tpk``.

    Raises PinError if the PIN is not 4 to 12 digits or the PAN is not 13 to 19 digits, and
    KeyCheckError if ``tpk`` is not a 16-byte key.
    """
    require_key(tpk, "TPK")
    require_pin_and_pan(pin, pan)
    return tdes_key(bytes(tpk)).encrypt_ecb(encode_pinblock_iso_0(pin, pan))
