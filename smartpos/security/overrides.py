"""Manager overrides: a manager (or admin) types their PIN on the cashier's screen to allow
one action the cashier may not do — a large refund, a large discount, a void of another's
sale — and the override is recorded with who allowed what for whom.

The PIN is checked like a password: argon2id, the same lockout (a wrong PIN counts toward
the *manager's* account), the same refusal for an unknown manager and a wrong PIN. Neither
the PIN nor anything derived from it other than its hash is stored or logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select

from smartpos.security.errors import AuthError, AuthRefusal, StaffError, StaffProblem
from smartpos.security.lockout import check_secret
from smartpos.security.passwords import Hasher
from smartpos.security.permissions import Permission, Permissions
from smartpos.security.staff import row_by_id, row_by_identifier
from smartpos.security.tables import overrides
from smartpos.store.orders import Clock, utc

__all__ = ["DETAIL_MAX_CHARS", "OVERRIDE_ROLES", "Override", "Overrides"]

DETAIL_MAX_CHARS = 200
OVERRIDE_ROLES = ("admin", "manager")


def _now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Override:
    id: int
    at: datetime
    permission: Permission
    cashier_staff_id: int
    manager_staff_id: int
    detail: str


class Overrides:
    """Overrides on the POS database ``engine``, under the matrix ``permissions``."""

    def __init__(
        self,
        engine: Engine,
        *,
        permissions: Permissions | None = None,
        hasher: Hasher | None = None,
        clock: Clock = _now_utc,
    ) -> None:
        self.engine = engine
        self.permissions = permissions or Permissions()
        self.hasher = hasher or Hasher()
        self.clock = clock

    def authorize_override(
        self,
        manager_identifier: str,
        pin: str,
        permission: Permission | str,
        *,
        cashier_staff_id: int,
        detail: str,
    ) -> Override:
        """Allow ``permission`` once for ``cashier_staff_id`` on the PIN of the manager or
        admin ``manager_identifier`` (staff or merchant number), and record it with
        ``detail`` (what was allowed: 1–200 characters, e.g. the order and the amount).

        Refused (:class:`AuthError`, nothing recorded): ``bad_credentials`` (unknown, no
        PIN, or a wrong PIN — counted), ``locked``, ``disabled``, ``not_allowed`` (not a
        manager or admin, or the matrix does not give their role ``permission``). Bad input
        raises :class:`StaffError`: an unknown permission or cashier, a bad detail."""
        try:
            wanted = Permission(permission)
        except ValueError:
            raise StaffError(StaffProblem.BAD_PERMISSION, permission=permission) from None
        detail = detail.strip() if isinstance(detail, str) else ""
        if not 1 <= len(detail) <= DETAIL_MAX_CHARS:
            raise StaffError(StaffProblem.BAD_DETAIL, max=DETAIL_MAX_CHARS)
        now = self.clock()
        with self.engine.begin() as conn:
            if row_by_id(conn, cashier_staff_id) is None:
                raise StaffError(StaffProblem.NO_SUCH_STAFF, staff_id=cashier_staff_id)
            row = row_by_identifier(conn, manager_identifier)
            refusal = check_secret(conn, row, pin, column="pin_hash", hasher=self.hasher, now=now)
            if refusal is None and row.disabled:
                refusal = AuthError(AuthRefusal.DISABLED)
            if refusal is None and (
                row.role not in OVERRIDE_ROLES or not self.permissions.allowed(row.role, wanted)
            ):
                refusal = AuthError(AuthRefusal.NOT_ALLOWED, permission=wanted.value)
            if refusal is None:
                values = {
                    "at": now,
                    "permission": wanted.value,
                    "cashier_staff_id": cashier_staff_id,
                    "manager_staff_id": row.id,
                    "detail": detail,
                }
                override_id = conn.execute(
                    insert(overrides).values(values).returning(overrides.c.id)
                ).scalar_one()
        if refusal is not None:
            raise refusal
        return Override(
            id=override_id,
            at=now,
            permission=wanted,
            cashier_staff_id=cashier_staff_id,
            manager_staff_id=row.id,
            detail=detail,
        )

    def recent(self, limit: int = 50) -> list[Override]:
        """The newest ``limit`` overrides, newest first (for the manager's report)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(overrides).order_by(overrides.c.id.desc()).limit(max(0, limit))
            ).all()
        return [
            Override(
                id=r.id,
                at=utc(r.at) or r.at,
                permission=Permission(r.permission),
                cashier_staff_id=r.cashier_staff_id,
                manager_staff_id=r.manager_staff_id,
                detail=r.detail,
            )
            for r in rows
        ]
