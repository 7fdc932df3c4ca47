"""Keys at rest: AES-256-GCM sealing under a local key-encrypting key (the "LMK").

Blob layout: version byte 0x01 | 12-byte random nonce | ciphertext | 16-byte GCM tag.
The version byte is authenticated together with the caller's ``aad``, so neither can be
altered without unseal failing.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from smartpos.files import private_dir
from smartpos.keys.keys import KeyCheckError

__all__ = ["KEK_FILE_NAME", "VAULT_KEY_LEN", "Vault"]

VAULT_KEY_LEN = 32
KEK_FILE_NAME = "kek.bin"
_VERSION = b"\x01"
_NONCE_LEN = 12
_TAG_LEN = 16
_MIN_BLOB_LEN = len(_VERSION) + _NONCE_LEN + _TAG_LEN


class Vault:
    """Seals and unseals secrets under one AES-256 key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != VAULT_KEY_LEN:
            raise KeyCheckError(f"vault key must be {VAULT_KEY_LEN} bytes (AES-256)")
        self._aead = AESGCM(bytes(key))

    def __repr__(self) -> str:
        return "Vault(<key hidden>)"

    @classmethod
    def open_dir(cls, directory: Path) -> Vault:
        """Open the vault whose key is ``<directory>/kek.bin``, creating both on first use.

        The directory is created (with its parents) with mode 0700 or checked
        (``smartpos.files.private_dir``), the key file with mode 0600. Concurrent
        first opens from several processes agree on one key. Raises KeyCheckError if an
        existing key file is not exactly 32 bytes.
        """
        directory = private_dir(Path(directory))
        path = directory / KEK_FILE_NAME
        if not path.exists():
            _create_key_file(path)
        key = path.read_bytes()
        if len(key) != VAULT_KEY_LEN:
            raise KeyCheckError(f"{path} must hold exactly {VAULT_KEY_LEN} bytes")
        return cls(key)

    def seal(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        """Encrypt and authenticate ``plaintext``, bound to ``aad`` (e.g. b"tmk:12345678").

        Every call uses a fresh random nonce, so sealing the same plaintext twice gives
        different blobs.
        """
        nonce = os.urandom(_NONCE_LEN)
        return _VERSION + nonce + self._aead.encrypt(nonce, bytes(plaintext), _VERSION + aad)

    def unseal(self, blob: bytes, aad: bytes = b"") -> bytes:
        """Return the plaintext sealed in ``blob`` with the same ``aad``.

        Raises KeyCheckError if the blob is malformed, was tampered with, was sealed under
        another vault key, or was sealed for a different ``aad``.
        """
        blob = bytes(blob)
        if len(blob) < _MIN_BLOB_LEN or blob[:1] != _VERSION:
            raise KeyCheckError("sealed blob is malformed or of an unknown version")
        nonce = blob[1 : 1 + _NONCE_LEN]
        try:
            return self._aead.decrypt(nonce, blob[1 + _NONCE_LEN :], _VERSION + aad)
        except InvalidTag:
            raise KeyCheckError(
                "sealed blob failed authentication (tampered, wrong key or wrong purpose)"
            ) from None


def _create_key_file(path: Path) -> None:
    # Write the whole key to a private temporary file first, then hard-link it into place:
    # link() fails if the name exists, so a racing process can never observe a half-written
    # key nor overwrite one that another process already uses.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(os.urandom(VAULT_KEY_LEN))
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
