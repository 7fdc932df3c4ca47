"""DUKPT — derived unique key per transaction: TDES (ANSI X9.24-1:2009) and AES (ANSI X9.24-3-2017).

Each terminal is loaded once with an *initial key* derived from the acquirer's base derivation
key (BDK) and the terminal's key serial number (KSN, TDES) or initial key ID (AES). Every PIN
transaction then uses a key of its own, derived from the initial key along the bits of a
transaction counter that the KSN carries in the request. The host, holding only the BDK,
derives the same key from the KSN; the terminal never holds the BDK, and — the point of the
scheme — what it keeps after a transaction cannot give back the keys of earlier ones.

Host side: :func:`tdes_ipek` / :func:`tdes_transaction_key` and :func:`aes_initial_key` /
:func:`aes_transaction_key`, then the working key for a purpose (:func:`tdes_working_key`,
:func:`aes_working_key`). Terminal side: :class:`TdesDukptRegister` / :class:`AesDukptRegister`
hold the *future keys* (never the initial key once loaded) and hand out one (KSN, key) per
transaction, skipping counters with too many one-bits, never the same counter twice.

There is no well-kept DUKPT package on PyPI (the two there are TDES only, one of them a fresh
0.1.0 on a second crypto library, the other deriving wrong keys for some counters; none has AES
DUKPT), so this is written on ``cryptography``, checked against the standards' published test
vectors (tests/keys/test_dukpt.py; docs/pin-security.md lists them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import ClassVar, Self

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC
from psec.pinblock import encode_pinblock_iso_0

from smartpos.keys.pinblock import encrypt_pin_block_iso4, require_pin_and_pan
from smartpos.keys.tdes import TdesKey

__all__ = [
    "AES_IKID_LEN",
    "AES_KSN_LEN",
    "AES_LAST_COUNTER",
    "TDES_KSN_LEN",
    "TDES_LAST_COUNTER",
    "AesDukptRegister",
    "AesDukptTransaction",
    "AesKeyType",
    "AesKeyUsage",
    "DukptError",
    "TdesDukptRegister",
    "TdesDukptTransaction",
    "TdesKeyUsage",
    "aes_counter",
    "aes_initial_key",
    "aes_kcv",
    "aes_transaction_key",
    "aes_working_key",
    "tdes_counter",
    "tdes_initial_ksn",
    "tdes_ipek",
    "tdes_transaction_key",
    "tdes_working_key",
]


class DukptError(ValueError):
    """A KSN, counter, key or register state is malformed, or the counter is exhausted.

    Messages never contain key material."""


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


# --- Transaction counters ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Counter:
    """The counter rules of one DUKPT variant: ``bits`` wide, at most ``max_ones`` one-bits.

    The one-bit limit bounds the host's work (one derivation per one-bit) and the number of
    future keys the terminal keeps. The largest valid counter has its ``max_ones`` top bits
    set (TDES 0x1FF800, AES 0xFFFF0000): every larger value has more one-bits."""

    bits: int
    max_ones: int

    def valid(self, counter: int) -> bool:
        return 0 < counter < (1 << self.bits) and counter.bit_count() <= self.max_ones

    def after(self, counter: int) -> int | None:
        """The next valid counter above ``counter``, or None when there is none."""
        counter += 1
        while counter < (1 << self.bits):
            if counter.bit_count() <= self.max_ones:
                return counter
            # Everything below counter + its lowest one-bit keeps all of counter's one-bits
            # and adds more, so it is invalid too: jump over it.
            counter += counter & -counter
        return None

    def lowest_free_bit(self, counter: int) -> int:
        """The value of the lowest one-bit of ``counter`` (2**bits for 0): the bits below it
        are the ones a key derived for ``counter`` can still add."""
        return counter & -counter if counter else 1 << self.bits

    def is_ancestor(self, node: int, counter: int) -> bool:
        """True if the key for ``counter`` derives from the key for ``node`` (or is it)."""
        below = self.lowest_free_bit(node) - 1
        return (counter & ~below) == node

    def frontier(self, counter: int) -> list[int]:
        """The counters whose keys cover ``counter`` and every valid counter above it, none
        below it: ``counter`` itself and, for each zero bit j of it, the counter that agrees
        with it above j and has bit j set (X9.24's future key registers)."""
        nodes = [counter]
        for j in range(self.bits):
            bit = 1 << j
            if counter & bit:
                continue
            node = (counter >> (j + 1) << (j + 1)) | bit
            if node.bit_count() <= self.max_ones:
                nodes.append(node)
        return nodes


_TDES_COUNTER = _Counter(bits=21, max_ones=10)
_AES_COUNTER = _Counter(bits=32, max_ones=16)
TDES_LAST_COUNTER = 0x1FF800
"""The largest TDES counter with at most ten one-bits: 1,048,575 transactions in all."""
AES_LAST_COUNTER = 0xFFFF0000
"""The largest AES counter with at most sixteen one-bits."""


def _descend(
    rules: _Counter,
    key: bytes,
    node: int,
    counter: int,
    derive: Callable[[bytes, int], bytes],
) -> bytes:
    """The key for ``counter`` from the key for its ancestor ``node``: one derivation per
    one-bit that ``counter`` adds to ``node``, from the highest down."""
    bit = rules.lowest_free_bit(node) >> 1
    while bit:
        if counter & bit:
            node |= bit
            key = derive(key, node)
        bit >>= 1
    return key


# --- TDES DUKPT (ANSI X9.24-1:2009 Annex A) ---------------------------------------------

TDES_KSN_LEN = 10
_TDES_KEY_LEN = 16
_TDES_COUNTER_MASK = (1 << 21) - 1
_C0_MASK = bytes.fromhex("C0C0C0C000000000C0C0C0C000000000")


def _des(key8: bytes, block: bytes) -> bytes:
    # Single DES as K K K: the 24-byte form, the one cryptography takes without a warning.
    return Cipher(TripleDES(key8 * 3), modes.ECB()).encryptor().update(block)  # noqa: S305


def _tdes(key16: bytes, data: bytes) -> bytes:
    return Cipher(TripleDES(key16 + key16[:8]), modes.ECB()).encryptor().update(data)  # noqa: S305


def _require_tdes_key(key: bytes, what: str) -> bytes:
    if not isinstance(key, bytes | bytearray) or len(key) != _TDES_KEY_LEN:
        raise DukptError(f"{what} must be {_TDES_KEY_LEN} bytes (double-length TDES)")
    return bytes(key)


def _require_tdes_ksn(ksn: bytes) -> bytes:
    if not isinstance(ksn, bytes | bytearray) or len(ksn) != TDES_KSN_LEN:
        raise DukptError(f"a TDES DUKPT KSN is {TDES_KSN_LEN} bytes")
    return bytes(ksn)


def tdes_counter(ksn: bytes) -> int:
    """The 21-bit transaction counter of a 10-byte KSN."""
    return int.from_bytes(_require_tdes_ksn(ksn), "big") & _TDES_COUNTER_MASK


def _tdes_with_counter(ksn: bytes, counter: int) -> bytes:
    value = (int.from_bytes(ksn, "big") & ~_TDES_COUNTER_MASK) | counter
    return value.to_bytes(TDES_KSN_LEN, "big")


def tdes_initial_ksn(key_set_id: bytes, device_id: int) -> bytes:
    """The initial KSN (counter zero) of device ``device_id`` (19 bits) in key set
    ``key_set_id`` (5 bytes, the first of them naming the BDK), laid out as X9.24-1's
    examples: key set ID, device ID, 21-bit counter."""
    if len(key_set_id) != 5:
        raise DukptError("a key set ID is 5 bytes")
    if not 0 <= device_id < 1 << 19:
        raise DukptError("a device ID is 19 bits")
    value = int.from_bytes(key_set_id, "big") << 40 | device_id << 21
    return value.to_bytes(TDES_KSN_LEN, "big")


def tdes_ipek(bdk: bytes, ksn: bytes) -> bytes:
    """The initial PIN encryption key (IPEK) of the device with ``ksn`` (any counter): the
    KSN's left 8 bytes with the counter bits cleared, TDES-encrypted under the BDK and under
    the BDK XOR C0C0C0C000000000C0C0C0C000000000 (X9.24-1:2009 A.6)."""
    bdk = _require_tdes_key(bdk, "BDK")
    left8 = _tdes_with_counter(_require_tdes_ksn(ksn), 0)[:8]
    return _tdes(bdk, left8) + _tdes(_xor(bdk, _C0_MASK), left8)


def _nonreversible(key: bytes, ksn_register: bytes) -> bytes:
    """X9.24-1:2009 A.2 "non-reversible key generation" of the next key from ``key`` and
    the KSN register (the KSN's right 8 bytes with the counter so far)."""
    right = key[8:]
    right_half = _xor(_des(key[:8], _xor(ksn_register, right)), right)
    variant = _xor(key, _C0_MASK)
    left_half = _xor(_des(variant[:8], _xor(ksn_register, variant[8:])), variant[8:])
    return left_half + right_half


def _tdes_deriver(ksn: bytes) -> Callable[[bytes, int], bytes]:
    def derive(key: bytes, counter: int) -> bytes:
        return _nonreversible(key, _tdes_with_counter(ksn, counter)[2:])

    return derive


def tdes_transaction_key(ipek: bytes, ksn: bytes) -> bytes:
    """The current transaction key for ``ksn`` derived from the device's IPEK: the host
    side of X9.24-1:2009 A.3. Raises DukptError for a counter that no device sends (zero, or
    more than ten one-bits)."""
    ipek = _require_tdes_key(ipek, "IPEK")
    counter = tdes_counter(ksn)
    if not _TDES_COUNTER.valid(counter):
        raise DukptError("the KSN's counter is zero or has more than ten one-bits")
    return _descend(_TDES_COUNTER, ipek, 0, counter, _tdes_deriver(bytes(ksn)))


class TdesKeyUsage(StrEnum):
    """What a TDES DUKPT transaction key is turned into (X9.24-1:2009 A.4.1, table A-1)."""

    PIN = "pin"
    MAC_REQUEST = "mac-request"
    MAC_RESPONSE = "mac-response"
    DATA_REQUEST = "data-request"
    DATA_RESPONSE = "data-response"


_TDES_VARIANTS = {
    TdesKeyUsage.PIN: bytes.fromhex("00000000000000FF00000000000000FF"),
    TdesKeyUsage.MAC_REQUEST: bytes.fromhex("000000000000FF00000000000000FF00"),
    TdesKeyUsage.MAC_RESPONSE: bytes.fromhex("00000000FF00000000000000FF000000"),
    TdesKeyUsage.DATA_REQUEST: bytes.fromhex("0000000000FF00000000000000FF0000"),
    TdesKeyUsage.DATA_RESPONSE: bytes.fromhex("000000FF00000000000000FF00000000"),
}


def tdes_working_key(transaction_key: bytes, usage: TdesKeyUsage) -> bytes:
    """The key for ``usage``: the transaction key XOR the usage's variant; for data
    encryption that variant is further TDES-encrypted under itself (X9.24-1:2009 A.4.1,
    figure A-2), so a data key does not reveal the PIN key's sibling variant.

    MAC keys are for ANSI X9.19 (``smartpos.keys.mac``, X9.24-1's examples keep the MAC's
    left 4 bytes); data keys for TDES-CBC."""
    key = _require_tdes_key(transaction_key, "transaction key")
    variant = _xor(key, _TDES_VARIANTS[TdesKeyUsage(usage)])
    if usage in (TdesKeyUsage.DATA_REQUEST, TdesKeyUsage.DATA_RESPONSE):
        return _tdes(variant, variant)
    return variant


# --- AES DUKPT (ANSI X9.24-3-2017) ------------------------------------------------------

AES_IKID_LEN = 8
AES_KSN_LEN = 12
_AES_BLOCK = 16


class AesKeyType(StrEnum):
    """AES key types of X9.24-3 (initial, intermediate and working keys)."""

    AES128 = "aes128"
    AES192 = "aes192"
    AES256 = "aes256"

    @property
    def length(self) -> int:
        """Key length in bytes."""
        return {"aes128": 16, "aes192": 24, "aes256": 32}[self.value]

    @property
    def _algorithm(self) -> int:
        # X9.24-3-2017 6.3.2, table 2: 2 = AES-128, 3 = AES-192, 4 = AES-256.
        return {"aes128": 2, "aes192": 3, "aes256": 4}[self.value]

    @classmethod
    def of(cls, key: bytes) -> AesKeyType:
        """The type of an AES key by its length."""
        return cls.of_length(len(key))

    @classmethod
    def of_length(cls, length: int) -> AesKeyType:
        for key_type in cls:
            if length == key_type.length:
                return key_type
        raise DukptError("an AES key is 16, 24 or 32 bytes")


class AesKeyUsage(IntEnum):
    """Key usage indicators of X9.24-3-2017 6.3.2, table 2 (working keys)."""

    KEY_ENCRYPTION = 0x0002
    PIN_ENCRYPTION = 0x1000
    MAC_GENERATION = 0x2000
    MAC_VERIFICATION = 0x2001
    MAC_BOTH = 0x2002
    DATA_ENCRYPT = 0x3000
    DATA_DECRYPT = 0x3001
    DATA_BOTH = 0x3002


_AES_KEY_DERIVATION = 0x8000
_AES_INITIAL_KEY = 0x8001


def _aes_derive(key: bytes, usage: int, key_type: AesKeyType, data8: bytes) -> bytes:
    """X9.24-3-2017 6.3: AES-ECB under ``key`` of the 16-byte derivation data (version 01,
    block counter, usage, algorithm, key length in bits, 8 bytes of KSN data), one block per
    16 bytes of the derived key."""
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305
    header = usage.to_bytes(2, "big") + key_type._algorithm.to_bytes(2, "big")
    header += (key_type.length * 8).to_bytes(2, "big")
    blocks = -(-key_type.length // _AES_BLOCK)
    out = b"".join(
        encryptor.update(bytes([0x01, counter]) + header + data8)
        for counter in range(1, blocks + 1)
    )
    return out[: key_type.length]


def _require_aes_ksn(ksn: bytes) -> bytes:
    if not isinstance(ksn, bytes | bytearray) or len(ksn) != AES_KSN_LEN:
        raise DukptError(f"an AES DUKPT KSN is {AES_KSN_LEN} bytes (initial key ID + counter)")
    return bytes(ksn)


def aes_counter(ksn: bytes) -> int:
    """The 32-bit transaction counter of a 12-byte AES DUKPT KSN."""
    return int.from_bytes(_require_aes_ksn(ksn)[AES_IKID_LEN:], "big")


def aes_initial_key(bdk: bytes, initial_key_id: bytes) -> bytes:
    """The initial key of the device with ``initial_key_id`` (8 bytes: BDK ID, derivation
    ID), of the BDK's own type (X9.24-3-2017 6.3.1, usage 8001)."""
    if len(initial_key_id) != AES_IKID_LEN:
        raise DukptError(f"an initial key ID is {AES_IKID_LEN} bytes")
    bdk = bytes(bdk)
    return _aes_derive(bdk, _AES_INITIAL_KEY, AesKeyType.of(bdk), bytes(initial_key_id))


def _aes_deriver(initial_key_id: bytes, key_type: AesKeyType) -> Callable[[bytes, int], bytes]:
    tail = initial_key_id[4:AES_IKID_LEN]

    def derive(key: bytes, counter: int) -> bytes:
        return _aes_derive(key, _AES_KEY_DERIVATION, key_type, tail + counter.to_bytes(4, "big"))

    return derive


def aes_transaction_key(initial_key: bytes, ksn: bytes) -> bytes:
    """The derivation key for ``ksn``'s counter from the device's initial key (the host side
    of X9.24-3-2017 6.4). Raises DukptError for a counter that no device sends (zero, or more
    than sixteen one-bits)."""
    initial_key = bytes(initial_key)
    key_type = AesKeyType.of(initial_key)
    counter = aes_counter(ksn)
    if not _AES_COUNTER.valid(counter):
        raise DukptError("the KSN's counter is zero or has more than sixteen one-bits")
    return _descend(_AES_COUNTER, initial_key, 0, counter, _aes_deriver(bytes(ksn), key_type))


def aes_working_key(
    transaction_key: bytes,
    ksn: bytes,
    usage: AesKeyUsage,
    key_type: AesKeyType | None = None,
) -> bytes:
    """The working key for ``usage`` from the transaction key of ``ksn`` (X9.24-3-2017 6.3.3):
    of ``key_type`` (default: the transaction key's own type; never stronger than it,
    6.1.3). Use PIN_ENCRYPTION for format 4 PIN blocks, MAC_GENERATION / MAC_VERIFICATION for
    the request / response AES-CMAC, DATA_ENCRYPT / DATA_DECRYPT for request / response
    data."""
    transaction_key = bytes(transaction_key)
    own = AesKeyType.of(transaction_key)
    key_type = own if key_type is None else AesKeyType(key_type)
    if key_type.length > own.length:
        raise DukptError("a working key cannot be stronger than the key it derives from")
    ksn = _require_aes_ksn(ksn)
    return _aes_derive(transaction_key, AesKeyUsage(usage), key_type, ksn[4:])


def aes_kcv(key: bytes) -> bytes:
    """The 3-byte check value of an AES key: AES-CMAC of 16 zero bytes, left 3 bytes (the
    AES method of X9.24-1 and TR-31, which HSMs display)."""
    key = bytes(key)
    AesKeyType.of(key)
    mac = CMAC(algorithms.AES(key))
    mac.update(bytes(_AES_BLOCK))
    return mac.finalize()[:3]


# --- The terminal side: transactions and key registers ----------------------------------


@dataclass(frozen=True, slots=True)
class TdesDukptTransaction:
    """One TDES DUKPT transaction: the KSN to send and its transaction key (memory only)."""

    ksn: bytes
    key: bytes = field(repr=False)

    @property
    def counter(self) -> int:
        return tdes_counter(self.ksn)

    def working_key(self, usage: TdesKeyUsage) -> bytes:
        return tdes_working_key(self.key, usage)

    def encrypt_pin(self, pin: str, pan: str) -> bytes:
        """The 8-byte ISO 9564 format 0 PIN block under this transaction's PIN key.

        Raises PinError for a PIN that is not 4 to 12 digits or a PAN not 13 to 19."""
        require_pin_and_pan(pin, pan)
        # A one-off cipher context: the per-key cache in smartpos.keys.tdes would keep every
        # transaction's key alive in memory, which is what DUKPT exists to avoid.
        clear = encode_pinblock_iso_0(pin, pan)
        return TdesKey(self.working_key(TdesKeyUsage.PIN)).encrypt_ecb(clear)


@dataclass(frozen=True, slots=True)
class AesDukptTransaction:
    """One AES DUKPT transaction: the 12-byte KSN to send and its transaction key."""

    ksn: bytes
    key: bytes = field(repr=False)

    @property
    def counter(self) -> int:
        return aes_counter(self.ksn)

    def working_key(self, usage: AesKeyUsage, key_type: AesKeyType | None = None) -> bytes:
        return aes_working_key(self.key, self.ksn, usage, key_type)

    def encrypt_pin(self, pin: str, pan: str) -> bytes:
        """The 16-byte ISO 9564 format 4 PIN block under this transaction's PIN key (of the
        initial key's type). Raises PinError for a malformed PIN or PAN."""
        return encrypt_pin_block_iso4(self.working_key(AesKeyUsage.PIN_ENCRYPTION), pin, pan)


_STATE_VERSION = 0x01
_EXHAUSTED = 0x01


class _Register:
    """The originator's key register shared by both variants.

    It keeps the keys of the counters in ``_Counter.frontier(next counter)`` and nothing
    else: every future key derives from one of them, and none of them derives any key of a
    counter already used, nor the initial key. ``next_transaction`` hands out the key of the
    next counter, derives what the frontier of the following counter needs and drops the
    rest, so a counter is never handed out twice by one register. Python cannot wipe the
    dropped bytes from memory; what survives a restart is only what ``to_bytes`` wrote."""

    _KIND: ClassVar[int]
    _RULES: ClassVar[_Counter]
    _KSN_LEN: ClassVar[int]

    __slots__ = ("_keys", "_ksn", "_next")

    def __init__(self, ksn: bytes, next_counter: int | None, keys: dict[int, bytes]) -> None:
        self._ksn = ksn  # the KSN with a zero counter
        self._next = next_counter
        self._keys = keys

    def __repr__(self) -> str:
        where = "exhausted" if self._next is None else self._with_counter(self._next).hex()
        return f"{type(self).__name__}(ksn={where}, <keys hidden>)"

    # Variant-specific parts.
    def _with_counter(self, counter: int) -> bytes:
        raise NotImplementedError

    def _deriver(self, key_len: int) -> Callable[[bytes, int], bytes]:
        raise NotImplementedError

    @classmethod
    def _valid_key_len(cls, length: int) -> bool:
        raise NotImplementedError

    @classmethod
    def _zero_counter(cls, ksn: bytes) -> bytes:
        raise NotImplementedError

    # Shared machinery.
    @classmethod
    def _from_initial(cls, initial_key: bytes, ksn: bytes, start: int) -> Self:
        register = cls(ksn, start, {})
        derive = register._deriver(len(initial_key))
        register._keys = {
            node: _descend(cls._RULES, initial_key, 0, node, derive)
            for node in cls._RULES.frontier(start)
        }
        return register

    @property
    def exhausted(self) -> bool:
        """True once the last counter has been handed out: the terminal needs a new key."""
        return self._next is None

    @property
    def next_ksn(self) -> bytes | None:
        """The KSN the next transaction will carry (None when exhausted)."""
        return None if self._next is None else self._with_counter(self._next)

    def _take(self) -> tuple[bytes, bytes]:
        if self._next is None:
            raise DukptError("the DUKPT counter is exhausted: load a new initial key")
        counter = self._next
        key = self._keys[counter]
        following = self._RULES.after(counter)
        keys: dict[int, bytes] = {}
        if following is not None:
            derive = self._deriver(len(key))
            for node in self._RULES.frontier(following):
                held = self._keys.get(node)
                if held is None:
                    # The deepest held ancestor: the fewest derivations.
                    parent = min(
                        (p for p in self._keys if self._RULES.is_ancestor(p, node)),
                        key=self._RULES.lowest_free_bit,
                    )
                    held = _descend(self._RULES, self._keys[parent], parent, node, derive)
                keys[node] = held
        self._keys = keys
        self._next = following
        return self._with_counter(counter), key

    def to_bytes(self) -> bytes:
        """The register's state, to keep sealed (it holds keys): version, variant, key
        length, flags, the next KSN (zero counter when exhausted), the future keys."""
        if self._next is None:
            return bytes([_STATE_VERSION, self._KIND, 0, _EXHAUSTED]) + self._ksn
        keys = [self._keys[node] for node in self._RULES.frontier(self._next)]
        head = bytes([_STATE_VERSION, self._KIND, len(keys[0]), 0])
        return head + self._with_counter(self._next) + b"".join(keys)

    @classmethod
    def from_bytes(cls, state: bytes) -> Self:
        """The register that :meth:`to_bytes` wrote. Raises DukptError unless ``state`` is a
        well-formed state of this variant."""
        state = bytes(state)
        head = 4 + cls._KSN_LEN
        if len(state) < head or state[0] != _STATE_VERSION or state[1] != cls._KIND:
            raise DukptError(f"not a {cls.__name__} state")
        key_len, flags, ksn = state[2], state[3], state[4:head]
        if flags == _EXHAUSTED:
            if len(state) != head or ksn != cls._zero_counter(ksn):
                raise DukptError(f"malformed {cls.__name__} state")
            return cls(ksn, None, {})
        counter = int.from_bytes(ksn, "big") & ((1 << cls._RULES.bits) - 1)
        if flags != 0 or not cls._valid_key_len(key_len) or not cls._RULES.valid(counter):
            raise DukptError(f"malformed {cls.__name__} state")
        nodes = cls._RULES.frontier(counter)
        if len(state) != head + key_len * len(nodes):
            raise DukptError(f"malformed {cls.__name__} state")
        keys = {
            node: state[head + i * key_len : head + (i + 1) * key_len]
            for i, node in enumerate(nodes)
        }
        return cls(cls._zero_counter(ksn), counter, keys)


class TdesDukptRegister(_Register):
    """A PIN pad's TDES DUKPT key register (X9.24-1:2009): 21-bit counter, at most ten
    one-bits, last counter 0x1FF800.

    Load once with :meth:`load` at the key-loading ceremony; per PIN transaction call
    :meth:`next_transaction`, **store** :meth:`to_bytes` (sealed) **before** sending what the
    transaction's key encrypted, so that a restart cannot hand the same counter out again."""

    _KIND = 0x01
    _RULES = _TDES_COUNTER
    _KSN_LEN = TDES_KSN_LEN
    __slots__ = ()

    @classmethod
    def load(cls, ipek: bytes, initial_ksn: bytes) -> TdesDukptRegister:
        """The register of a device just loaded with ``ipek`` and its ``initial_ksn``
        (counter zero). The IPEK is not kept: only the future keys derived from it."""
        ipek = _require_tdes_key(ipek, "IPEK")
        ksn = _require_tdes_ksn(initial_ksn)
        if tdes_counter(ksn):
            raise DukptError("an initial KSN has a zero counter")
        return cls._from_initial(ipek, ksn, 1)

    def next_transaction(self) -> TdesDukptTransaction:
        """The next (KSN, transaction key); raises DukptError once exhausted."""
        ksn, key = self._take()
        return TdesDukptTransaction(ksn=ksn, key=key)

    def _with_counter(self, counter: int) -> bytes:
        return _tdes_with_counter(self._ksn, counter)

    def _deriver(self, key_len: int) -> Callable[[bytes, int], bytes]:
        return _tdes_deriver(self._ksn)

    @classmethod
    def _valid_key_len(cls, length: int) -> bool:
        return length == _TDES_KEY_LEN

    @classmethod
    def _zero_counter(cls, ksn: bytes) -> bytes:
        return _tdes_with_counter(ksn, 0)


class AesDukptRegister(_Register):
    """A PIN pad's AES DUKPT key register (X9.24-3-2017): 12-byte KSN (initial key ID +
    32-bit counter), at most sixteen one-bits, last counter 0xFFFF0000. Same rules of use
    as :class:`TdesDukptRegister`."""

    _KIND = 0x02
    _RULES = _AES_COUNTER
    _KSN_LEN = AES_KSN_LEN
    __slots__ = ()

    @classmethod
    def load(cls, initial_key: bytes, initial_key_id: bytes) -> AesDukptRegister:
        """The register of a device just loaded with ``initial_key`` (AES-128/192/256) and
        its 8-byte ``initial_key_id``; the initial key is not kept."""
        initial_key = bytes(initial_key)
        AesKeyType.of(initial_key)
        if len(initial_key_id) != AES_IKID_LEN:
            raise DukptError(f"an initial key ID is {AES_IKID_LEN} bytes")
        return cls._from_initial(initial_key, bytes(initial_key_id) + bytes(4), 1)

    def next_transaction(self) -> AesDukptTransaction:
        """The next (KSN, transaction key); raises DukptError once exhausted."""
        ksn, key = self._take()
        return AesDukptTransaction(ksn=ksn, key=key)

    def _with_counter(self, counter: int) -> bytes:
        return self._ksn[:AES_IKID_LEN] + counter.to_bytes(4, "big")

    def _deriver(self, key_len: int) -> Callable[[bytes, int], bytes]:
        return _aes_deriver(self._ksn[:AES_IKID_LEN], AesKeyType.of_length(key_len))

    @classmethod
    def _valid_key_len(cls, length: int) -> bool:
        return length in (16, 24, 32)

    @classmethod
    def _zero_counter(cls, ksn: bytes) -> bytes:
        return ksn[:AES_IKID_LEN] + bytes(4)
