"""The security service the cashier app calls: login, the session's life (idle lock,
unlock, logout), the admin mode's second factor, permissions and manager overrides
(docs/staff-security.md).

:class:`Security` wires the parts on one POS database and one clock: the staff directory,
the sessions, the second factor with its SMS sender, the permission matrix and the
overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import Engine

from smartpos.security.errors import AuthError, AuthRefusal
from smartpos.security.lockout import check_secret
from smartpos.security.overrides import Override, Overrides
from smartpos.security.passwords import Hasher
from smartpos.security.permissions import Permission, Permissions
from smartpos.security.second_factor import SecondFactor
from smartpos.security.sessions import IDLE_LOCK_MINUTES, Session, Sessions, check_csrf
from smartpos.security.sms import OutboxSmsSender, SmsMessage, SmsSender
from smartpos.security.staff import Staff, StaffDirectory, row_by_id, row_by_identifier, staff_of
from smartpos.store.orders import Clock

__all__ = ["ADMIN_MODE_ROLES", "MODES", "LoginOutcome", "Security"]

MODES = ("admin", "cashier")
ADMIN_MODE_ROLES = ("admin", "manager")


def _now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LoginOutcome:
    """A login that succeeded: ``token`` goes to the browser (an HttpOnly cookie), ``csrf``
    into its pages. In admin mode the session is pending until the second factor."""

    staff: Staff
    session: Session

    @property
    def token(self) -> str:
        return self.session.token

    @property
    def csrf(self) -> str:
        return self.session.csrf

    @property
    def needs_second_factor(self) -> bool:
        return not self.session.second_factor_ok


class Security:
    """Staff, sessions, second factor, permissions and overrides on the POS database."""

    def __init__(
        self,
        engine: Engine,
        *,
        idle_lock_minutes: int = IDLE_LOCK_MINUTES,
        hasher: Hasher | None = None,
        sms_sender: SmsSender | None = None,
        permissions: Permissions | None = None,
        clock: Clock = _now_utc,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.hasher = hasher or Hasher()
        self.permissions = permissions or Permissions()
        self.directory = StaffDirectory(engine, hasher=self.hasher, clock=clock)
        self.sessions = Sessions(engine, idle_lock_minutes=idle_lock_minutes, clock=clock)
        self.outbox = OutboxSmsSender(engine, clock=clock)
        self.second_factor = SecondFactor(
            engine, self.sessions, sms_sender or self.outbox, hasher=self.hasher, clock=clock
        )
        self.overrides = Overrides(
            engine, permissions=self.permissions, hasher=self.hasher, clock=clock
        )

    def login(self, identifier: str, password: str, mode: str) -> LoginOutcome:
        """Log in with a staff or merchant number and the password, in operator ``mode``
        (``cashier`` for every role, ``admin`` for admins and managers, pending until the
        second factor). Refused (:class:`AuthError`): ``bad_credentials`` (an unknown
        number or a wrong password, alike and in the same time), ``locked`` (with
        ``unlocks_at``; also on the failure that locks), ``disabled``, ``mode_not_allowed``."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        now = self.clock()
        with self.engine.begin() as conn:
            row = row_by_identifier(conn, identifier)
            refusal = check_secret(
                conn, row, password, column="password_hash", hasher=self.hasher, now=now
            )
            if refusal is None and row.disabled:
                refusal = AuthError(AuthRefusal.DISABLED)
            if refusal is None and mode == "admin" and row.role not in ADMIN_MODE_ROLES:
                refusal = AuthError(AuthRefusal.MODE_NOT_ALLOWED, role=row.role, mode=mode)
            if refusal is None:
                session = self.sessions.start(conn, row.id, mode, now)
        if refusal is not None:
            raise refusal
        return LoginOutcome(staff=staff_of(row), session=session)

    def session(self, token: str, now: datetime | None = None) -> Session | None:
        """The live session of ``token`` (see :meth:`Sessions.session`), or None."""
        return self.sessions.session(token, now)

    def touch(self, token: str) -> Session | None:
        """A request of the session: its idle time starts again (see :meth:`Sessions.touch`)."""
        return self.sessions.touch(token)

    def lock(self, token: str) -> None:
        """Lock the session now; only its operator's password unlocks it."""
        self.sessions.lock(token)

    def unlock(self, token: str, password: str) -> Session:
        """Lift the idle lock of ``token``'s session with its own operator's password (no
        one else's). A wrong password counts toward the lockout; the lock ends the session.
        Refused: ``no_session``, ``bad_credentials``, ``locked``, ``disabled``."""
        now = self.clock()
        with self.engine.begin() as conn:
            found = self.sessions.live(conn, token, now)
            if found is None:
                raise AuthError(AuthRefusal.NO_SESSION)
            row = row_by_id(conn, found.staff_id)
            refusal = check_secret(
                conn, row, password, column="password_hash", hasher=self.hasher, now=now
            )
            if refusal is not None and refusal.code is AuthRefusal.LOCKED:
                self.sessions.end(conn, found.id, "locked_out", now)
            if refusal is None:
                self.sessions.unlocked(conn, found.id, now)
        if refusal is not None:
            raise refusal
        return replace(found, locked=False, last_seen_at=now)

    def logout(self, token: str) -> None:
        """End the session of ``token`` for good."""
        self.sessions.logout(token)

    check_csrf = staticmethod(check_csrf)

    def effective_permissions(self, found: Session) -> frozenset[Permission]:
        """What the operator of session ``found`` may do now: nothing while it is locked
        or waiting for its second factor; else their role's rights in their mode."""
        if not found.usable:
            return frozenset()
        role = self.directory.get(found.staff_id).role
        return self.permissions.effective_permissions(role, found.mode)

    def authorize(self, token: str, permission: Permission | str) -> Session:
        """The session of ``token`` if its operator may do ``permission`` now. Refused:
        ``no_session``, ``session_locked``, ``second_factor_required``, ``not_allowed``
        (then a manager's override may allow it: :meth:`authorize_override`)."""
        found = self.session(token)
        if found is None:
            raise AuthError(AuthRefusal.NO_SESSION)
        if found.locked:
            raise AuthError(AuthRefusal.SESSION_LOCKED)
        if not found.second_factor_ok:
            raise AuthError(AuthRefusal.SECOND_FACTOR_REQUIRED)
        wanted = Permission(permission)
        if wanted not in self.effective_permissions(found):
            raise AuthError(AuthRefusal.NOT_ALLOWED, permission=wanted.value)
        return found

    def authorize_override(
        self,
        manager_identifier: str,
        pin: str,
        permission: Permission | str,
        *,
        cashier_staff_id: int,
        detail: str,
    ) -> Override:
        """A manager's PIN allows ``permission`` once (see :meth:`Overrides.authorize_override`)."""
        return self.overrides.authorize_override(
            manager_identifier, pin, permission, cashier_staff_id=cashier_staff_id, detail=detail
        )

    def sms_outbox(self, limit: int = 5) -> list[SmsMessage]:
        """The newest messages of the SMS outbox (the demo's phone), newest first."""
        return self.outbox.messages(limit)
