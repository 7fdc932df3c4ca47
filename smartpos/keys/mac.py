"""Message authentication codes over ISO 8583 messages, keyed by the terminal MAC key (TAK)."""

from __future__ import annotations

import hmac
from enum import StrEnum

from smartpos.keys.keys import require_key
from smartpos.keys.tdes import tdes_key

__all__ = ["MAC_LEN", "MacAlgorithm", "compute_mac", "verify_mac"]

MAC_LEN = 8
_BLOCK = 8


class MacAlgorithm(StrEnum):
    """MAC algorithms an acquirer profile can select."""

    X919 = "x9.19"
    """ANSI X9.19 / ISO 9797-1 MAC algorithm 3 ("retail MAC"), zero padding, 8-byte MAC."""
    CUP_ECB = "cup-ecb"
    """China UnionPay POS "ECB" MAC: XOR-fold, then two TDES rounds over the hex digest."""


def _cup_ecb_mac(tak: bytes, data: bytes) -> bytes:
    padded = data + b"\x00" * (-len(data) % _BLOCK)
    folded = 0
    for offset in range(0, len(padded), _BLOCK):
        folded ^= int.from_bytes(padded[offset : offset + _BLOCK], "big")
    hex_digest = folded.to_bytes(_BLOCK, "big").hex().upper().encode("ascii")
    key = tdes_key(tak)
    first = key.encrypt_ecb(hex_digest[:_BLOCK])
    mixed = bytes(a ^ b for a, b in zip(first, hex_digest[_BLOCK:], strict=True))
    second = key.encrypt_ecb(mixed)
    return second.hex().upper().encode("ascii")[:MAC_LEN]


def compute_mac(algorithm: MacAlgorithm, tak: bytes, data: bytes) -> bytes:
    """Return the 8-byte MAC of ``data`` under the 16-byte ``tak`` with ``algorithm``.

    ``algorithm`` may also be given as its string value (e.g. from a profile file).

    Raises KeyCheckError if ``tak`` is not a 16-byte key.
    """
    require_key(tak, "TAK")
    tak = bytes(tak)
    data = bytes(data)
    if algorithm == MacAlgorithm.X919:
        # ISO 9797-1 padding method 1: zero bytes up to a whole block (at least one block).
        padded = data + b"\x00" * (-len(data) % _BLOCK) if data else b"\x00" * _BLOCK
        return tdes_key(tak).retail_mac(padded)[:MAC_LEN]
    if algorithm == MacAlgorithm.CUP_ECB:
        return _cup_ecb_mac(tak, data)
    raise ValueError(f"unsupported MAC algorithm: {algorithm!r}")


def verify_mac(algorithm: MacAlgorithm, tak: bytes, data: bytes, mac: bytes) -> bool:
    """True if ``mac`` is the MAC of ``data`` under ``tak``; False otherwise, including for a
    ``mac`` of the wrong length. The comparison runs in constant time."""
    if len(mac) != MAC_LEN:
        return False
    return hmac.compare_digest(compute_mac(algorithm, tak, data), bytes(mac))
