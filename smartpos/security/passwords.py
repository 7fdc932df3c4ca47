"""Hashing what people type — passwords, manager PINs, SMS codes — with argon2id.

One :class:`Hasher` is shared by the security services. Production uses argon2-cffi's
default parameters (argon2id, 64 MiB, 3 passes); tests pass a cheap ``PasswordHasher`` so the
suite stays fast. A hash made under other parameters still verifies and is replaced at the
next successful login (:meth:`Hasher.needs_rehash`)."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["SECRET_MAX_CHARS", "Hasher"]

# Longer input is refused unverified: argon2 would take it, but nobody types this much.
SECRET_MAX_CHARS = 1024


class Hasher:
    """argon2id hashing and verification, with a dummy hash for accounts that do not exist."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._ph = hasher or PasswordHasher()
        if self._ph.type is not Type.ID:
            raise ValueError("staff secrets are hashed with argon2id only")
        self._dummy: str | None = None

    def hash(self, secret: str) -> str:
        """The argon2id hash of ``secret`` (its own random salt each time)."""
        return self._ph.hash(secret)

    def verify(self, stored: str | None, secret: str) -> bool:
        """Whether ``secret`` matches ``stored``. With no stored hash (an unknown account, a
        manager without a PIN) the secret is verified against a dummy hash of the same
        parameters, so the time taken does not tell the cases apart; the answer is False."""
        if len(secret) > SECRET_MAX_CHARS:
            return False
        if stored is None:
            if self._dummy is None:
                self._dummy = self._ph.hash(secrets.token_urlsafe(16))
            self._verify(self._dummy, secret)
            return False
        return self._verify(stored, secret)

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made under other parameters than this hasher's."""
        try:
            return self._ph.check_needs_rehash(stored)
        except InvalidHashError:
            return True

    def _verify(self, stored: str, secret: str) -> bool:
        try:
            return self._ph.verify(stored, secret)
        except (VerificationError, InvalidHashError):
            return False
