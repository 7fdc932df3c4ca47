"""Double-length TDES with cipher contexts kept per key: the host and terminal hot path.

psec (the library behind PIN blocks, MACs and PIN offsets here) builds a new `cryptography`
cipher for every call, and each build goes through cryptography's deprecation machinery for
two-key TDES. On the host that set-up was about 85 µs of a MAC and ~20 % of the CPU spent on
a purchase (see docs/benchmarks.md). This module does the same operations on contexts created
once per key:

* ECB encryptor and decryptor: ECB carries no state between blocks, so one context serves
  every call.
* ISO 9797-1 MAC algorithm 3 (X9.19 "retail MAC"): single-DES CBC under K1 over all blocks but
  the last, then E(K1) D(K2) E(K1) — two-key TDES — on the last chaining value. The CBC
  context is kept too: it chains from the last ciphertext block it produced, so the first
  block of the next message is XORed with that block, which cancels the chaining and makes
  the call equal to a fresh CBC with a zero IV. A lock makes that read-modify-write safe
  across threads.

psec stays the reference: tests/keys/test_tdes.py checks every function here against it on
random keys and data, including many messages in a row under the same key.
"""

from __future__ import annotations

import functools
import threading

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, modes

__all__ = ["BLOCK", "CACHE_SIZE", "TdesKey", "tdes_key"]

BLOCK = 8
CACHE_SIZE = 4096
"""Most keys with cached contexts: one TPK and one TAK per active terminal, plus PVKs."""
_ZERO_IV = bytes(BLOCK)


def _ecb(key24: bytes) -> Cipher[modes.ECB]:
    # ECB on single 8-byte blocks is what the PIN-block, MAC and PIN-offset standards specify.
    return Cipher(TripleDES(key24), modes.ECB())  # noqa: S305


class TdesKey:
    """One 16-byte double-length TDES key (K1 ‖ K2) with its cipher contexts."""

    __slots__ = ("_cbc_k1", "_chain", "_dec", "_enc", "_lock")

    def __init__(self, key: bytes) -> None:
        if len(key) != 16:
            raise ValueError("a double-length TDES key is 16 bytes")
        k1, k2 = key[:8], key[8:]
        # 24-byte key forms: K1 K2 K1 is two-key TDES; K1 K1 K1 is single DES under K1.
        ede = _ecb(k1 + k2 + k1)
        self._enc: CipherContext = ede.encryptor()
        self._dec: CipherContext = ede.decryptor()
        self._cbc_k1: CipherContext = Cipher(TripleDES(k1 * 3), modes.CBC(_ZERO_IV)).encryptor()
        self._chain = 0  # the last ciphertext block the CBC context produced, as an int
        self._lock = threading.Lock()

    def encrypt_ecb(self, data: bytes) -> bytes:
        """TDES-ECB encrypt ``data`` (a multiple of 8 bytes)."""
        _require_blocks(data)
        with self._lock:
            return self._enc.update(data)

    def decrypt_ecb(self, data: bytes) -> bytes:
        """TDES-ECB decrypt ``data`` (a multiple of 8 bytes)."""
        _require_blocks(data)
        with self._lock:
            return self._dec.update(data)

    def retail_mac(self, data: bytes) -> bytes:
        """ISO 9797-1 MAC algorithm 3 of ``data`` (already padded to a multiple of 8 bytes,
        at least one block): the full 8-byte MAC."""
        _require_blocks(data)
        last = int.from_bytes(data[-BLOCK:], "big")
        with self._lock:
            if len(data) > BLOCK:
                first = int.from_bytes(data[:BLOCK], "big") ^ self._chain
                out = self._cbc_k1.update(first.to_bytes(BLOCK, "big") + data[BLOCK:-BLOCK])
                h = int.from_bytes(out[-BLOCK:], "big")
                self._chain = h
            else:
                h = 0
            return self._enc.update((h ^ last).to_bytes(BLOCK, "big"))


def _require_blocks(data: bytes) -> None:
    if not data or len(data) % BLOCK:
        raise ValueError("TDES data must be a non-empty multiple of 8 bytes")


@functools.lru_cache(maxsize=CACHE_SIZE)
def tdes_key(key: bytes) -> TdesKey:
    """The cached contexts for ``key`` (16 bytes), created on first use."""
    return TdesKey(bytes(key))
