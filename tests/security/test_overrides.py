"""Manager overrides: the PIN checked (and counted toward the manager's lockout), the
matrix obeyed, the override recorded with who allowed what for whom."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from smartpos.security.errors import AuthRefusal, StaffError, StaffProblem
from smartpos.security.lockout import MAX_FAILED_TRIES
from smartpos.security.permissions import Permission
from smartpos.security.tables import overrides, staff
from tests.security.conftest import MID, World, refused


def _override_rows(world: World) -> list[tuple[object, ...]]:
    with world.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(overrides))]


def test_an_override_is_recorded_with_the_managers_id(world: World) -> None:
    done = world.security.authorize_override(
        "2001",
        "2468",
        "refund_large",
        cashier_staff_id=world.cashier,
        detail="order 20261203-0007: refund ¥250.00",
    )
    assert done.permission is Permission.REFUND_LARGE and done.manager_staff_id == world.manager
    with world.engine.connect() as conn:
        row = conn.execute(select(overrides)).one()
    assert (row.permission, row.cashier_staff_id, row.manager_staff_id) == (
        "refund_large",
        world.cashier,
        world.manager,
    )
    assert row.detail == "order 20261203-0007: refund ¥250.00" and row.id == done.id
    # The owner may authorize with the merchant number too.
    owner = world.security.authorize_override(
        MID, "1357", "staff_edit", cashier_staff_id=world.cashier, detail="x"
    )
    assert owner.manager_staff_id == world.admin
    assert [o.id for o in world.security.overrides.recent()] == [owner.id, done.id]


def test_a_wrong_pin_is_refused_counted_and_nothing_recorded(world: World) -> None:
    with refused(AuthRefusal.BAD_CREDENTIALS) as wrong:
        world.security.authorize_override(
            "2001", "1111", "void_any", cashier_staff_id=world.cashier, detail="void"
        )
    with refused(AuthRefusal.BAD_CREDENTIALS) as unknown:
        world.security.authorize_override(
            "2999", "2468", "void_any", cashier_staff_id=world.cashier, detail="void"
        )
    assert wrong[0].text("en") == unknown[0].text("en")
    assert _override_rows(world) == []
    with world.engine.connect() as conn:
        tries = conn.execute(
            select(staff.c.failed_tries).where(staff.c.id == world.manager)
        ).scalar_one()
    assert tries == 1
    for _ in range(MAX_FAILED_TRIES - 2):
        with refused(AuthRefusal.BAD_CREDENTIALS):
            world.security.authorize_override(
                "2001", "1111", "void_any", cashier_staff_id=world.cashier, detail="void"
            )
    with refused(AuthRefusal.LOCKED):
        world.security.authorize_override(
            "2001", "1111", "void_any", cashier_staff_id=world.cashier, detail="void"
        )
    # The manager's account is locked: the right PIN and the right password are refused.
    with refused(AuthRefusal.LOCKED):
        world.security.authorize_override(
            "2001", "2468", "void_any", cashier_staff_id=world.cashier, detail="void"
        )
    with refused(AuthRefusal.LOCKED):
        world.security.login("2001", "manager-pass", "cashier")


def test_the_manager_needs_the_permission_in_the_matrix(world: World) -> None:
    with refused(AuthRefusal.NOT_ALLOWED):
        world.security.authorize_override(
            "2001", "2468", "staff_edit", cashier_staff_id=world.cashier, detail="x"
        )
    # A cashier with a PIN is no manager.
    world.security.directory.set_pin(world.other_cashier, "8642")
    with refused(AuthRefusal.NOT_ALLOWED):
        world.security.authorize_override(
            "3002", "8642", "refund_small", cashier_staff_id=world.cashier, detail="x"
        )
    # A manager without a PIN cannot authorize (and learns nothing from trying).
    world.security.directory.set_pin(world.manager, None)
    with refused(AuthRefusal.BAD_CREDENTIALS):
        world.security.authorize_override(
            "2001", "2468", "refund_large", cashier_staff_id=world.cashier, detail="x"
        )
    assert _override_rows(world) == []


def test_a_disabled_manager_cannot_authorize(world: World) -> None:
    world.security.directory.disable(world.manager)
    with refused(AuthRefusal.DISABLED):
        world.security.authorize_override(
            "2001", "2468", "refund_large", cashier_staff_id=world.cashier, detail="x"
        )


@pytest.mark.parametrize(
    ("permission", "cashier", "detail", "problem"),
    [
        ("fly", None, "x", StaffProblem.BAD_PERMISSION),
        ("refund_large", 999, "x", StaffProblem.NO_SUCH_STAFF),
        ("refund_large", None, "   ", StaffProblem.BAD_DETAIL),
        ("refund_large", None, "x" * 201, StaffProblem.BAD_DETAIL),
    ],
)
def test_bad_input_is_refused(
    world: World, permission: str, cashier: int | None, detail: str, problem: StaffProblem
) -> None:
    with pytest.raises(StaffError) as caught:
        world.security.authorize_override(
            "2001", "2468", permission, cashier_staff_id=cashier or world.cashier, detail=detail
        )
    assert caught.value.code is problem
    assert _override_rows(world) == []


def test_no_pin_in_clear_after_overrides(world: World) -> None:
    world.security.authorize_override(
        "2001", "2468", "void_any", cashier_staff_id=world.cashier, detail="void order 1"
    )
    with world.engine.connect() as conn:
        values = [
            str(v)
            for table in ("staff", "overrides")
            for row in conn.execute(text(f"SELECT * FROM {table}"))
            for v in row
        ]
    assert not any("2468" in v for v in values)
