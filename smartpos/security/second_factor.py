"""The second factor of an admin-mode login: a TOTP code from an authenticator app, or a
code sent by SMS.

* TOTP (RFC 6238, 6 digits, 30 s steps, pyotp): a code of the current step or one step
  either side is accepted, and never a code of a step already used (nor an older one), so a
  code seen over a shoulder cannot be replayed. Enrolment: :meth:`SecondFactor.begin_totp`
  offers a secret (with its ``otpauth://`` URI and QR code); it is stored as the account's
  only once a code made from it verifies. An account without an authenticator enrols at
  its first admin-mode login, after its password (trust on first use; an admin resets a
  lost one with ``StaffDirectory.reset_totp``).
* SMS: 6 random digits, valid :data:`SMS_CODE_MINUTES`, at most :data:`SMS_TRIES` tries,
  stored only as an argon2id hash; a new code replaces the last; at most
  :data:`SMS_MAX_PER_SESSION` codes per login, :data:`SMS_RESEND_SECONDS` apart.

A wrong code of either kind counts toward the account's lockout like a wrong password; the
lock ends the pending session.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import segno
from sqlalchemy import Connection, Engine, func, select, update

from smartpos.security.errors import AuthError, AuthRefusal, StaffError, StaffProblem
from smartpos.security.lockout import lock_end, record_failure, record_success
from smartpos.security.passwords import Hasher
from smartpos.security.sessions import Session, Sessions
from smartpos.security.sms import SmsSender
from smartpos.security.staff import row_by_id
from smartpos.security.tables import sms_codes, staff
from smartpos.store.orders import Clock, utc

__all__ = [
    "SMS_CODE_MINUTES",
    "SMS_MAX_PER_SESSION",
    "SMS_RESEND_SECONDS",
    "SMS_TRIES",
    "TOTP_ENROL_MINUTES",
    "SecondFactor",
    "TotpEnrolment",
]

SMS_CODE_MINUTES = 5
SMS_TRIES = 5
SMS_RESEND_SECONDS = 30
SMS_MAX_PER_SESSION = 5
TOTP_ENROL_MINUTES = 10  # an enrolment's secret is offered again (same QR) for this long
TOTP_DIGITS = 6
ISSUER = "smartpos"

_SMS_TEXT = {
    "zh_CN": "【smartpos】您的登录验证码为 {code}，{minutes} 分钟内有效，请勿告诉他人。",
    "en": "smartpos: your login code is {code}, valid for {minutes} minutes. Do not share it.",
}


def _now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TotpEnrolment:
    """What the enrolment screen shows: the secret (to type), its URI and the QR code."""

    secret: str
    uri: str
    qr_svg: str

    def __repr__(self) -> str:
        return "TotpEnrolment(<secret hidden>)"


def totp_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step of ``now`` ±1 whose code ``code`` is, or None."""
    if len(code) != TOTP_DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS)
    step = totp.timecode(now)
    for candidate in (step - 1, step, step + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


class SecondFactor:
    """TOTP enrolment and verification, and SMS codes, for the sessions of ``sessions``."""

    def __init__(
        self,
        engine: Engine,
        sessions: Sessions,
        sender: SmsSender,
        *,
        hasher: Hasher | None = None,
        clock: Clock = _now_utc,
        issuer: str = ISSUER,
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self.sender = sender
        self.hasher = hasher or Hasher()
        self.clock = clock
        self.issuer = issuer

    # -- TOTP ------------------------------------------------------------------------------

    def begin_totp(self, staff_id: int) -> TotpEnrolment:
        """Offer an authenticator secret to ``staff_id`` (the same one again for
        :data:`TOTP_ENROL_MINUTES`, so a page reload shows the QR code already scanned).
        Nothing changes for the account until a code from it verifies."""
        now = self.clock()
        with self.engine.begin() as conn:
            row = self._staff(conn, staff_id)
            pending_at = utc(row.totp_pending_at)
            secret = row.totp_pending_secret
            if secret is None or pending_at is None or now - pending_at > self._enrol_window:
                secret = pyotp.random_base32()
                conn.execute(
                    update(staff)
                    .where(staff.c.id == staff_id)
                    .values(totp_pending_secret=secret, totp_pending_at=now)
                )
        uri = pyotp.TOTP(secret, digits=TOTP_DIGITS).provisioning_uri(
            name=row.staff_no, issuer_name=self.issuer
        )
        qr_svg = segno.make(uri, error="m").svg_inline(scale=4, title=self.issuer)
        return TotpEnrolment(secret=secret, uri=uri, qr_svg=qr_svg)

    def confirm_totp(self, staff_id: int, code: str) -> None:
        """Make the offered secret the account's once ``code`` from it verifies (it replaces
        an authenticator enrolled before). A wrong code counts toward the lockout."""
        now = self.clock()
        with self.engine.begin() as conn:
            refusal = self._enrol(conn, self._staff(conn, staff_id), code, now)
        if refusal is not None:
            raise refusal

    def verify_totp(self, token: str, code: str) -> Session:
        """The pending admin-mode session of ``token`` passes its second factor with the
        authenticator's ``code``; for an account without one, with a code of the secret
        :meth:`begin_totp` offered (which enrols it). Returns the session, now usable."""
        now = self.clock()
        refusal: AuthError | None = None
        with self.engine.begin() as conn:
            session, row, refusal = self._pending(conn, token, now)
            if refusal is None and not session.second_factor_ok:
                if row.totp_secret is None:
                    refusal = self._enrol(conn, row, code, now)
                else:
                    refusal = self._check_totp(conn, row, row.totp_secret, code, now)
                refusal = self._settle(conn, session, row, refusal, now)
        if refusal is not None:
            raise refusal
        return self._verified(session)

    # -- SMS -------------------------------------------------------------------------------

    def send_sms_code(self, token: str) -> None:
        """Send a new code to the phone of the pending session's operator (the last code is
        no longer accepted)."""
        now = self.clock()
        with self.engine.begin() as conn:
            session, row, refusal = self._pending(conn, token, now)
            if refusal is None and session.second_factor_ok:
                return
            if refusal is None and not row.phone:
                refusal = AuthError(AuthRefusal.NO_PHONE)
            if refusal is None:
                refusal = self._sms_limits(conn, session.id, now)
            if refusal is None:
                code = f"{secrets.randbelow(10**TOTP_DIGITS):0{TOTP_DIGITS}d}"
                conn.execute(
                    update(sms_codes)
                    .where(sms_codes.c.session_id == session.id, sms_codes.c.spent.is_(False))
                    .values(spent=True)
                )
                conn.execute(
                    sms_codes.insert().values(
                        session_id=session.id,
                        code_hash=self.hasher.hash(code),
                        created_at=now,
                        expires_at=now + timedelta(minutes=SMS_CODE_MINUTES),
                        tries=0,
                        spent=False,
                    )
                )
        if refusal is not None:
            raise refusal
        # After the commit: the sender may write to this database itself (the outbox).
        text = _SMS_TEXT.get(row.lang, _SMS_TEXT["en"])
        self.sender.send(row.phone, text.format(code=code, minutes=SMS_CODE_MINUTES))

    def verify_sms(self, token: str, code: str) -> Session:
        """The pending admin-mode session of ``token`` passes its second factor with the
        last SMS ``code`` sent for it. Returns the session, now usable."""
        now = self.clock()
        with self.engine.begin() as conn:
            session, row, refusal = self._pending(conn, token, now)
            if refusal is None and not session.second_factor_ok:
                refusal = self._check_sms(conn, session, code, now)
                refusal = self._settle(conn, session, row, refusal, now)
        if refusal is not None:
            raise refusal
        return self._verified(session)

    # -- the steps ---------------------------------------------------------------------------

    @property
    def _enrol_window(self) -> timedelta:
        return timedelta(minutes=TOTP_ENROL_MINUTES)

    @staticmethod
    def _staff(conn: Connection, staff_id: int) -> Any:
        row = row_by_id(conn, staff_id)
        if row is None:
            raise StaffError(StaffProblem.NO_SUCH_STAFF, staff_id=staff_id)
        return row

    def _pending(
        self, conn: Connection, token: str, now: datetime
    ) -> tuple[Session, Any, AuthError | None]:
        session = self.sessions.live(conn, token, now)
        if session is None:
            raise AuthError(AuthRefusal.NO_SESSION)
        row = row_by_id(conn, session.staff_id)
        until = lock_end(row, now)
        if until is not None:
            self.sessions.end(conn, session.id, "locked_out", now)
            return session, row, AuthError(AuthRefusal.LOCKED, unlocks_at=until)
        return session, row, None

    def _enrol(self, conn: Connection, row: Any, code: str, now: datetime) -> AuthError | None:
        pending_at = utc(row.totp_pending_at)
        secret = row.totp_pending_secret
        if secret is None or pending_at is None or now - pending_at > self._enrol_window:
            return AuthError(AuthRefusal.NOT_ENROLLED)
        step = totp_step(secret, code, now)
        if step is None:
            return self._failed(conn, row.id, now)
        conn.execute(
            update(staff)
            .where(staff.c.id == row.id)
            .values(
                totp_secret=secret,
                totp_pending_secret=None,
                totp_pending_at=None,
                totp_last_step=step,
                updated_at=now,
            )
        )
        record_success(conn, row.id)
        return None

    def _check_totp(
        self, conn: Connection, row: Any, secret: str, code: str, now: datetime
    ) -> AuthError | None:
        step = totp_step(secret, code, now)
        if step is None:
            return self._failed(conn, row.id, now)
        # One statement decides, so two requests with the same code cannot both pass.
        taken = conn.execute(
            update(staff)
            .where(
                staff.c.id == row.id,
                (staff.c.totp_last_step.is_(None)) | (staff.c.totp_last_step < step),
            )
            .values(totp_last_step=step)
        ).rowcount
        if not taken:
            return AuthError(AuthRefusal.CODE_REUSED)
        record_success(conn, row.id)
        return None

    def _sms_limits(self, conn: Connection, session_id: int, now: datetime) -> AuthError | None:
        sent, last = conn.execute(
            select(func.count(), func.max(sms_codes.c.created_at)).where(
                sms_codes.c.session_id == session_id
            )
        ).one()
        if sent >= SMS_MAX_PER_SESSION:
            return AuthError(AuthRefusal.SMS_LIMIT)
        last = utc(last)
        if last is not None:
            wait = SMS_RESEND_SECONDS - int((now - last).total_seconds())
            if wait > 0:
                return AuthError(AuthRefusal.SMS_TOO_SOON, seconds=wait)
        return None

    def _check_sms(
        self, conn: Connection, session: Session, code: str, now: datetime
    ) -> AuthError | None:
        session_id = session.id
        last = conn.execute(
            select(sms_codes)
            .where(sms_codes.c.session_id == session_id)
            .order_by(sms_codes.c.id.desc())
            .limit(1)
        ).first()
        if last is None:
            return AuthError(AuthRefusal.NO_CODE)
        if last.spent:
            tried_out = last.tries >= SMS_TRIES
            return AuthError(AuthRefusal.TOO_MANY_TRIES if tried_out else AuthRefusal.NO_CODE)
        expires_at = utc(last.expires_at)
        assert expires_at is not None
        if now >= expires_at:
            conn.execute(update(sms_codes).where(sms_codes.c.id == last.id).values(spent=True))
            return AuthError(AuthRefusal.CODE_EXPIRED)
        # The try is taken before the code is checked, so concurrent guesses stay within
        # the limit.
        taken = conn.execute(
            update(sms_codes)
            .where(
                sms_codes.c.id == last.id,
                sms_codes.c.spent.is_(False),
                sms_codes.c.tries < SMS_TRIES,
            )
            .values(tries=sms_codes.c.tries + 1)
        ).rowcount
        if not taken:
            return AuthError(AuthRefusal.TOO_MANY_TRIES)
        right = (
            len(code) == TOTP_DIGITS
            and code.isascii()
            and code.isdigit()
            and self.hasher.verify(last.code_hash, code)
        )
        if right:
            conn.execute(update(sms_codes).where(sms_codes.c.id == last.id).values(spent=True))
            return None
        counted = self._failed(conn, session.staff_id, now)
        if last.tries + 1 >= SMS_TRIES:
            conn.execute(update(sms_codes).where(sms_codes.c.id == last.id).values(spent=True))
            if counted.code is AuthRefusal.BAD_CODE:
                return AuthError(AuthRefusal.TOO_MANY_TRIES)
        return counted

    def _failed(self, conn: Connection, staff_id: int, now: datetime) -> AuthError:
        until = record_failure(conn, staff_id, now)
        if until is not None:
            return AuthError(AuthRefusal.LOCKED, unlocks_at=until)
        return AuthError(AuthRefusal.BAD_CODE)

    def _settle(
        self,
        conn: Connection,
        session: Session,
        row: Any,
        refusal: AuthError | None,
        now: datetime,
    ) -> AuthError | None:
        """After a code was checked: a success marks the session verified; a lock ends it."""
        if refusal is None:
            record_success(conn, row.id)
            self.sessions.second_factor_verified(conn, session.id, now)
            return None
        if refusal.code is AuthRefusal.LOCKED:
            self.sessions.end(conn, session.id, "locked_out", now)
        return refusal

    @staticmethod
    def _verified(session: Session) -> Session:
        return replace(session, second_factor_ok=True)
