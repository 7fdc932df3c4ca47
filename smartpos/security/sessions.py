"""Server-side sessions: the browser holds a random token, the database its SHA-256 only.

A session is *live* until it ends: at logout, when its staff is disabled (or locked out
through it), :data:`SESSION_MAX_HOURS` after login whatever happens, and — for an
admin-mode login still waiting for its second factor — :data:`PENDING_MINUTES` after login.
A live session idle for longer than ``idle_lock_minutes`` is *locked*: it is still
returned, with ``locked=True``, and allows nothing but unlocking with its own operator's
password or logging out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from smartpos.security.tables import staff, staff_sessions
from smartpos.store.orders import Clock, utc

__all__ = [
    "IDLE_LOCK_MINUTES",
    "PENDING_MINUTES",
    "SESSION_MAX_HOURS",
    "TOKEN_MAX_CHARS",
    "Session",
    "Sessions",
    "check_csrf",
    "token_sha256",
]

SESSION_MAX_HOURS = 12  # a working day and a half: then log in again
PENDING_MINUTES = 10  # to type the second factor of an admin-mode login
IDLE_LOCK_MINUTES = 15
TOKEN_MAX_CHARS = 64  # token_urlsafe(32) is 43; anything much longer is not ours
MODES = ("admin", "cashier")


def _now_utc() -> datetime:
    return datetime.now(UTC)


def token_sha256(token: str) -> str:
    """What the database keeps of a session token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Session:
    """A live session. ``token`` is the caller's own (the database does not have it);
    ``csrf`` is the token every state-changing request must carry."""

    id: int
    token: str
    staff_id: int
    mode: str  # admin | cashier
    csrf: str
    second_factor_ok: bool  # always True in cashier mode
    locked: bool
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime

    @property
    def usable(self) -> bool:
        """Whether the session may do anything beyond unlock, second factor and logout."""
        return self.second_factor_ok and not self.locked


def check_csrf(session: Session, token: str | None) -> bool:
    """Whether ``token`` is ``session``'s CSRF token (compared in constant time)."""
    if not token:
        return False
    return hmac.compare_digest(token.encode("utf-8"), session.csrf.encode("utf-8"))


class Sessions:
    """Sessions on the POS database ``engine``."""

    def __init__(
        self,
        engine: Engine,
        *,
        idle_lock_minutes: int = IDLE_LOCK_MINUTES,
        clock: Clock = _now_utc,
    ) -> None:
        if idle_lock_minutes < 1:
            raise ValueError("idle_lock_minutes must be at least 1")
        self.engine = engine
        self.idle = timedelta(minutes=idle_lock_minutes)
        self.clock = clock

    def start(self, conn: Connection, staff_id: int, mode: str, now: datetime) -> Session:
        """A new session of ``staff_id`` on the caller's transaction; admin mode starts
        waiting for its second factor."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        token = secrets.token_urlsafe(32)
        values = {
            "token_sha256": token_sha256(token),
            "staff_id": staff_id,
            "mode": mode,
            "csrf": secrets.token_urlsafe(32),
            "second_factor_ok": mode == "cashier",
            "locked": False,
            "created_at": now,
            "last_seen_at": now,
        }
        session_id = conn.execute(
            insert(staff_sessions).values(values).returning(staff_sessions.c.id)
        ).scalar_one()
        return self._session({**values, "id": session_id}, token)

    def session(self, token: str, now: datetime | None = None) -> Session | None:
        """The live session of ``token`` (locked or waiting for the second factor too), or
        None: unknown, ended, expired, or its staff disabled. A session idle too long is
        locked here."""
        with self.engine.begin() as conn:
            return self.live(conn, token, now or self.clock())

    def touch(self, token: str) -> Session | None:
        """The request of a usable session: it is seen now (the idle time starts again).
        A locked or pending session is not touched. Returns the session as :meth:`session`."""
        now = self.clock()
        with self.engine.begin() as conn:
            found = self.live(conn, token, now)
            if found is None or not found.usable:
                return found
            conn.execute(
                update(staff_sessions)
                .where(staff_sessions.c.id == found.id)
                .values(last_seen_at=now)
            )
            return replace(found, last_seen_at=now)

    def lock(self, token: str) -> None:
        """Lock the session now (the operator steps away); only its password unlocks it."""
        with self.engine.begin() as conn:
            found = self.live(conn, token, self.clock())
            if found is not None and found.second_factor_ok:
                conn.execute(
                    update(staff_sessions)
                    .where(staff_sessions.c.id == found.id)
                    .values(locked=True)
                )

    def logout(self, token: str) -> None:
        """End the session for good: its token is worth nothing afterwards."""
        with self.engine.begin() as conn:
            found = self.live(conn, token, self.clock())
            if found is not None:
                self.end(conn, found.id, "logout", self.clock())

    def live(self, conn: Connection, token: str, now: datetime) -> Session | None:
        """:meth:`session` on the caller's transaction."""
        if not token or len(token) > TOKEN_MAX_CHARS:
            return None
        row = conn.execute(
            select(staff_sessions, staff.c.disabled)
            .join(staff, staff.c.id == staff_sessions.c.staff_id)
            .where(staff_sessions.c.token_sha256 == token_sha256(token))
        ).first()
        if row is None or row.ended_at is not None:
            return None
        created = utc(row.created_at)
        assert created is not None
        if row.disabled:
            self.end(conn, row.id, "disabled", now)
            return None
        pending_ends = created + timedelta(minutes=PENDING_MINUTES)
        if now >= created + timedelta(hours=SESSION_MAX_HOURS) or (
            not row.second_factor_ok and now >= pending_ends
        ):
            self.end(conn, row.id, "expired", now)
            return None
        found = self._session(row._mapping, token)
        # A pending session does not idle-lock: it expires first.
        if found.second_factor_ok and not found.locked and now - found.last_seen_at > self.idle:
            conn.execute(
                update(staff_sessions).where(staff_sessions.c.id == row.id).values(locked=True)
            )
            found = replace(found, locked=True)
        return found

    def end(self, conn: Connection, session_id: int, reason: str, now: datetime) -> None:
        conn.execute(
            update(staff_sessions)
            .where(staff_sessions.c.id == session_id, staff_sessions.c.ended_at.is_(None))
            .values(ended_at=now, end_reason=reason)
        )

    def unlocked(self, conn: Connection, session_id: int, now: datetime) -> None:
        """The idle lock lifted (its operator's password was right): seen now."""
        conn.execute(
            update(staff_sessions)
            .where(staff_sessions.c.id == session_id)
            .values(locked=False, last_seen_at=now)
        )

    def second_factor_verified(self, conn: Connection, session_id: int, now: datetime) -> None:
        conn.execute(
            update(staff_sessions)
            .where(staff_sessions.c.id == session_id)
            .values(second_factor_ok=True, last_seen_at=now)
        )

    @staticmethod
    def _session(values: Any, token: str) -> Session:
        created = utc(values["created_at"])
        seen = utc(values["last_seen_at"])
        assert created is not None and seen is not None
        return Session(
            id=values["id"],
            token=token,
            staff_id=values["staff_id"],
            mode=values["mode"],
            csrf=values["csrf"],
            second_factor_ok=bool(values["second_factor_ok"]),
            locked=bool(values["locked"]),
            created_at=created,
            last_seen_at=seen,
            expires_at=created + timedelta(hours=SESSION_MAX_HOURS),
        )
