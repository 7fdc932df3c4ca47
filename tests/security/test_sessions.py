"""Server-side sessions: the token only hashed, the idle lock and its unlock by the same
operator, logout, disabling, the absolute expiry, the CSRF check."""

from __future__ import annotations

from sqlalchemy import select, text

from smartpos.security.errors import AuthRefusal
from smartpos.security.lockout import MAX_FAILED_TRIES
from smartpos.security.sessions import PENDING_MINUTES, SESSION_MAX_HOURS, check_csrf
from smartpos.security.tables import staff_sessions
from tests.security.conftest import World, refused


def _dump(world: World) -> str:
    """Every value of every table, as text: what someone with the database file sees."""
    out: list[str] = []
    with world.engine.connect() as conn:
        for table in ("staff", "staff_sessions", "sms_codes", "sms_outbox", "overrides"):
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                out.extend(str(value) for value in row)
    return "\n".join(out)


def test_the_database_keeps_only_the_tokens_hash(world: World) -> None:
    outcome = world.security.login("3001", "cashier-pass", "cashier")
    assert len(outcome.token) >= 43
    assert outcome.token not in _dump(world)
    with world.engine.connect() as conn:
        stored = conn.execute(select(staff_sessions.c.token_sha256)).scalar_one()
    assert len(stored) == 64 and stored != outcome.token
    found = world.security.session(outcome.token)
    assert found is not None and found.staff_id == world.cashier and found.usable
    assert world.security.session(outcome.token[:-1] + "x") is None
    assert world.security.session(stored) is None  # the hash is not a token


def test_idle_for_fifteen_minutes_locks_and_touch_keeps_it_open(world: World) -> None:
    token = world.security.login("3001", "cashier-pass", "cashier").token
    world.clock.advance(minutes=14)
    assert world.security.touch(token) is not None
    world.clock.advance(minutes=15)  # 15 minutes after the last request: not yet
    found = world.security.session(token)
    assert found is not None and not found.locked
    world.clock.advance(seconds=1)
    found = world.security.session(token)
    assert found is not None and found.locked and not found.usable
    assert world.security.effective_permissions(found) == frozenset()
    with refused(AuthRefusal.SESSION_LOCKED):
        world.security.authorize(token, "sell")
    # Touching a locked session does not open it again.
    world.security.touch(token)
    found = world.security.session(token)
    assert found is not None and found.locked


def test_only_the_same_operators_password_unlocks(world: World) -> None:
    token = world.security.login("3001", "cashier-pass", "cashier").token
    world.security.lock(token)
    with refused(AuthRefusal.BAD_CREDENTIALS):
        world.security.unlock(token, "other-pass")  # another cashier's password
    with refused(AuthRefusal.BAD_CREDENTIALS):
        world.security.unlock(token, "manager-pass")
    found = world.security.session(token)
    assert found is not None and found.locked
    unlocked = world.security.unlock(token, "cashier-pass")
    assert not unlocked.locked
    found = world.security.session(token)
    assert found is not None and found.usable
    assert world.security.authorize(token, "sell").id == found.id


def test_wrong_unlock_passwords_count_and_the_lock_ends_the_session(world: World) -> None:
    token = world.security.login("3001", "cashier-pass", "cashier").token
    world.security.lock(token)
    for _ in range(MAX_FAILED_TRIES - 1):
        with refused(AuthRefusal.BAD_CREDENTIALS):
            world.security.unlock(token, "guess")
    with refused(AuthRefusal.LOCKED):
        world.security.unlock(token, "guess")
    assert world.security.session(token) is None
    with refused(AuthRefusal.LOCKED):
        world.security.login("3001", "cashier-pass", "cashier")


def test_logout_ends_the_session_for_good(world: World) -> None:
    token = world.security.login("3001", "cashier-pass", "cashier").token
    world.security.logout(token)
    assert world.security.session(token) is None
    with refused(AuthRefusal.NO_SESSION):
        world.security.unlock(token, "cashier-pass")
    with refused(AuthRefusal.NO_SESSION):
        world.security.authorize(token, "sell")
    world.security.logout(token)  # twice: nothing more happens
    with world.engine.connect() as conn:
        row = conn.execute(select(staff_sessions)).one()
    assert row.end_reason == "logout"


def test_disabling_a_staff_member_ends_their_sessions(world: World) -> None:
    first = world.security.login("3001", "cashier-pass", "cashier").token
    second = world.security.login("3001", "cashier-pass", "cashier").token
    other = world.security.login("3002", "other-pass", "cashier").token
    world.security.directory.disable(world.cashier)
    assert world.security.session(first) is None and world.security.session(second) is None
    assert world.security.session(other) is not None
    # Enabling again does not bring the old sessions back.
    world.security.directory.enable(world.cashier)
    assert world.security.session(first) is None


def test_sessions_end_after_the_absolute_maximum(world: World) -> None:
    token = world.security.login("3001", "cashier-pass", "cashier").token
    for _ in range(SESSION_MAX_HOURS * 6 - 1):  # busy all day: a request every 10 minutes
        world.clock.advance(minutes=10)
        assert world.security.touch(token) is not None
    world.clock.advance(minutes=10)
    assert world.security.touch(token) is None
    assert world.security.session(token) is None


def test_a_pending_admin_session_expires_before_it_idles(world: World) -> None:
    outcome = world.security.login("1001", "owner-pass", "admin")
    world.clock.advance(minutes=PENDING_MINUTES - 1)
    found = world.security.session(outcome.token)
    assert found is not None and not found.second_factor_ok and not found.locked
    with refused(AuthRefusal.SECOND_FACTOR_REQUIRED):
        world.security.authorize(outcome.token, "reports")
    world.clock.advance(minutes=1)
    assert world.security.session(outcome.token) is None


def test_csrf_check(world: World) -> None:
    outcome = world.security.login("3001", "cashier-pass", "cashier")
    found = world.security.session(outcome.token)
    assert found is not None and found.csrf == outcome.csrf
    assert check_csrf(found, outcome.csrf)
    assert not check_csrf(found, outcome.csrf[:-1])
    assert not check_csrf(found, "")
    assert not check_csrf(found, None)
    assert not check_csrf(found, "令牌")
    other = world.security.login("3002", "other-pass", "cashier")
    assert not world.security.check_csrf(found, other.csrf)


def test_passwords_and_pins_are_not_in_the_database(world: World) -> None:
    world.security.login("3001", "cashier-pass", "cashier")
    dump = _dump(world)
    for secret in ("owner-pass", "manager-pass", "cashier-pass", "other-pass", "1357", "2468"):
        assert secret not in dump
    assert dump.count("$argon2id$") == 6  # four passwords, two PINs
