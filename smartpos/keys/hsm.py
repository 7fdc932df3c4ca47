"""A software HSM for the acquirer sandbox host.

Keys live outside this object only as blobs sealed under the vault (playing the role of an
HSM's local master key). Each blob is bound to its purpose and terminal through the sealing
aad, so a TAK blob cannot be presented as a TPK, nor one terminal's key as another's. No
method returns a clear PIN or a clear PIN block; the one clear key that leaves is the new TMK
in :meth:`SoftHsm.new_tmk`, because a key-loading ceremony has to inject it into the terminal.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from enum import StrEnum

from psec.pinblock import decode_pinblock_iso_0

from smartpos.keys.keys import (
    WorkingKeys,
    generate_key,
    kcv,
    pack_f62,
    require_key,
    signon_mac_key,
)
from smartpos.keys.mac import MacAlgorithm, compute_mac
from smartpos.keys.mac import verify_mac as _verify_mac
from smartpos.keys.pinblock import PIN_BLOCK_LEN, PinError, is_valid_pan
from smartpos.keys.tdes import tdes_key
from smartpos.keys.vault import Vault

__all__ = ["UNSEALED_CACHE_SIZE", "PinCheck", "SoftHsm"]

UNSEALED_CACHE_SIZE = 4096
"""Most unsealed keys kept in memory; one per active terminal key is plenty."""
# IBM 3624 PIN offsets: 4-12 digit PINs (UnionPay cards use 6). The decimalisation table
# and validation data (the 12 PAN digits left of the check digit, padded with F) are the
# common defaults.
_DECIMALISATION = "0123456789012345"
_PIN_MIN, _PIN_MAX = 4, 12


_TO_DECIMAL = str.maketrans("0123456789ABCDEF", _DECIMALISATION)


def _offset(pvk: bytes, pin: str, pan: str) -> str:
    """IBM 3624 PIN offset (the same as psec's ``generate_ibm3624_offset`` with this
    module's parameters, on the cached PVK cipher; tests/keys/test_tdes.py compares them)."""
    start = max(0, len(pan) - 13)
    validation = pan[start : start + min(12, len(pan) - 1)].ljust(16, "F")
    natural = tdes_key(pvk).encrypt_ecb(bytes.fromhex(validation)).hex().upper()
    natural = natural.translate(_TO_DECIMAL)
    return "".join(str((int(p) - int(n)) % 10) for p, n in zip(pin, natural, strict=False))


class PinCheck(StrEnum):
    """Outcome of a PIN verification."""

    OK = "ok"
    WRONG = "wrong"
    FORMAT_ERROR = "format_error"


def _aad(purpose: str, tid: str) -> bytes:
    # ASCII-only: a terminal ID is 8 ANS characters; anything else is a caller bug.
    return f"{purpose}:{tid}".encode("ascii")


def _digits(text: str, count: int) -> bool:
    return len(text) == count and text.isascii() and text.isdigit()


def _require_pvki(pvki: str) -> None:
    if not _digits(pvki, 1):
        raise PinError("PVKI must be one digit")


def _fresh_key(purpose: str) -> bytes:
    return generate_key()


class SoftHsm:
    """PIN, MAC and key-management commands over vault-sealed keys.

    ``key_source(purpose)`` makes each new key — purpose ``"tmk"``, ``"tpk"``, ``"tak"`` or
    ``"pvk"``: fresh random keys unless a caller that needs known test keys (the published
    protocol examples) gives its own."""

    def __init__(self, vault: Vault, key_source: Callable[[str], bytes] = _fresh_key) -> None:
        self._vault = vault
        self._new_key = key_source
        # The host unseals the same few keys thousands of times per second; GCM decryption is
        # cheap but not free. Keyed by (aad, blob) rather than blob alone so that a cache hit
        # can never bypass the purpose binding. lru_cache is thread-safe and does not cache
        # exceptions, so a bad blob fails every time.
        self._unseal = functools.lru_cache(maxsize=UNSEALED_CACHE_SIZE)(self._unseal_key)

    def __repr__(self) -> str:
        return "SoftHsm(<vault>)"

    def _unseal_key(self, aad: bytes, blob: bytes) -> bytes:
        key = self._vault.unseal(blob, aad)
        require_key(key, "unsealed key")
        return key

    def _seal_key(self, key: bytes, aad: bytes) -> bytes:
        return self._vault.seal(key, aad)

    def new_tmk(self, tid: str) -> tuple[bytes, bytes, bytes]:
        """Generate a terminal master key for ``tid``.

        Returns (sealed_tmk, clear_tmk, kcv). The clear TMK is for the key-loading ceremony
        only; store the sealed form and discard the clear one.
        """
        tmk = self._new_key("tmk")
        require_key(tmk, "TMK")
        return self._seal_key(tmk, _aad("tmk", tid)), tmk, kcv(tmk)

    def tmk_kcv(self, tid: str, sealed_tmk: bytes) -> bytes:
        """The check value of ``tid``'s TMK: tells whether a terminal holds this very key
        (its own check value is the same) without either side showing the key."""
        return kcv(self._unseal(_aad("tmk", tid), bytes(sealed_tmk)))

    def new_working_keys(self, tid: str, sealed_tmk: bytes) -> tuple[bytes, bytes, bytes]:
        """Generate a fresh TPK and TAK for ``tid`` (sign-on).

        Returns (sealed_tpk, sealed_tak, f62) where f62 carries both keys wrapped under the
        terminal's TMK with their check values. Raises KeyCheckError if ``sealed_tmk`` is not
        this vault's TMK for ``tid``.
        """
        tmk = self._unseal(_aad("tmk", tid), bytes(sealed_tmk))
        keys = WorkingKeys(tpk=self._new_key("tpk"), tak=self._new_key("tak"))
        return (
            self._seal_key(keys.tpk, _aad("tpk", tid)),
            self._seal_key(keys.tak, _aad("tak", tid)),
            pack_f62(tmk, keys),
        )

    def rewrap_working_keys(
        self, tid: str, sealed_tmk: bytes, sealed_tpk: bytes, sealed_tak: bytes
    ) -> bytes:
        """Field 62 for the terminal's *current* TPK and TAK under its TMK (the answer to a
        repeated sign-on: the same keys again, no rotation)."""
        tmk = self._unseal(_aad("tmk", tid), bytes(sealed_tmk))
        keys = WorkingKeys(
            tpk=self._unseal(_aad("tpk", tid), bytes(sealed_tpk)),
            tak=self._unseal(_aad("tak", tid), bytes(sealed_tak)),
        )
        return pack_f62(tmk, keys)

    def generate_mac(
        self, tid: str, sealed_tak: bytes, algorithm: MacAlgorithm, data: bytes
    ) -> bytes:
        """Return the 8-byte MAC of ``data`` under the terminal's TAK."""
        tak = self._unseal(_aad("tak", tid), bytes(sealed_tak))
        return compute_mac(algorithm, tak, data)

    def verify_mac(
        self, tid: str, sealed_tak: bytes, algorithm: MacAlgorithm, data: bytes, mac: bytes
    ) -> bool:
        """True if ``mac`` authenticates ``data`` under the terminal's TAK (constant time).

        Raises KeyCheckError if ``sealed_tak`` is not this vault's TAK for ``tid``.
        """
        tak = self._unseal(_aad("tak", tid), bytes(sealed_tak))
        return _verify_mac(algorithm, tak, data, mac)

    def verify_signon_mac(
        self, tid: str, sealed_tmk: bytes, algorithm: MacAlgorithm, data: bytes, mac: bytes
    ) -> bool:
        """True if ``mac`` authenticates a sign-on request ``data`` under the sign-on key
        derived from the terminal's TMK (constant time)."""
        tmk = self._unseal(_aad("tmk", tid), bytes(sealed_tmk))
        return _verify_mac(algorithm, signon_mac_key(tmk), data, mac)

    def new_pvk(self) -> bytes:
        """Generate a PIN verification key and return it sealed (aad b"pvk")."""
        pvk = self._new_key("pvk")
        require_key(pvk, "PVK")
        return self._seal_key(pvk, b"pvk")

    def issue_pin(self, sealed_pvk: bytes, pan: str, pin: str, pvki: str = "1") -> str:
        """Return the IBM 3624 PIN offset to store for a card with ``pan`` and ``pin``.

        Raises PinError unless ``pin`` is 4 to 12 digits, ``pan`` is 13 to 19 digits and
        ``pvki`` is one digit. The offset alone does not reveal the PIN without the PVK.
        """
        pvk = self._unseal(b"pvk", bytes(sealed_pvk))
        if not (pin.isascii() and pin.isdigit() and _PIN_MIN <= len(pin) <= _PIN_MAX):
            raise PinError(f"PIN must be {_PIN_MIN} to {_PIN_MAX} digits")
        if not is_valid_pan(pan):
            raise PinError("PAN must be 13 to 19 digits")
        _require_pvki(pvki)
        return _offset(pvk, pin, pan)

    def verify_pin(
        self,
        tid: str,
        sealed_tpk: bytes,
        pin_block: bytes,
        pan: str,
        sealed_pvk: bytes,
        pvv: str,
        pvki: str = "1",
    ) -> PinCheck:
        """Check an encrypted format 0 PIN block from terminal ``tid`` against the card's PIN
        offset (``pvv``: the value :meth:`issue_pin` returned).

        Returns FORMAT_ERROR if the block is not 8 bytes, does not decode as ISO 9564 format 0
        against ``pan`` (control nibble, PIN length, filler, digits) or ``pan`` is malformed;
        WRONG if the PIN does not match ``pvv``; OK if it does. Raises KeyCheckError for a key
        blob that is not this vault's key for its purpose and terminal, and PinError for a
        malformed ``pvv`` or ``pvki`` (issuer data, not terminal input).
        """
        _require_pvki(pvki)
        if not (pvv.isascii() and pvv.isdigit() and _PIN_MIN <= len(pvv) <= _PIN_MAX):
            raise PinError("PIN offset must be 4 to 12 digits")
        tpk = self._unseal(_aad("tpk", tid), bytes(sealed_tpk))
        pvk = self._unseal(b"pvk", bytes(sealed_pvk))
        if len(pin_block) != PIN_BLOCK_LEN or not is_valid_pan(pan):
            return PinCheck.FORMAT_ERROR
        try:
            pin = decode_pinblock_iso_0(tdes_key(tpk).decrypt_ecb(bytes(pin_block)), pan)
        except ValueError:
            # psec's messages quote the decoded digits, so the exception is dropped here
            # rather than chained or logged.
            return PinCheck.FORMAT_ERROR
        if len(pin) != len(pvv):
            # The offset has the PIN's length: a PIN of another length can only be wrong.
            return PinCheck.WRONG
        expected = _offset(pvk, pin, pan)
        if hmac.compare_digest(expected.encode("ascii"), pvv.encode("ascii")):
            return PinCheck.OK
        return PinCheck.WRONG
