"""Key hierarchy: TMK → working keys (TPK for PINs, TAK for MACs), check values, wrapping.

All keys are double-length (16-byte) TDES keys with odd parity, as used by CUP-style POS
acquirers. Working keys travel from host to terminal in sign-on field 62, encrypted under the
terminal master key (TMK) and followed by their check values so each side can prove it holds
the same key.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

from cryptography.utils import CryptographyDeprecationWarning
from psec.des import (
    adjust_key_parity,
    apply_key_variant,
    decrypt_tdes_ecb,
    encrypt_tdes_ecb,
    generate_kcv,
)

__all__ = [
    "F62_LEN",
    "KCV_LEN",
    "KEY_LEN",
    "KeyCheckError",
    "WorkingKeys",
    "generate_key",
    "kcv",
    "pack_f62",
    "signon_mac_key",
    "unpack_f62",
    "unwrap_key",
    "wrap_key",
]

# psec builds its ciphers on cryptography's TripleDES, which now warns on every import path
# and on every two-key (16-byte) or single-key use. Double-length TDES is what the POS standards
# we implement mandate, so the warning is not actionable per call; it would only flood host
# logs. The filter is narrowed to warnings raised from psec's own modules.
warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning, module=r"psec\.")

KEY_LEN = 16
"""Length of every key in the hierarchy: double-length TDES."""
KCV_LEN = 4
"""Length of a key check value as carried in field 62."""
_WRAPPED_LEN = KEY_LEN
F62_LEN = 2 * (_WRAPPED_LEN + KCV_LEN)
"""Length of the sign-on field 62 payload: wrapped TPK, its KCV, wrapped TAK, its KCV."""


class KeyCheckError(ValueError):
    """A key's check value does not match, or key material is malformed or fails authentication.

    Messages never contain key material.
    """


def require_key(key: bytes, what: str = "key") -> None:
    """Raise KeyCheckError unless ``key`` is a 16-byte double-length TDES key."""
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_LEN:
        raise KeyCheckError(f"{what} must be {KEY_LEN} bytes (double-length TDES)")


def generate_key() -> bytes:
    """Return a fresh random 16-byte double-length TDES key with odd parity."""
    while True:
        key = adjust_key_parity(os.urandom(KEY_LEN))
        # Equal halves would silently degrade TDES to single DES; vanishingly rare, but free
        # to rule out.
        if key[:8] != key[8:]:
            return key


def kcv(key: bytes) -> bytes:
    """Return the 4-byte key check value: TDES-encrypt eight zero bytes, keep the first four."""
    require_key(key)
    return generate_kcv(bytes(key), KCV_LEN)


def _require_wrappable(data: bytes, what: str) -> None:
    if len(data) == 0 or len(data) % 8 != 0:
        raise KeyCheckError(f"{what} must be a non-empty multiple of 8 bytes")


def wrap_key(kek: bytes, key: bytes) -> bytes:
    """Encrypt ``key`` under the double-length ``kek`` with TDES-ECB (CUP field 62 style).

    ECB wrapping does not bind the key halves together (that is what TR-31 key blocks add);
    it is used here because it is what CUP-style terminals expect, and every wrapped key is
    paired with a check value that the receiver verifies.
    """
    require_key(kek, "KEK")
    _require_wrappable(key, "key to wrap")
    return encrypt_tdes_ecb(bytes(kek), bytes(key))


def unwrap_key(kek: bytes, wrapped: bytes) -> bytes:
    """Decrypt a key produced by :func:`wrap_key`. Callers verify the result's check value."""
    require_key(kek, "KEK")
    _require_wrappable(wrapped, "wrapped key")
    return decrypt_tdes_ecb(bytes(kek), bytes(wrapped))


SIGNON_KEY_VARIANT = 8
"""Key variant of the TMK that MACs sign-on requests (see :func:`signon_mac_key`)."""


def signon_mac_key(tmk: bytes) -> bytes:
    """The key that authenticates a sign-on request: the TMK with key variant 8 applied
    (the first byte of each half XORed with 8 × 8 = 0x40, parity kept).

    A sign-on asks the host for new working keys, so the host must know it comes from the
    terminal that holds the TMK — not from anyone who knows its TID and MID. A variant rather
    than the TMK itself keeps the key-encrypting key from ever MACing data.
    """
    require_key(tmk, "TMK")
    return apply_key_variant(bytes(tmk), SIGNON_KEY_VARIANT)


@dataclass(frozen=True)
class WorkingKeys:
    """Clear working keys of one terminal session. Held in memory only, never persisted."""

    # repr=False: a stray log line of the dataclass must not print clear keys.
    tpk: bytes = field(repr=False)
    tak: bytes = field(repr=False)

    def __post_init__(self) -> None:
        require_key(self.tpk, "TPK")
        require_key(self.tak, "TAK")


def pack_f62(tmk: bytes, keys: WorkingKeys) -> bytes:
    """Build the 40-byte sign-on field 62: wrap(TPK) + kcv(TPK) + wrap(TAK) + kcv(TAK)."""
    return wrap_key(tmk, keys.tpk) + kcv(keys.tpk) + wrap_key(tmk, keys.tak) + kcv(keys.tak)


def unpack_f62(tmk: bytes, data: bytes) -> WorkingKeys:
    """Unwrap the working keys from field 62 and verify both check values.

    Raises KeyCheckError if ``data`` is not exactly 40 bytes or either check value does not
    match (wrong TMK, corrupted or tampered field).
    """
    if len(data) != F62_LEN:
        raise KeyCheckError(f"field 62 must be {F62_LEN} bytes, got {len(data)}")
    step = _WRAPPED_LEN + KCV_LEN
    clear: list[bytes] = []
    for name, offset in (("TPK", 0), ("TAK", step)):
        wrapped = bytes(data[offset : offset + _WRAPPED_LEN])
        check = bytes(data[offset + _WRAPPED_LEN : offset + step])
        key = unwrap_key(tmk, wrapped)
        # The check value is public, so comparing it in variable time leaks nothing secret.
        if kcv(key) != check:
            raise KeyCheckError(f"{name} check value mismatch in field 62")
        clear.append(key)
    return WorkingKeys(tpk=clear[0], tak=clear[1])
