"""The permission matrix: its defaults, operator mode, the limits, and the merchant's TOML
file (a bad one refused, naming the key)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from smartpos.security.errors import StaffError, StaffProblem
from smartpos.security.permissions import Permission, Permissions

P = Permission
CASHIER = {
    P.SELL,
    P.LOOKUP,
    P.VOID_OWN,
    P.REFUND_SMALL,
    P.DISCOUNT_SMALL,
    P.SHIFT,
    P.SELFTEST,
    P.REPRINT,
}


def test_default_matrix() -> None:
    perms = Permissions()
    assert {p for p in P if perms.allowed("cashier", p)} == CASHIER
    assert {p for p in P if perms.allowed("manager", p)} == set(P) - {P.STAFF_EDIT}
    assert all(perms.allowed("admin", p) for p in P)
    assert not perms.allowed("cashier", "void_any") and not perms.allowed("nobody", "sell")
    with pytest.raises(ValueError):
        perms.allowed("admin", "fly")


def test_cashier_mode_gives_at_most_the_cashiers_permissions() -> None:
    perms = Permissions()
    for role in ("admin", "manager", "cashier"):
        assert perms.effective_permissions(role, "cashier") == CASHIER
    assert perms.effective_permissions("admin", "admin") == frozenset(P)
    assert perms.effective_permissions("manager", "admin") == frozenset(P) - {P.STAFF_EDIT}
    assert perms.effective_permissions("cashier", "admin") == frozenset()


def test_limits_decide_small_or_large() -> None:
    perms = Permissions()
    assert perms.refund_permission(10_000) is P.REFUND_SMALL  # ¥100.00 exactly
    assert perms.refund_permission(10_001) is P.REFUND_LARGE
    assert perms.discount_permission(10) is P.DISCOUNT_SMALL
    assert perms.discount_permission(11) is P.DISCOUNT_LARGE
    assert perms.discount_permission(Fraction(1001, 100)) is P.DISCOUNT_LARGE
    assert perms.discount_permission_minor(1000, 10_000) is P.DISCOUNT_SMALL
    assert perms.discount_permission_minor(1001, 10_000) is P.DISCOUNT_LARGE
    with pytest.raises(ValueError):
        perms.refund_permission(-1)
    with pytest.raises(ValueError):
        perms.discount_permission(101)


def test_the_toml_file_overrides_roles_and_limits(tmp_path: Path) -> None:
    path = tmp_path / "permissions.toml"
    path.write_text(
        '[roles]\ncashier = ["sell", "lookup", "shift"]\n\n'
        "[limits]\nrefund_limit_minor = 20000\ndiscount_limit_percent = 15\n",
        encoding="utf-8",
    )
    perms = Permissions.load(path)
    assert perms.matrix["cashier"] == {P.SELL, P.LOOKUP, P.SHIFT}
    assert perms.matrix["manager"] == Permissions().matrix["manager"]  # not listed: default
    assert perms.effective_permissions("manager", "cashier") == {P.SELL, P.LOOKUP, P.SHIFT}
    assert perms.refund_permission(20_000) is P.REFUND_SMALL
    assert perms.discount_permission(15) is P.DISCOUNT_SMALL
    assert Permissions.load(tmp_path / "absent.toml") == Permissions() == Permissions.load(None)


@pytest.mark.parametrize(
    ("content", "key"),
    [
        ("[roles\n", "(file)"),
        ("colour = 1\n", "colour"),
        ('[roles]\nowner = ["sell"]\n', "roles.owner"),
        ('[roles]\ncashier = "sell"\n', "roles.cashier"),
        ('[roles]\ncashier = ["sell", "sel"]\n', "roles.cashier[1]"),
        ('[roles]\nadmin = ["sell"]\n', "roles.admin"),
        ("[limits]\nrefund_limit_minor = -1\n", "limits.refund_limit_minor"),
        ('[limits]\nrefund_limit_minor = "100"\n', "limits.refund_limit_minor"),
        ("[limits]\ndiscount_limit_percent = 101\n", "limits.discount_limit_percent"),
        ("[limits]\ndiscount_limit_percent = 10.5\n", "limits.discount_limit_percent"),
        ("[limits]\nrefund_max = 1\n", "limits.refund_max"),
    ],
)
def test_a_bad_file_is_refused_naming_the_key(tmp_path: Path, content: str, key: str) -> None:
    path = tmp_path / "permissions.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(StaffError) as caught:
        Permissions.load(path)
    assert caught.value.code is StaffProblem.BAD_PERMISSIONS_FILE
    assert f"{path}: {key}: " in str(caught.value)
    assert key in caught.value.text("zh_CN")
