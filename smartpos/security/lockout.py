"""The lockout: :data:`MAX_FAILED_TRIES` failures in a row lock an account for
:data:`LOCK_MINUTES`.

Every secret counts alike — login and unlock passwords, second-factor codes, manager PINs —
so guessing one cannot be spread over the others. A success resets the count; a lock ends
by itself, and the next failure after it starts a fresh count. The counting is done with
``UPDATE … SET failed_tries = failed_tries + 1`` on the caller's transaction, so concurrent
failures are all counted.

The functions here work on the caller's connection and *return* the refusal rather than
raise it: the caller commits the counted failure first, then raises.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, select, update

from smartpos.security.errors import AuthError, AuthRefusal
from smartpos.security.passwords import Hasher
from smartpos.security.tables import staff
from smartpos.store.orders import utc

__all__ = [
    "LOCK_MINUTES",
    "MAX_FAILED_TRIES",
    "check_secret",
    "lock_end",
    "record_failure",
    "record_success",
]

MAX_FAILED_TRIES = 10
LOCK_MINUTES = 30


def lock_end(row: Any, now: datetime) -> datetime | None:
    """When the account of staff ``row`` unlocks, if it is locked at ``now``."""
    until = utc(row.locked_until)
    return until if until is not None and until > now else None


def record_failure(conn: Connection, staff_id: int, now: datetime) -> datetime | None:
    """Count a failed try of ``staff_id``; returns the end of the lock if the account is
    locked after it."""
    conn.execute(
        update(staff)
        .where(staff.c.id == staff_id, staff.c.locked_until <= now)
        .values(failed_tries=0, locked_until=None)
    )
    conn.execute(
        update(staff).where(staff.c.id == staff_id).values(failed_tries=staff.c.failed_tries + 1)
    )
    tries, until = conn.execute(
        select(staff.c.failed_tries, staff.c.locked_until).where(staff.c.id == staff_id)
    ).one()
    if tries < MAX_FAILED_TRIES:
        return None
    if until is None:
        until = now + timedelta(minutes=LOCK_MINUTES)
        conn.execute(update(staff).where(staff.c.id == staff_id).values(locked_until=until))
    return utc(until)


def record_success(conn: Connection, staff_id: int) -> None:
    """A right secret: the count of failures starts again from zero."""
    conn.execute(
        update(staff)
        .where(staff.c.id == staff_id, staff.c.failed_tries != 0)
        .values(failed_tries=0, locked_until=None)
    )


def check_secret(
    conn: Connection,
    row: Any,
    secret: str,
    *,
    column: Literal["password_hash", "pin_hash"],
    hasher: Hasher,
    now: datetime,
) -> AuthError | None:
    """Verify ``secret`` against staff ``row``'s password or PIN, with the lockout: None if
    it is right (the count reset, the hash renewed if its parameters are old), else the
    refusal to raise once the transaction is committed — ``bad_credentials`` for a wrong
    secret or no such account (``row`` None, verified against a dummy hash all the same),
    ``locked`` for a locked account whatever the secret, or when this failure locks it."""
    if row is None:
        hasher.verify(None, secret)
        return AuthError(AuthRefusal.BAD_CREDENTIALS)
    until = lock_end(row, now)
    if until is not None:
        return AuthError(AuthRefusal.LOCKED, unlocks_at=until)
    stored = getattr(row, column)
    if not hasher.verify(stored, secret):
        until = record_failure(conn, row.id, now)
        if until is not None:
            return AuthError(AuthRefusal.LOCKED, unlocks_at=until)
        return AuthError(AuthRefusal.BAD_CREDENTIALS)
    record_success(conn, row.id)
    if hasher.needs_rehash(stored):
        conn.execute(
            update(staff).where(staff.c.id == row.id).values({column: hasher.hash(secret)})
        )
    return None
