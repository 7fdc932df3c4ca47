"""The staff directory: accounts, what it refuses (changing nothing), disabling, and the
demo's staff."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from smartpos.security.errors import StaffError, StaffProblem
from smartpos.security.seed import DEMO_LOGINS, seed_demo_staff
from smartpos.security.service import Security
from smartpos.security.tables import staff
from tests.security.conftest import MID, World, fast_hasher


def _count(world: World) -> int:
    with world.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(staff)).scalar_one())


def test_add_get_find_and_list(world: World) -> None:
    added = world.security.directory.add_staff(
        "42", "  赵新  ", "cashier", "new-pass", lang="en", phone="+8613900000000"
    )
    assert (added.staff_no, added.name, added.role, added.lang) == ("42", "赵新", "cashier", "en")
    assert not added.disabled and not added.totp_enrolled and not added.has_pin
    assert world.security.directory.get(added.id) == added
    assert world.security.directory.find("42") == added
    assert world.security.directory.find(MID) == world.security.directory.get(world.admin)
    assert world.security.directory.find("43") is None
    assert [s.staff_no for s in world.security.directory.list_staff()] == [
        "42",
        "1001",
        "2001",
        "3001",
        "3002",
    ]
    with pytest.raises(StaffError) as caught:
        world.security.directory.get(999)
    assert caught.value.code is StaffProblem.NO_SUCH_STAFF


GOOD: dict[str, Any] = {"staff_no": "4001", "name": "New", "role": "cashier", "password": "abc123"}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"staff_no": ""}, StaffProblem.BAD_STAFF_NO),
        ({"staff_no": "40a1"}, StaffProblem.BAD_STAFF_NO),
        ({"staff_no": "12345678901"}, StaffProblem.BAD_STAFF_NO),
        ({"staff_no": "３００１"}, StaffProblem.BAD_STAFF_NO),  # full-width digits
        ({"staff_no": "3001"}, StaffProblem.DUPLICATE_STAFF_NO),
        ({"name": "   "}, StaffProblem.BAD_NAME),
        ({"name": "x" * 41}, StaffProblem.BAD_NAME),
        ({"role": "owner"}, StaffProblem.BAD_ROLE),
        ({"password": ""}, StaffProblem.BAD_PASSWORD),
        ({"password": "12345"}, StaffProblem.BAD_PASSWORD),
        ({"password": "      "}, StaffProblem.BAD_PASSWORD),
        ({"password": "4001"}, StaffProblem.BAD_PASSWORD),
        ({"password": "x" * 129}, StaffProblem.BAD_PASSWORD),
        ({"pin": "123"}, StaffProblem.BAD_PIN),
        ({"pin": "1234567"}, StaffProblem.BAD_PIN),
        ({"pin": "12a4"}, StaffProblem.BAD_PIN),
        ({"lang": "fr"}, StaffProblem.BAD_LANG),
        ({"phone": "call me"}, StaffProblem.BAD_PHONE),
        ({"role": "admin", "merchant_no": "12345"}, StaffProblem.BAD_MERCHANT_NO),
        ({"role": "admin", "merchant_no": MID}, StaffProblem.DUPLICATE_MERCHANT_NO),
        ({"merchant_no": "898310048160002"}, StaffProblem.MERCHANT_NO_NOT_ADMIN),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    world: World, change: dict[str, Any], problem: StaffProblem
) -> None:
    before = _count(world)
    args = {**GOOD, **change}
    with pytest.raises(ValueError) as caught:
        world.security.directory.add_staff(
            args.pop("staff_no"), args.pop("name"), args.pop("role"), args.pop("password"), **args
        )
    assert isinstance(caught.value, StaffError) and caught.value.code is problem
    assert caught.value.text("en") and caught.value.text("zh_CN") != caught.value.text("en")
    assert _count(world) == before


def test_setters_check_their_input_and_take_effect(world: World) -> None:
    directory = world.security.directory
    with pytest.raises(StaffError):
        directory.set_password(world.cashier, "short")
    with pytest.raises(StaffError):
        directory.set_pin(world.manager, "12")
    with pytest.raises(StaffError):
        directory.set_lang(world.cashier, "de")
    world.security.login("3001", "cashier-pass", "cashier")  # unchanged
    directory.set_password(world.cashier, "brand-new")
    with pytest.raises(Exception, match="wrong staff number or password"):
        world.security.login("3001", "cashier-pass", "cashier")
    world.security.login("3001", "brand-new", "cashier")
    directory.set_lang(world.cashier, "en")
    assert directory.get(world.cashier).lang == "en"
    with pytest.raises(StaffError):
        directory.set_lang(999, "en")


def test_the_last_enabled_admin_cannot_be_disabled(world: World) -> None:
    with pytest.raises(StaffError) as caught:
        world.security.directory.disable(world.admin)
    assert caught.value.code is StaffProblem.LAST_ADMIN
    second = world.security.directory.add_staff("1002", "Second", "admin", "admin-two")
    world.security.directory.disable(world.admin)
    assert world.security.directory.get(world.admin).disabled
    with pytest.raises(StaffError):
        world.security.directory.disable(second.id)


def test_seed_demo_staff_is_idempotent(world: World) -> None:
    engine = world.engine
    with engine.begin() as conn:  # an empty store
        conn.execute(staff.delete())
    assert seed_demo_staff(engine, merchant_no=MID, hasher=fast_hasher()) == len(DEMO_LOGINS)
    with engine.connect() as conn:
        before = [tuple(r) for r in conn.execute(select(staff).order_by(staff.c.id))]
    assert seed_demo_staff(engine, merchant_no=MID, hasher=fast_hasher()) == 0
    with engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(select(staff).order_by(staff.c.id))] == before
    security = Security(engine, hasher=fast_hasher(), clock=world.clock)
    roles = {login.role for login in DEMO_LOGINS}
    assert roles == {"admin", "manager", "cashier"}
    for login in DEMO_LOGINS:
        outcome = security.login(login.staff_no, login.password, "cashier")
        assert outcome.staff.role == login.role and outcome.staff.name == login.name
        assert login.staff_no in login.describe() and login.password in login.describe()
    owner = security.login(MID, next(d for d in DEMO_LOGINS if d.role == "admin").password, "admin")
    assert owner.needs_second_factor
    manager = next(d for d in DEMO_LOGINS if d.role == "manager")
    assert manager.pin is not None
    security.authorize_override(
        manager.staff_no,
        manager.pin,
        "refund_large",
        cashier_staff_id=security.directory.find("3001").id,  # type: ignore[union-attr]
        detail="demo",
    )
