"""A software HSM for the acquirer sandbox host.

Keys live outside this object only as blobs sealed under the vault (playing the role of an
HSM's local master key). Each blob is bound to its purpose and terminal through the sealing
aad, so a TAK blob cannot be presented as a TPK, nor one terminal's key as another's. No
method returns a clear PIN or a clear PIN block. The clear keys that leave are the ones a
key-loading ceremony injects into a terminal: a new TMK (:meth:`SoftHsm.new_tmk`), a new AES
PIN key (:meth:`SoftHsm.new_aes_pin_key`) and a DUKPT initial key
(:meth:`SoftHsm.derive_initial_key`). A BDK never leaves sealed form.

PIN blocks arrive under one of four schemes (:class:`PinScheme`, docs/pin-security.md):
format 0 under the session TPK (:meth:`SoftHsm.verify_pin`), format 4 under a terminal's AES
PIN key, format 0 under a TDES DUKPT key and format 4 under an AES DUKPT key
(:meth:`SoftHsm.verify_pin_under`, which takes any of them).
"""

from __future__ import annotations

import functools
import hmac
import os
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

from psec.pinblock import decipher_pinblock_iso_4, decode_pinblock_iso_0

from smartpos.keys import dukpt
from smartpos.keys.keys import (
    KeyCheckError,
    WorkingKeys,
    generate_key,
    kcv,
    pack_f62,
    require_key,
    signon_mac_key,
)
from smartpos.keys.mac import MacAlgorithm, compute_mac
from smartpos.keys.mac import verify_mac as _verify_mac
from smartpos.keys.pinblock import (
    AES_KEY_LENS,
    PIN_BLOCK_ISO4_LEN,
    PIN_BLOCK_LEN,
    PinError,
    is_valid_pan,
)
from smartpos.keys.tdes import TdesKey, tdes_key
from smartpos.keys.vault import Vault

__all__ = ["UNSEALED_CACHE_SIZE", "BdkKind", "PinCheck", "PinScheme", "SoftHsm"]

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


class PinScheme(StrEnum):
    """How a terminal protects the PIN block it sends (an acquirer profile names one)."""

    TPK_ISO0 = "tpk-iso0"
    """ISO 9564 format 0 under the session TPK from sign-on (the default)."""
    AES_ISO4 = "aes-iso4"
    """ISO 9564 format 4 under the terminal's AES PIN key."""
    TDES_DUKPT_ISO0 = "tdes-dukpt-iso0"
    """ISO 9564 format 0 under a TDES DUKPT PIN key (ANSI X9.24-1); the request carries the
    10-byte KSN."""
    AES_DUKPT_ISO4 = "aes-dukpt-iso4"
    """ISO 9564 format 4 under an AES DUKPT PIN key (ANSI X9.24-3); the request carries the
    12-byte KSN."""


class BdkKind(StrEnum):
    """Base derivation keys the soft HSM makes."""

    TDES = "tdes"
    """Double-length TDES BDK for ANSI X9.24-1 DUKPT."""
    AES128 = "aes128"
    """AES-128 BDK for ANSI X9.24-3 DUKPT (AES-128 working keys)."""
    AES256 = "aes256"
    """AES-256 BDK for ANSI X9.24-3 DUKPT (AES-256 working keys)."""

    @property
    def family(self) -> str:
        """The sealing purpose: one for TDES BDKs, one for AES BDKs of either size."""
        return "tdes" if self is BdkKind.TDES else "aes"

    @property
    def key_len(self) -> int:
        return {"tdes": 16, "aes128": 16, "aes256": 32}[self.value]


def _aad(purpose: str, tid: str) -> bytes:
    # ASCII-only: a terminal ID is 8 ANS characters; anything else is a caller bug.
    return f"{purpose}:{tid}".encode("ascii")


def _digits(text: str, count: int) -> bool:
    return len(text) == count and text.isascii() and text.isdigit()


def _require_pvki(pvki: str) -> None:
    if not _digits(pvki, 1):
        raise PinError("PVKI must be one digit")


_AES_KEY_BYTES = {"tpk-aes128": 16, "tpk-aes192": 24, "tpk-aes256": 32}
_AES_KEY_BYTES |= {"bdk-aes128": 16, "bdk-aes256": 32}


def _compare(pvk: bytes, pin: str, pan: str, pvv: str) -> PinCheck:
    if len(pin) != len(pvv):
        # The offset has the PIN's length: a PIN of another length can only be wrong.
        return PinCheck.WRONG
    expected = _offset(pvk, pin, pan)
    if hmac.compare_digest(expected.encode("ascii"), pvv.encode("ascii")):
        return PinCheck.OK
    return PinCheck.WRONG


def _require_issuer_data(pvv: str, pvki: str) -> None:
    _require_pvki(pvki)
    if not (pvv.isascii() and pvv.isdigit() and _PIN_MIN <= len(pvv) <= _PIN_MAX):
        raise PinError("PIN offset must be 4 to 12 digits")


def _fresh_key(purpose: str) -> bytes:
    # AES keys have no parity bits; TDES keys (TMK, TPK, TAK, PVK, TDES BDK) get odd parity.
    if purpose in _AES_KEY_BYTES:
        return os.urandom(_AES_KEY_BYTES[purpose])
    return generate_key()


class SoftHsm:
    """PIN, MAC and key-management commands over vault-sealed keys.

    ``key_source(purpose)`` makes each new key — purpose ``"tmk"``, ``"tpk"``, ``"tak"``,
    ``"pvk"``, ``"tpk-aes128"`` (or 192, 256), ``"bdk-tdes"``, ``"bdk-aes128"`` or
    ``"bdk-aes256"``: fresh random keys unless a caller that needs known test keys (the
    published protocol examples, the DUKPT test BDKs) gives its own."""

    def __init__(self, vault: Vault, key_source: Callable[[str], bytes] = _fresh_key) -> None:
        self._vault = vault
        self._new_key = key_source
        # The host unseals the same few keys thousands of times per second; GCM decryption is
        # cheap but not free. Keyed by (aad, blob) rather than blob alone so that a cache hit
        # can never bypass the purpose binding. lru_cache is thread-safe and does not cache
        # exceptions, so a bad blob fails every time.
        self._unseal = functools.lru_cache(maxsize=UNSEALED_CACHE_SIZE)(self._unseal_key)
        # AES PIN keys and BDKs are not all 16 bytes; their lengths are checked at use.
        self._unseal_any = functools.lru_cache(maxsize=UNSEALED_CACHE_SIZE)(self._vault.unseal)

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
        _require_issuer_data(pvv, pvki)
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
        return _compare(pvk, pin, pan, pvv)

    # --- AES PIN keys, BDKs and DUKPT -------------------------------------------------

    def _unseal_sized(self, aad: bytes, blob: bytes, lengths: tuple[int, ...], what: str) -> bytes:
        key = self._unseal_any(bytes(blob), aad)
        if len(key) not in lengths:
            raise KeyCheckError(f"unsealed {what} has the wrong length")
        return key

    def new_aes_pin_key(self, tid: str, bits: int = 128) -> tuple[bytes, bytes, bytes]:
        """Generate an AES PIN key (format 4 PIN blocks) for ``tid``: AES-128, -192 or -256.

        Returns (sealed_key, clear_key, kcv) with the 3-byte AES-CMAC check value. The clear
        key is for the key-loading ceremony only, like a TMK's: wrapping an AES key under
        the double-length TDES TMK would protect it with a weaker key than itself.
        """
        if bits not in (128, 192, 256):
            raise KeyCheckError("an AES PIN key is 128, 192 or 256 bits")
        key = self._new_key(f"tpk-aes{bits}")
        if len(key) != bits // 8:
            raise KeyCheckError(f"the key source gave no AES-{bits} key")
        return self._seal_key(key, _aad("tpk-aes", tid)), key, dukpt.aes_kcv(key)

    def new_bdk(self, kind: BdkKind) -> tuple[bytes, bytes]:
        """Generate a base derivation key of ``kind``. Returns (sealed_bdk, kcv): the 4-byte
        TDES check value for a TDES BDK, the 3-byte AES-CMAC one for an AES BDK. The BDK is
        sealed for its family ("bdk:tdes" or "bdk:aes") and never leaves in clear."""
        kind = BdkKind(kind)
        bdk = self._new_key(f"bdk-{kind.value}")
        if len(bdk) != kind.key_len:
            raise KeyCheckError(f"the key source gave no {kind.value} BDK")
        check = kcv(bdk) if kind is BdkKind.TDES else dukpt.aes_kcv(bdk)
        return self._seal_key(bdk, _aad("bdk", kind.family)), check

    def _bdk(self, family: str, sealed_bdk: bytes) -> bytes:
        lengths = (16,) if family == "tdes" else (16, 32)
        return self._unseal_sized(_aad("bdk", family), sealed_bdk, lengths, "BDK")

    def derive_initial_key(
        self, kind: BdkKind, sealed_bdk: bytes, key_serial: bytes
    ) -> tuple[bytes, bytes]:
        """The DUKPT initial key of one terminal, for the key-loading ceremony.

        ``key_serial`` is the terminal's initial KSN (TDES: 10 bytes, counter zero) or its
        initial key ID (AES: 8 bytes, BDK ID + derivation ID). Returns (clear_initial_key,
        kcv); the terminal loads it into its register (``dukpt.TdesDukptRegister.load`` /
        ``AesDukptRegister.load``) and the host keeps nothing but the BDK. Raises
        KeyCheckError for a BDK blob of another kind and DukptError for a malformed serial.
        """
        kind = BdkKind(kind)
        bdk = self._bdk(kind.family, sealed_bdk)
        if len(bdk) != kind.key_len:
            raise KeyCheckError(f"the sealed BDK is not a {kind.value} BDK")
        if kind is BdkKind.TDES:
            if dukpt.tdes_counter(key_serial):
                raise dukpt.DukptError("an initial KSN has a zero counter")
            ipek = dukpt.tdes_ipek(bdk, key_serial)
            return ipek, kcv(ipek)
        initial_key = dukpt.aes_initial_key(bdk, key_serial)
        return initial_key, dukpt.aes_kcv(initial_key)

    def verify_pin_under(
        self,
        scheme: PinScheme,
        sealed_key: bytes,
        pin_block: bytes,
        pan: str,
        sealed_pvk: bytes,
        pvv: str,
        pvki: str = "1",
        *,
        tid: str | None = None,
        ksn: bytes | None = None,
    ) -> PinCheck:
        """Check a PIN block sent under ``scheme`` against the card's PIN offset ``pvv``.

        ``sealed_key`` is the terminal's sealed TPK (TPK_ISO0) or AES PIN key (AES_ISO4),
        both with ``tid``; or the sealed BDK (TDES_DUKPT_ISO0, AES_DUKPT_ISO4), with the
        ``ksn`` from the request. TPK_ISO0 is exactly :meth:`verify_pin`.

        Returns FORMAT_ERROR if the block has the wrong length for the scheme, does not
        decode as its format against ``pan``, ``pan`` is malformed or the KSN is malformed
        (wrong length, a counter no terminal sends); WRONG if the PIN does not match; OK if
        it does. Raises KeyCheckError for a key blob that is not this vault's key for the
        scheme (and terminal), and PinError for malformed issuer data or a missing ``tid``
        or ``ksn`` (caller errors, not terminal input).
        """
        scheme = PinScheme(scheme)
        if scheme is PinScheme.TPK_ISO0:
            tid = _need(tid, "tid")
            return self.verify_pin(tid, sealed_key, pin_block, pan, sealed_pvk, pvv, pvki)
        _require_issuer_data(pvv, pvki)
        if scheme is PinScheme.AES_ISO4:
            aad = _aad("tpk-aes", _need(tid, "tid"))
            key = self._unseal_sized(aad, sealed_key, AES_KEY_LENS, "AES PIN key")
            serial = b""
        else:
            family = "tdes" if scheme is PinScheme.TDES_DUKPT_ISO0 else "aes"
            key = self._bdk(family, sealed_key)
            serial = bytes(_need(ksn, "ksn"))
        pvk = self._unseal(b"pvk", bytes(sealed_pvk))
        if not is_valid_pan(pan):
            return PinCheck.FORMAT_ERROR
        try:
            pin = _decrypt_pin(scheme, key, serial, bytes(pin_block), pan)
        except ValueError:
            # DukptError (a bad KSN) is a ValueError too. psec's messages quote the decoded
            # digits, so the exception is dropped here rather than chained or logged.
            return PinCheck.FORMAT_ERROR
        return _compare(pvk, pin, pan, pvv)


def _decrypt_pin(scheme: PinScheme, key: bytes, ksn: bytes, pin_block: bytes, pan: str) -> str:
    """The PIN in ``pin_block`` under ``scheme`` (not TPK_ISO0): ``key`` is the AES PIN key
    or the BDK. Raises ValueError (its message may quote digits: never pass it on) for any
    block, KSN or PAN that does not decode."""
    if scheme is PinScheme.TDES_DUKPT_ISO0:
        transaction_key = dukpt.tdes_transaction_key(dukpt.tdes_ipek(key, ksn), ksn)
        pin_key = dukpt.tdes_working_key(transaction_key, dukpt.TdesKeyUsage.PIN)
        if len(pin_block) != PIN_BLOCK_LEN:
            raise ValueError("a format 0 PIN block is 8 bytes")
        # A one-off context: per-transaction keys are not worth a slot in the key cache.
        return decode_pinblock_iso_0(TdesKey(pin_key).decrypt_ecb(pin_block), pan)
    if scheme is PinScheme.AES_DUKPT_ISO4:
        initial_key = dukpt.aes_initial_key(key, ksn[: dukpt.AES_IKID_LEN])
        transaction_key = dukpt.aes_transaction_key(initial_key, ksn)
        key = dukpt.aes_working_key(transaction_key, ksn, dukpt.AesKeyUsage.PIN_ENCRYPTION)
    if len(pin_block) != PIN_BLOCK_ISO4_LEN:
        raise ValueError("a format 4 PIN block is 16 bytes")
    return decipher_pinblock_iso_4(key, pin_block, pan)


_T = TypeVar("_T")


def _need(value: _T | None, name: str) -> _T:
    if value is None:
        raise PinError(f"this PIN scheme needs {name}")
    return value
