"""The demo's staff: one in each role and a second cashier, with the passwords below (also
in docs/staff-security.md). A demo, not a store: a real store adds its own staff and never
these."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from smartpos.security.passwords import Hasher
from smartpos.security.staff import StaffDirectory

__all__ = ["DEMO_LOGINS", "DemoLogin", "seed_demo_staff"]


@dataclass(frozen=True)
class DemoLogin:
    staff_no: str
    password: str
    role: str
    name: str
    pin: str | None = None  # the manager PIN, for overrides
    phone: str | None = None  # SMS codes go to the demo's outbox
    lang: str = "zh_CN"

    def describe(self) -> str:
        """One line for the login screen and the demo's console."""
        pin = f", override PIN {self.pin}" if self.pin else ""
        return f"{self.role}: {self.staff_no} / {self.password}{pin} ({self.name})"


DEMO_LOGINS = (
    DemoLogin("1001", "admin123", "admin", "王老板 Wang", pin="1357", phone="13800000001"),
    DemoLogin("2001", "manager123", "manager", "李店长 Li", pin="2468", phone="13800000002"),
    DemoLogin("3001", "cashier123", "cashier", "张收银 Zhang"),
    DemoLogin("3002", "cashier456", "cashier", "Alex Chen", lang="en"),
)


def seed_demo_staff(engine: Engine, *, merchant_no: str, hasher: Hasher | None = None) -> int:
    """Add the demo's staff that are missing and return how many were added; a staff number
    already there is left as it is, so a second call changes nothing. The admin is the
    owner: it logs in with ``merchant_no`` too."""
    directory = StaffDirectory(engine, hasher=hasher)
    added = 0
    for login in DEMO_LOGINS:
        if directory.find(login.staff_no) is not None:
            continue
        directory.add_staff(
            login.staff_no,
            login.name,
            login.role,
            login.password,
            pin=login.pin,
            lang=login.lang,
            phone=login.phone,
            merchant_no=merchant_no if login.role == "admin" else None,
        )
        added += 1
    return added
