"""Login: staff or merchant number and password, the operator mode, and the lockout after
10 failures in a row (30 minutes, the right password refused meanwhile)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from smartpos.security.errors import AuthError, AuthRefusal
from smartpos.security.lockout import LOCK_MINUTES, MAX_FAILED_TRIES
from smartpos.security.tables import staff
from tests.security.conftest import MID, World, fast_hasher, refused


def test_login_by_staff_number_and_by_merchant_number(world: World) -> None:
    by_no = world.security.login("3001", "cashier-pass", "cashier")
    assert by_no.staff.id == world.cashier and not by_no.needs_second_factor
    assert by_no.session.mode == "cashier" and by_no.token and by_no.csrf
    owner = world.security.login(MID, "owner-pass", "cashier")
    assert owner.staff.id == world.admin and owner.staff.merchant_no == MID
    assert owner.token != by_no.token


def test_nine_wrong_passwords_then_the_right_one_works(world: World) -> None:
    for _ in range(MAX_FAILED_TRIES - 1):
        with refused(AuthRefusal.BAD_CREDENTIALS):
            world.security.login("3001", "wrong-pass", "cashier")
    assert world.security.login("3001", "cashier-pass", "cashier").staff.id == world.cashier
    # The success reset the count: nine more wrong ones still do not lock.
    for _ in range(MAX_FAILED_TRIES - 1):
        with refused(AuthRefusal.BAD_CREDENTIALS):
            world.security.login("3001", "wrong-pass", "cashier")
    world.security.login("3001", "cashier-pass", "cashier")


def test_ten_wrong_passwords_lock_the_account_for_thirty_minutes(world: World) -> None:
    for _ in range(MAX_FAILED_TRIES - 1):
        with refused(AuthRefusal.BAD_CREDENTIALS):
            world.security.login("3001", "wrong-pass", "cashier")
    unlocks_at = world.clock.at + timedelta(minutes=LOCK_MINUTES)
    with refused(AuthRefusal.LOCKED) as tenth:
        world.security.login("3001", "wrong-pass", "cashier")
    assert tenth[0].unlocks_at == unlocks_at
    world.clock.advance(minutes=29, seconds=59)
    with refused(AuthRefusal.LOCKED) as right:
        world.security.login("3001", "cashier-pass", "cashier")
    # The refusal says when, in both languages.
    assert right[0].unlocks_at == unlocks_at
    assert "2026-12-03 02:30 UTC" in right[0].text("en")
    assert "2026-12-03 02:30 UTC" in right[0].text("zh_CN") and "锁定" in right[0].text("zh_CN")
    # The other accounts are not locked.
    world.security.login("3002", "other-pass", "cashier")
    world.clock.advance(seconds=1)
    assert world.security.login("3001", "cashier-pass", "cashier").staff.id == world.cashier


def test_after_a_lock_runs_out_the_count_starts_again(world: World) -> None:
    for _ in range(MAX_FAILED_TRIES):
        with pytest.raises(AuthError):
            world.security.login("3001", "wrong-pass", "cashier")
    world.clock.advance(minutes=LOCK_MINUTES)
    # One more wrong password is one failure of a fresh count, not a new lock.
    with refused(AuthRefusal.BAD_CREDENTIALS):
        world.security.login("3001", "wrong-pass", "cashier")
    world.security.login("3001", "cashier-pass", "cashier")


def test_unknown_number_and_wrong_password_are_refused_alike(world: World) -> None:
    with refused(AuthRefusal.BAD_CREDENTIALS) as unknown:
        world.security.login("9999", "cashier-pass", "cashier")
    with refused(AuthRefusal.BAD_CREDENTIALS) as wrong:
        world.security.login("3001", "wrong-pass", "cashier")
    with refused(AuthRefusal.BAD_CREDENTIALS) as nonsense:
        world.security.login("not digits", "x", "cashier")
    assert unknown[0].text("en") == wrong[0].text("en") == nonsense[0].text("en")
    assert unknown[0].text("zh_CN") == wrong[0].text("zh_CN") == "工号或密码错误"


def test_an_unknown_number_costs_an_argon2_verification_too(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str] = []
    hasher = world.security.hasher
    real = hasher._verify

    def counting(stored: str, secret: str) -> bool:
        verified.append(stored)
        return real(stored, secret)

    monkeypatch.setattr(hasher, "_verify", counting)
    with pytest.raises(AuthError):
        world.security.login("9999", "whatever", "cashier")
    with pytest.raises(AuthError):
        world.security.login("3001", "whatever", "cashier")
    assert len(verified) == 2 and all(v.startswith("$argon2id$") for v in verified)


def test_a_cashier_cannot_log_in_in_admin_mode(world: World) -> None:
    with refused(AuthRefusal.MODE_NOT_ALLOWED) as caught:
        world.security.login("3001", "cashier-pass", "admin")
    assert caught[0].text("en") == "a cashier cannot log in in admin mode"
    assert caught[0].text("zh_CN") == "收银员不能以管理模式登录"
    # The right password was given: it does not count toward the lockout.
    with world.engine.connect() as conn:
        assert (
            conn.execute(
                select(staff.c.failed_tries).where(staff.c.id == world.cashier)
            ).scalar_one()
            == 0
        )


def test_admin_and_manager_log_in_in_admin_mode_pending(world: World) -> None:
    for who, password in (("1001", "owner-pass"), ("2001", "manager-pass")):
        outcome = world.security.login(who, password, "admin")
        assert outcome.needs_second_factor and outcome.session.mode == "admin"


def test_a_disabled_account_is_refused(world: World) -> None:
    world.security.directory.disable(world.cashier)
    with refused(AuthRefusal.DISABLED):
        world.security.login("3001", "cashier-pass", "cashier")
    # A wrong password gets the usual refusal: "disabled" is said only to the right one.
    with refused(AuthRefusal.BAD_CREDENTIALS):
        world.security.login("3001", "wrong-pass", "cashier")
    world.security.directory.enable(world.cashier)
    world.security.login("3001", "cashier-pass", "cashier")


def test_an_unknown_mode_is_a_programming_error(world: World) -> None:
    with pytest.raises(ValueError, match="mode"):
        world.security.login("3001", "cashier-pass", "root")


def test_a_hash_of_old_parameters_is_renewed_at_login(world: World) -> None:
    from argon2 import PasswordHasher

    old = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash("cashier-pass")
    with world.engine.begin() as conn:
        conn.execute(update(staff).where(staff.c.id == world.cashier).values(password_hash=old))
    world.security.login("3001", "cashier-pass", "cashier")
    with world.engine.connect() as conn:
        renewed = conn.execute(
            select(staff.c.password_hash).where(staff.c.id == world.cashier)
        ).scalar_one()
    assert renewed != old and not fast_hasher().needs_rehash(renewed)
    world.security.login("3001", "cashier-pass", "cashier")


@pytest.mark.postgres
def test_lockout_on_postgres(pg_world: World) -> None:
    security = pg_world.security
    for _ in range(MAX_FAILED_TRIES - 1):
        with refused(AuthRefusal.BAD_CREDENTIALS):
            security.login("3001", "wrong-pass", "cashier")
    with refused(AuthRefusal.LOCKED) as caught:
        security.login("3001", "wrong-pass", "cashier")
    with refused(AuthRefusal.LOCKED):
        security.login("3001", "cashier-pass", "cashier")
    pg_world.clock.advance(minutes=LOCK_MINUTES)
    assert caught[0].unlocks_at == pg_world.clock.at
    outcome = security.login(MID, "owner-pass", "admin")
    assert outcome.needs_second_factor
    assert security.login("3001", "cashier-pass", "cashier").staff.id == pg_world.cashier


@pytest.mark.postgres
def test_concurrent_failures_are_all_counted_on_postgres(pg_world: World) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def wrong(_: int) -> str:
        try:
            pg_world.security.login("3001", "wrong-pass", "cashier")
        except AuthError as exc:
            return exc.code
        return "ok"

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(wrong, range(MAX_FAILED_TRIES)))
    assert sorted(codes).count("bad_credentials") == MAX_FAILED_TRIES - 1
    assert codes.count("locked") == 1
    with refused(AuthRefusal.LOCKED):
        pg_world.security.login("3001", "cashier-pass", "cashier")
