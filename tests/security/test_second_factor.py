"""The admin mode's second factor: TOTP (enrolment, ±1 step, no replay) and SMS codes
(through the outbox, 5 minutes, 5 tries, stored hashed); wrong codes count toward the
lockout."""

from __future__ import annotations

import re
from datetime import datetime

import pyotp
import pytest
from sqlalchemy import select

from smartpos.security.errors import AuthError, AuthRefusal
from smartpos.security.lockout import MAX_FAILED_TRIES
from smartpos.security.second_factor import (
    SMS_CODE_MINUTES,
    SMS_MAX_PER_SESSION,
    SMS_RESEND_SECONDS,
    SMS_TRIES,
)
from smartpos.security.tables import sms_codes, staff
from tests.security.conftest import MID, World, refused


def code_at(secret: str, at: datetime, steps: int = 0) -> str:
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(at) + steps)


def enrolled(world: World, staff_id: int) -> str:
    """Enrol ``staff_id``'s authenticator; returns its secret."""
    enrolment = world.security.second_factor.begin_totp(staff_id)
    world.security.second_factor.confirm_totp(staff_id, code_at(enrolment.secret, world.clock.at))
    world.clock.advance(seconds=30)  # the next step: the enrolment's code is used
    return enrolment.secret


def sms_code(world: World) -> str:
    found = re.search(r"\b(\d{6})\b", world.last_sms().text)
    assert found is not None
    return found.group(1)


def test_admin_mode_is_pending_until_the_totp_code_verifies(world: World) -> None:
    secret = enrolled(world, world.admin)
    outcome = world.security.login("1001", "owner-pass", "admin")
    assert outcome.needs_second_factor and outcome.staff.totp_enrolled
    pending = world.security.session(outcome.token)
    assert pending is not None and not pending.usable
    assert world.security.effective_permissions(pending) == frozenset()
    with refused(AuthRefusal.SECOND_FACTOR_REQUIRED):
        world.security.authorize(outcome.token, "staff_edit")
    with refused(AuthRefusal.BAD_CODE):
        world.security.second_factor.verify_totp(outcome.token, "000000")
    verified = world.security.second_factor.verify_totp(
        outcome.token, code_at(secret, world.clock.at)
    )
    assert verified.second_factor_ok and verified.usable
    assert world.security.authorize(outcome.token, "staff_edit").mode == "admin"


def test_a_code_one_step_either_side_is_accepted_two_steps_not(world: World) -> None:
    secret = enrolled(world, world.manager)
    for steps, ok in ((-2, False), (2, False), (1, True), (-1, True)):
        token = world.security.login("2001", "manager-pass", "admin").token
        code = code_at(secret, world.clock.at, steps)
        if ok:
            world.security.second_factor.verify_totp(token, code)
            world.clock.advance(seconds=90)  # past the step just used
        else:
            with refused(AuthRefusal.BAD_CODE):
                world.security.second_factor.verify_totp(token, code)


def test_a_replayed_totp_code_is_refused(world: World) -> None:
    secret = enrolled(world, world.admin)
    code = code_at(secret, world.clock.at)
    first = world.security.login("1001", "owner-pass", "admin").token
    world.security.second_factor.verify_totp(first, code)
    # Someone who saw the code logs in with the stolen password in the same 30 seconds.
    second = world.security.login("1001", "owner-pass", "admin").token
    with refused(AuthRefusal.CODE_REUSED) as caught:
        world.security.second_factor.verify_totp(second, code)
    assert "等待下一个" in caught[0].text("zh_CN")
    # The code of an earlier step (still within the window) is refused too.
    with refused(AuthRefusal.CODE_REUSED):
        world.security.second_factor.verify_totp(second, code_at(secret, world.clock.at, -1))
    world.clock.advance(seconds=30)
    world.security.second_factor.verify_totp(second, code_at(secret, world.clock.at))


def test_first_admin_login_enrols_the_authenticator(world: World) -> None:
    outcome = world.security.login(MID, "owner-pass", "admin")
    assert not outcome.staff.totp_enrolled
    with refused(AuthRefusal.NOT_ENROLLED):
        world.security.second_factor.verify_totp(outcome.token, "123456")
    enrolment = world.security.second_factor.begin_totp(outcome.staff.id)
    assert enrolment.uri.startswith("otpauth://totp/smartpos:1001?secret=" + enrolment.secret)
    assert enrolment.qr_svg.startswith("<svg") and "</svg>" in enrolment.qr_svg
    assert enrolment.secret not in repr(enrolment)
    # A reload of the page shows the same secret (the QR code already scanned).
    assert world.security.second_factor.begin_totp(outcome.staff.id).secret == enrolment.secret
    assert not world.security.directory.get(world.admin).totp_enrolled  # not yet
    world.security.second_factor.verify_totp(
        outcome.token, code_at(enrolment.secret, world.clock.at)
    )
    assert world.security.directory.get(world.admin).totp_enrolled


def test_confirm_totp_stores_the_secret_only_once_a_code_verifies(world: World) -> None:
    enrolment = world.security.second_factor.begin_totp(world.manager)
    with refused(AuthRefusal.BAD_CODE):
        world.security.second_factor.confirm_totp(world.manager, "999999")
    with world.engine.connect() as conn:
        assert (
            conn.execute(
                select(staff.c.totp_secret).where(staff.c.id == world.manager)
            ).scalar_one()
            is None
        )
    world.security.second_factor.confirm_totp(
        world.manager, code_at(enrolment.secret, world.clock.at)
    )
    assert world.security.directory.get(world.manager).totp_enrolled
    world.security.directory.reset_totp(world.manager)
    assert not world.security.directory.get(world.manager).totp_enrolled


def test_wrong_codes_count_toward_the_lockout(world: World) -> None:
    enrolled(world, world.admin)
    for _ in range(3):
        with pytest.raises(AuthError):
            world.security.login("1001", "wrong-pass", "cashier")
    token = world.security.login("1001", "owner-pass", "admin").token  # resets the count
    for _ in range(MAX_FAILED_TRIES - 1):
        with refused(AuthRefusal.BAD_CODE):
            world.security.second_factor.verify_totp(token, "000000")
    with refused(AuthRefusal.LOCKED):
        world.security.second_factor.verify_totp(token, "000000")
    assert world.security.session(token) is None  # the lock ended the pending session
    with refused(AuthRefusal.LOCKED):
        world.security.login("1001", "owner-pass", "admin")


def test_sms_code_through_the_outbox(world: World) -> None:
    outcome = world.security.login("2001", "manager-pass", "admin")
    world.security.second_factor.send_sms_code(outcome.token)
    message = world.last_sms()
    assert message.phone == "13800000002" and "验证码" in message.text  # the manager's language
    code = sms_code(world)
    with world.engine.connect() as conn:
        stored = conn.execute(select(sms_codes.c.code_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and code not in stored
    with refused(AuthRefusal.BAD_CODE):
        world.security.second_factor.verify_sms(outcome.token, f"{(int(code) + 1) % 10**6:06d}")
    verified = world.security.second_factor.verify_sms(outcome.token, code)
    assert verified.usable
    assert world.security.authorize(outcome.token, "settle").id == verified.id


def test_an_sms_code_expires_after_five_minutes(world: World) -> None:
    token = world.security.login("2001", "manager-pass", "admin").token
    world.security.second_factor.send_sms_code(token)
    code = sms_code(world)
    world.clock.advance(minutes=SMS_CODE_MINUTES)
    with refused(AuthRefusal.CODE_EXPIRED):
        world.security.second_factor.verify_sms(token, code)
    with refused(AuthRefusal.NO_CODE):
        world.security.second_factor.verify_sms(token, code)
    # A new code works (the pending session has 10 minutes).
    world.security.second_factor.send_sms_code(token)
    world.clock.advance(minutes=SMS_CODE_MINUTES - 1)
    world.security.second_factor.verify_sms(token, sms_code(world))


def test_an_sms_code_has_five_tries(world: World) -> None:
    token = world.security.login("2001", "manager-pass", "admin").token
    world.security.second_factor.send_sms_code(token)
    code = sms_code(world)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(SMS_TRIES - 1):
        with refused(AuthRefusal.BAD_CODE):
            world.security.second_factor.verify_sms(token, wrong)
    with refused(AuthRefusal.TOO_MANY_TRIES):
        world.security.second_factor.verify_sms(token, wrong)
    # Even the right code is refused now: ask for a new one.
    with refused(AuthRefusal.TOO_MANY_TRIES):
        world.security.second_factor.verify_sms(token, code)
    world.clock.advance(seconds=SMS_RESEND_SECONDS)
    world.security.second_factor.send_sms_code(token)
    world.security.second_factor.verify_sms(token, sms_code(world))
    # The five wrong codes counted toward the lockout; the success reset the count.
    with world.engine.connect() as conn:
        assert (
            conn.execute(
                select(staff.c.failed_tries).where(staff.c.id == world.manager)
            ).scalar_one()
            == 0
        )


def test_a_new_sms_code_replaces_the_last_and_sending_is_limited(world: World) -> None:
    token = world.security.login("2001", "manager-pass", "admin").token
    world.security.second_factor.send_sms_code(token)
    first = sms_code(world)
    with refused(AuthRefusal.SMS_TOO_SOON) as caught:
        world.security.second_factor.send_sms_code(token)
    assert caught[0].params["seconds"] == SMS_RESEND_SECONDS
    for _ in range(SMS_MAX_PER_SESSION - 1):
        world.clock.advance(seconds=SMS_RESEND_SECONDS)
        world.security.second_factor.send_sms_code(token)
    world.clock.advance(seconds=SMS_RESEND_SECONDS)
    with refused(AuthRefusal.SMS_LIMIT):
        world.security.second_factor.send_sms_code(token)
    last = sms_code(world)
    if first != last:
        with refused(AuthRefusal.BAD_CODE):
            world.security.second_factor.verify_sms(token, first)
    world.security.second_factor.verify_sms(token, last)


def test_sms_needs_a_phone_and_a_session(world: World) -> None:
    world.security.directory.set_phone(world.manager, None)
    token = world.security.login("2001", "manager-pass", "admin").token
    with refused(AuthRefusal.NO_PHONE):
        world.security.second_factor.send_sms_code(token)
    with refused(AuthRefusal.NO_CODE):
        world.security.second_factor.verify_sms(token, "123456")
    with refused(AuthRefusal.NO_SESSION):
        world.security.second_factor.send_sms_code("not-a-token")
    assert world.security.sms_outbox() == []


def test_a_pluggable_sms_sender(world: World) -> None:
    from smartpos.security.service import Security
    from tests.security.conftest import fast_hasher

    sent: list[tuple[str, str]] = []

    class Gateway:
        def send(self, phone: str, text: str) -> None:
            sent.append((phone, text))

    security = Security(world.engine, hasher=fast_hasher(), sms_sender=Gateway(), clock=world.clock)
    token = security.login("1001", "owner-pass", "admin").token
    security.second_factor.send_sms_code(token)
    assert [phone for phone, _ in sent] == ["13800000001"]
    assert security.sms_outbox() == []  # nothing kept: the gateway sent it
    code = re.search(r"\d{6}", sent[0][1])
    assert code is not None
    security.second_factor.verify_sms(token, code.group(0))
