"""The staff directory: accounts, their roles, passwords, manager PINs and languages.

Each account logs in with its staff number (digits); the owner's admin account also with
the merchant number (MID, 15 digits). Input is checked before anything is written: bad input
raises :class:`StaffError` (a ``ValueError``) and changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from smartpos.security.errors import StaffError, StaffProblem
from smartpos.security.passwords import Hasher
from smartpos.security.tables import staff, staff_sessions
from smartpos.store.orders import Clock

__all__ = [
    "LANGS",
    "NAME_MAX_CHARS",
    "PASSWORD_MIN_CHARS",
    "ROLES",
    "STAFF_NO_MAX_DIGITS",
    "Staff",
    "StaffDirectory",
    "end_sessions",
]

ROLES = ("admin", "manager", "cashier")
LANGS = ("zh_CN", "en")
STAFF_NO_MAX_DIGITS = 10  # shorter than a merchant number, so the two never collide
NAME_MAX_CHARS = 40
PASSWORD_MIN_CHARS = 6
PASSWORD_MAX_CHARS = 128
_STAFF_NO = re.compile(rf"[0-9]{{1,{STAFF_NO_MAX_DIGITS}}}")
_MERCHANT_NO = re.compile(r"[0-9]{15}")
_PIN = re.compile(r"[0-9]{4,6}")
_PHONE = re.compile(r"\+?[0-9]{6,20}")


def _now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Staff:
    """A member of staff as the rest of the app sees them: no hash, no secret."""

    id: int
    staff_no: str
    name: str
    role: str  # admin | manager | cashier
    lang: str  # zh_CN | en
    phone: str | None
    merchant_no: str | None
    disabled: bool
    totp_enrolled: bool
    has_pin: bool


def staff_of(row: Any) -> Staff:
    return Staff(
        id=row.id,
        staff_no=row.staff_no,
        name=row.name,
        role=row.role,
        lang=row.lang,
        phone=row.phone,
        merchant_no=row.merchant_no,
        disabled=row.disabled,
        totp_enrolled=row.totp_secret is not None,
        has_pin=row.pin_hash is not None,
    )


def row_by_identifier(conn: Connection, identifier: str) -> Any:
    """The staff row that logs in with ``identifier`` (staff or merchant number), or None."""
    if not (_STAFF_NO.fullmatch(identifier) or _MERCHANT_NO.fullmatch(identifier)):
        return None
    return conn.execute(
        select(staff).where(or_(staff.c.staff_no == identifier, staff.c.merchant_no == identifier))
    ).first()


def row_by_id(conn: Connection, staff_id: int) -> Any:
    return conn.execute(select(staff).where(staff.c.id == staff_id)).first()


def end_sessions(conn: Connection, staff_id: int, reason: str, now: datetime) -> int:
    """End every live session of ``staff_id`` (``reason`` recorded); returns how many."""
    return conn.execute(
        update(staff_sessions)
        .where(staff_sessions.c.staff_id == staff_id, staff_sessions.c.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
    ).rowcount


def check_password(password: str, *, staff_no: str, merchant_no: str | None = None) -> None:
    """Refuse a password nobody should have: too short or long, blank, or the login id."""
    why: tuple[str, str] | None = None
    if not isinstance(password, str) or len(password) < PASSWORD_MIN_CHARS:
        why = (
            f"must have at least {PASSWORD_MIN_CHARS} characters",
            f"至少需要 {PASSWORD_MIN_CHARS} 个字符",
        )
    elif len(password) > PASSWORD_MAX_CHARS:
        why = (
            f"must have at most {PASSWORD_MAX_CHARS} characters",
            f"最多 {PASSWORD_MAX_CHARS} 个字符",
        )
    elif not password.strip():
        why = ("must not be blank", "不能全为空格")
    elif password in (staff_no, merchant_no):
        why = ("must not be the staff or merchant number", "不能与工号或商户号相同")
    if why is not None:
        raise StaffError(StaffProblem.BAD_PASSWORD, why=why[0], why_zh=why[1])


def check_pin(pin: str) -> None:
    if not isinstance(pin, str) or not _PIN.fullmatch(pin):
        raise StaffError(StaffProblem.BAD_PIN)


def _check_lang(lang: str) -> None:
    if lang not in LANGS:
        raise StaffError(StaffProblem.BAD_LANG, lang=lang)


def _check_phone(phone: str | None) -> None:
    if phone is not None and not _PHONE.fullmatch(phone):
        raise StaffError(StaffProblem.BAD_PHONE, phone=phone)


class StaffDirectory:
    """Staff accounts on the POS database ``engine``; each method is its own transaction."""

    def __init__(
        self, engine: Engine, *, hasher: Hasher | None = None, clock: Clock = _now_utc
    ) -> None:
        self.engine = engine
        self.hasher = hasher or Hasher()
        self.clock = clock

    def add_staff(
        self,
        staff_no: str,
        name: str,
        role: str,
        password: str,
        *,
        pin: str | None = None,
        lang: str = "zh_CN",
        phone: str | None = None,
        merchant_no: str | None = None,
    ) -> Staff:
        """Add an account, enabled, and return it. Refused (:class:`StaffError`, nothing
        added): a staff number not 1–10 digits or taken, a name not 1–40 characters, an
        unknown role or language, a password under 6 characters (or blank, or the login
        id), a PIN not 4–6 digits, a bad phone, a merchant number not 15 digits, taken, or
        on an account that is not an admin."""
        if not isinstance(staff_no, str) or not _STAFF_NO.fullmatch(staff_no):
            raise StaffError(StaffProblem.BAD_STAFF_NO, staff_no=staff_no, max=STAFF_NO_MAX_DIGITS)
        name = name.strip() if isinstance(name, str) else ""
        if not 1 <= len(name) <= NAME_MAX_CHARS:
            raise StaffError(StaffProblem.BAD_NAME, max=NAME_MAX_CHARS)
        if role not in ROLES:
            raise StaffError(StaffProblem.BAD_ROLE, role=role)
        if merchant_no is not None:
            if not _MERCHANT_NO.fullmatch(merchant_no):
                raise StaffError(StaffProblem.BAD_MERCHANT_NO, merchant_no=merchant_no)
            if role != "admin":
                raise StaffError(StaffProblem.MERCHANT_NO_NOT_ADMIN)
        check_password(password, staff_no=staff_no, merchant_no=merchant_no)
        if pin is not None:
            check_pin(pin)
        _check_lang(lang)
        _check_phone(phone)
        now = self.clock()
        values = {
            "staff_no": staff_no,
            "merchant_no": merchant_no,
            "name": name,
            "role": role,
            "lang": lang,
            "phone": phone,
            "password_hash": self.hasher.hash(password),
            "pin_hash": self.hasher.hash(pin) if pin is not None else None,
            "disabled": False,
            "failed_tries": 0,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self.engine.begin() as conn:
                self._refuse_taken(conn, staff_no, merchant_no)
                staff_id = conn.execute(
                    insert(staff).values(values).returning(staff.c.id)
                ).scalar_one()
        except IntegrityError:
            # Someone added the same number between the check and the insert.
            with self.engine.connect() as conn:
                self._refuse_taken(conn, staff_no, merchant_no)
            raise
        return self.get(staff_id)

    @staticmethod
    def _refuse_taken(conn: Connection, staff_no: str, merchant_no: str | None) -> None:
        if conn.execute(select(staff.c.id).where(staff.c.staff_no == staff_no)).first():
            raise StaffError(StaffProblem.DUPLICATE_STAFF_NO, staff_no=staff_no)
        if (
            merchant_no is not None
            and conn.execute(
                select(staff.c.id).where(
                    or_(staff.c.merchant_no == merchant_no, staff.c.staff_no == merchant_no)
                )
            ).first()
        ):
            raise StaffError(StaffProblem.DUPLICATE_MERCHANT_NO, merchant_no=merchant_no)

    def get(self, staff_id: int) -> Staff:
        """The account ``staff_id``; :class:`StaffError` ``no_such_staff`` if there is none."""
        with self.engine.connect() as conn:
            row = row_by_id(conn, staff_id)
        if row is None:
            raise StaffError(StaffProblem.NO_SUCH_STAFF, staff_id=staff_id)
        return staff_of(row)

    def find(self, identifier: str) -> Staff | None:
        """The account that logs in with ``identifier`` (staff or merchant number), or None."""
        with self.engine.connect() as conn:
            row = row_by_identifier(conn, identifier)
        return staff_of(row) if row is not None else None

    def list_staff(self, *, include_disabled: bool = True) -> list[Staff]:
        """All accounts, by staff number (numerically: 99 before 100)."""
        query = select(staff).order_by(func.length(staff.c.staff_no), staff.c.staff_no)
        if not include_disabled:
            query = query.where(staff.c.disabled.is_(False))
        with self.engine.connect() as conn:
            return [staff_of(row) for row in conn.execute(query)]

    def set_password(self, staff_id: int, password: str) -> None:
        """A new password (same rules as :meth:`add_staff`); the failure count is reset."""
        current = self.get(staff_id)
        check_password(password, staff_no=current.staff_no, merchant_no=current.merchant_no)
        self._set(
            staff_id,
            password_hash=self.hasher.hash(password),
            failed_tries=0,
            locked_until=None,
        )

    def set_pin(self, staff_id: int, pin: str | None) -> None:
        """A new manager PIN (4–6 digits), or None to remove it."""
        if pin is not None:
            check_pin(pin)
        self._set(staff_id, pin_hash=self.hasher.hash(pin) if pin is not None else None)

    def set_lang(self, staff_id: int, lang: str) -> None:
        _check_lang(lang)
        self._set(staff_id, lang=lang)

    def set_phone(self, staff_id: int, phone: str | None) -> None:
        _check_phone(phone)
        self._set(staff_id, phone=phone)

    def reset_totp(self, staff_id: int) -> None:
        """Forget the account's authenticator (a lost phone): it enrols again at its next
        admin-mode login."""
        self._set(
            staff_id,
            totp_secret=None,
            totp_pending_secret=None,
            totp_pending_at=None,
            totp_last_step=None,
        )

    def disable(self, staff_id: int) -> None:
        """Disable the account and end all its sessions at once. The last enabled admin
        cannot be disabled (nobody could manage staff any more)."""
        now = self.clock()
        with self.engine.begin() as conn:
            row = row_by_id(conn, staff_id)
            if row is None:
                raise StaffError(StaffProblem.NO_SUCH_STAFF, staff_id=staff_id)
            if row.role == "admin" and not row.disabled:
                admins = conn.execute(
                    select(func.count())
                    .select_from(staff)
                    .where(staff.c.role == "admin", staff.c.disabled.is_(False))
                ).scalar_one()
                if admins <= 1:
                    raise StaffError(StaffProblem.LAST_ADMIN)
            conn.execute(
                update(staff).where(staff.c.id == staff_id).values(disabled=True, updated_at=now)
            )
            end_sessions(conn, staff_id, "disabled", now)

    def enable(self, staff_id: int) -> None:
        self._set(staff_id, disabled=False)

    def _set(self, staff_id: int, **values: Any) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(
                update(staff)
                .where(staff.c.id == staff_id)
                .values(**values, updated_at=self.clock())
            ).rowcount
        if not done:
            raise StaffError(StaffProblem.NO_SUCH_STAFF, staff_id=staff_id)
