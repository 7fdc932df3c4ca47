"""Roles and permissions: a matrix the merchant may change in a TOML file, and the limits
above which a refund or a discount needs the ``*_large`` permission.

Operator mode matters. In *cashier* mode everyone has at most the cashier role's
permissions — a manager selling at the till sells as a cashier, and an admin logged in for
selling cannot edit staff from that till. *Admin* mode, after the second factor, gives the
role's own permissions; only admins and managers may log in in it. Beyond the cashier's
rights, a manager's PIN typed on the cashier's screen grants one action (an override,
recorded: :mod:`smartpos.security.overrides`).

The file (all keys optional)::

    [roles]
    cashier = ["sell", "lookup", "void_own", "refund_small", "discount_small", "shift"]
    manager = ["sell", "lookup", "void_any", "refund_large", "reports"]

    [limits]
    refund_limit_minor = 20000     # ¥200.00: a larger refund needs refund_large
    discount_limit_percent = 15    # a larger discount needs discount_large
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Any

from smartpos.money import MAX_AMOUNT_MINOR
from smartpos.security.errors import StaffError, StaffProblem
from smartpos.security.staff import ROLES

__all__ = [
    "DEFAULT_DISCOUNT_LIMIT_PERCENT",
    "DEFAULT_MATRIX",
    "DEFAULT_REFUND_LIMIT_MINOR",
    "Permission",
    "Permissions",
]


class Permission(StrEnum):
    SELL = "sell"
    LOOKUP = "lookup"
    VOID_OWN = "void_own"  # the operator's own sale, same batch
    VOID_ANY = "void_any"
    REFUND_SMALL = "refund_small"  # up to refund_limit_minor
    REFUND_LARGE = "refund_large"
    DISCOUNT_SMALL = "discount_small"  # up to discount_limit_percent
    DISCOUNT_LARGE = "discount_large"
    SETTLE = "settle"
    SHIFT = "shift"  # open and close one's own shift
    CATALOG_EDIT = "catalog_edit"  # product data, CSV import included
    STAFF_EDIT = "staff_edit"
    REPORTS = "reports"
    SELFTEST = "selftest"
    REPRINT = "reprint"


_CASHIER = frozenset(
    {
        Permission.SELL,
        Permission.LOOKUP,
        Permission.VOID_OWN,
        Permission.REFUND_SMALL,
        Permission.DISCOUNT_SMALL,
        Permission.SHIFT,
        Permission.SELFTEST,
        Permission.REPRINT,
    }
)
DEFAULT_MATRIX: Mapping[str, frozenset[Permission]] = {
    "admin": frozenset(Permission),
    "manager": frozenset(Permission) - {Permission.STAFF_EDIT},
    "cashier": _CASHIER,
}
DEFAULT_REFUND_LIMIT_MINOR = 10000  # ¥100.00
DEFAULT_DISCOUNT_LIMIT_PERCENT = 10


def _bad(path: Path | str, key: str, why: str) -> StaffError:
    return StaffError(StaffProblem.BAD_PERMISSIONS_FILE, path=path, key=key, why=why)


@dataclass(frozen=True)
class Permissions:
    """Who may do what (``matrix``: role → permissions) and the two limits."""

    matrix: Mapping[str, frozenset[Permission]] = field(default_factory=lambda: DEFAULT_MATRIX)
    refund_limit_minor: int = DEFAULT_REFUND_LIMIT_MINOR
    discount_limit_percent: int = DEFAULT_DISCOUNT_LIMIT_PERCENT

    @classmethod
    def load(cls, path: Path | None) -> Permissions:
        """The defaults, with what the TOML file at ``path`` changes (no path, or no file
        there: the defaults). A role listed replaces that role's permissions. A bad file
        raises :class:`StaffError` ``bad_permissions_file`` naming the key: not TOML, an
        unknown key, role or permission, a limit that is not a whole number in range, or an
        admin without ``staff_edit`` (nobody could manage staff any more)."""
        if path is None or not path.exists():
            return cls()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise _bad(path, "(file)", f"not TOML: {exc}") from None
        return cls.from_mapping(data, where=path)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: Path | str = "<data>") -> Permissions:
        """As :meth:`load`, from the file's parsed contents."""
        for key in data:
            if key not in ("roles", "limits"):
                raise _bad(where, key, "unknown key (expected [roles] or [limits])")
        matrix = dict(DEFAULT_MATRIX)
        roles = data.get("roles", {})
        if not isinstance(roles, Mapping):
            raise _bad(where, "roles", "must be a table of role = [permissions]")
        for role, names in roles.items():
            if role not in ROLES:
                raise _bad(where, f"roles.{role}", f"unknown role (one of {', '.join(ROLES)})")
            if not isinstance(names, list):
                raise _bad(where, f"roles.{role}", "must be a list of permission names")
            granted: set[Permission] = set()
            for i, name in enumerate(names):
                if not isinstance(name, str) or name not in Permission.__members__.values():
                    raise _bad(where, f"roles.{role}[{i}]", f"unknown permission {name!r}")
                granted.add(Permission(name))
            matrix[role] = frozenset(granted)
        if Permission.STAFF_EDIT not in matrix["admin"]:
            raise _bad(where, "roles.admin", "the admin role must keep staff_edit")
        limits = data.get("limits", {})
        if not isinstance(limits, Mapping):
            raise _bad(where, "limits", "must be a table")
        bounds = {
            "refund_limit_minor": (0, MAX_AMOUNT_MINOR),
            "discount_limit_percent": (0, 100),
        }
        values: dict[str, int] = {}
        for key, value in limits.items():
            if key not in bounds:
                raise _bad(where, f"limits.{key}", f"unknown limit (one of {', '.join(bounds)})")
            low, high = bounds[key]
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise _bad(where, f"limits.{key}", f"must be a whole number {low} to {high}")
            values[key] = value
        return cls(matrix=matrix, **values)

    def allowed(self, role: str, permission: Permission | str) -> bool:
        """Whether ``role`` has ``permission`` (in admin mode: its full rights)."""
        return Permission(permission) in self.matrix.get(role, frozenset())

    def effective_permissions(self, role: str, mode: str) -> frozenset[Permission]:
        """What an operator of ``role`` logged in in ``mode`` may do: in cashier mode the
        role's permissions that the cashier role has too; in admin mode (admins and
        managers only; nothing for a cashier) the role's own."""
        own = self.matrix.get(role, frozenset())
        if mode == "cashier":
            return own & self.matrix["cashier"]
        if mode == "admin" and role in ("admin", "manager"):
            return own
        return frozenset()

    def refund_permission(self, amount_minor: int) -> Permission:
        """The permission a refund of ``amount_minor`` needs: ``refund_small`` up to the
        limit (inclusive), ``refund_large`` above it."""
        if amount_minor < 0:
            raise ValueError("a refund amount is not negative")
        if amount_minor > self.refund_limit_minor:
            return Permission.REFUND_LARGE
        return Permission.REFUND_SMALL

    def discount_permission(self, percent: int | Fraction) -> Permission:
        """The permission a discount of ``percent`` % (0–100; ``Fraction`` for an exact
        part percent) needs: ``discount_small`` up to the limit (inclusive), above it
        ``discount_large``."""
        if not 0 <= percent <= 100:
            raise ValueError("a discount is 0 to 100 percent")
        if percent > self.discount_limit_percent:
            return Permission.DISCOUNT_LARGE
        return Permission.DISCOUNT_SMALL

    def discount_permission_minor(self, discount_minor: int, base_minor: int) -> Permission:
        """As :meth:`discount_permission`, for a discount of ``discount_minor`` off
        ``base_minor`` (exact: ¥10.01 off ¥100.00 is above 10 %)."""
        if base_minor <= 0 or not 0 <= discount_minor <= base_minor:
            raise ValueError("a discount is 0 to the whole of a positive amount")
        return self.discount_permission(Fraction(discount_minor * 100, base_minor))
