"""Fixtures of the security tests: a POS database (SQLite, or PostgreSQL for the tests
marked so), a clock the test moves, cheap argon2 parameters, the demo's kind of staff."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine

from smartpos.security.errors import AuthError, AuthRefusal
from smartpos.security.passwords import Hasher
from smartpos.security.service import Security
from smartpos.security.sms import SmsMessage
from tests.posdb import pos_database

T0 = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
MID = "898310048160001"


class FakeClock:
    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@contextmanager
def refused(code: AuthRefusal) -> Iterator[list[AuthError]]:
    """Expect the refusal ``code``; the list it yields holds the error afterwards."""
    caught: list[AuthError] = []
    with pytest.raises(AuthError) as info:
        yield caught
    assert info.value.code == code, info.value
    caught.append(info.value)


def fast_hasher() -> Hasher:
    # argon2id at the lowest cost: the same code paths, a millisecond a hash.
    return Hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@dataclass
class World:
    engine: Engine
    clock: FakeClock
    security: Security
    admin: int
    manager: int
    cashier: int
    other_cashier: int

    def last_sms(self) -> SmsMessage:
        return self.security.sms_outbox(limit=1)[0]


def make_world(engine: Engine) -> World:
    clock = FakeClock()
    security = Security(engine, hasher=fast_hasher(), clock=clock)
    add = security.directory.add_staff
    admin = add(
        "1001", "王老板", "admin", "owner-pass", pin="1357", phone="13800000001", merchant_no=MID
    )
    manager = add("2001", "李店长", "manager", "manager-pass", pin="2468", phone="13800000002")
    cashier = add("3001", "张收银", "cashier", "cashier-pass")
    other = add("3002", "Alex Chen", "cashier", "other-pass", lang="en")
    return World(engine, clock, security, admin.id, manager.id, cashier.id, other.id)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with pos_database("sqlite", tmp_path) as engine:
        yield make_world(engine)


@pytest.fixture
def pg_world(tmp_path: Path) -> Iterator[World]:
    with pos_database("postgres", tmp_path, "smartpos_security") as engine:
        yield make_world(engine)
