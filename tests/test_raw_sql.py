"""Rows written on the raw cursor read back through SQLAlchemy unchanged (both databases)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from smartpos.db.engine import make_engine
from smartpos.db.lock import AlreadyLocked
from smartpos.db.migrate import upgrade
from smartpos.db.raw import Query, Raw
from smartpos.host import ledger
from smartpos.host.pipeline import BatchWriter
from smartpos.host.tables import transfers
from tests.pg import fresh_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'raw.db'}"
        return
    with fresh_database("smartpos_raw") as pg:
        yield pg


def _card_funded_with_500(url: str) -> tuple[Engine, int, int]:
    """A migrated host database with a card account (no overdraw) holding 500 from a
    merchant account (may overdraw): the engine and the two account ids."""
    engine = make_engine(url)
    upgrade(engine, "host")
    with engine.begin() as conn:
        a = ledger.create_account(conn, "a", "card", must_not_overdraw=True)
        b = ledger.create_account(conn, "b", "merchant", must_not_overdraw=False)
        ledger.transfer(conn, "fund", b, a, 500, "opening")
    return engine, a, b


def test_raw_rows_round_trip_through_sqlalchemy(url: str) -> None:
    engine, a, b = _card_funded_with_500(url)
    try:
        with engine.begin() as conn:
            ledger.hold(conn, "h1", a, b, 200, "purchase")
            with pytest.raises(ledger.InsufficientFunds):
                ledger.hold(conn, "h2", a, b, 301, "purchase")
            assert ledger.available(conn, a) == 300
        with engine.connect() as conn:
            row = conn.execute(select(transfers).where(transfers.c.id == "h1")).one()
            assert row.phase == "pending" and row.amount_minor == 200
            created = row.created_at.replace(tzinfo=row.created_at.tzinfo or UTC)
            assert abs((datetime.now(UTC) - created).total_seconds()) < 60
            assert ledger.check(conn).balanced
            raw = Raw.of(conn)
            got = raw.first(
                Query(
                    "SELECT id, amount_minor FROM transfers WHERE id = ?", ("id", "amount_minor")
                ),
                ("fund",),
            )
            assert (got.id, got.amount_minor) == ("fund", 500)
    finally:
        engine.dispose()


def test_overdraw_check_and_debit_are_one_statement(url: str) -> None:
    """The balance check sits in the debit's UPDATE: a refused hold or transfer writes
    nothing, an exact cover passes, an account allowed to overdraw is never refused, and an
    unknown account is a ledger error, not "insufficient funds"."""
    engine, a, b = _card_funded_with_500(url)
    try:
        with engine.begin() as conn:
            ledger.hold(conn, "h1", a, b, 200, "purchase")
            before = ledger.check(conn)
            for move in (ledger.hold, ledger.transfer):
                with pytest.raises(ledger.InsufficientFunds):
                    move(conn, "too-much", a, b, 301, "purchase")
                assert ledger.get_transfer(conn, "too-much") is None
            assert ledger.check(conn) == before and ledger.available(conn, a) == 300
            ledger.hold(conn, "exact", a, b, 300, "purchase")
            assert ledger.available(conn, a) == 0
            ledger.transfer(conn, "overdraw-ok", b, a, 10_000, "settlement")
            with pytest.raises(ledger.LedgerError) as exc:
                ledger.hold(conn, "nobody", 9999, b, 1, "purchase")
            assert not isinstance(exc.value, ledger.InsufficientFunds)
            assert ledger.get_transfer(conn, "nobody") is None
            assert ledger.check(conn).balanced
    finally:
        engine.dispose()


def test_a_fresh_hold_that_is_not_fresh_fails_instead_of_holding_twice(url: str) -> None:
    """``hold(fresh=True)`` skips the idempotency lookup; an id already used makes the
    insert fail (the caller's request is undone), it never becomes a second hold."""
    engine, a, b = _card_funded_with_500(url)
    try:
        with engine.begin() as conn:
            ledger.hold(conn, "h1", a, b, 200, "purchase", fresh=True)
        with engine.connect() as conn:
            trans = conn.begin()
            raw = Raw.of(conn)
            raw.savepoint()
            with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
                ledger.hold(conn, "h1", a, b, 100, "purchase", fresh=True)
                raw.release()  # on PostgreSQL the insert is sent here
            raw.rollback_to_savepoint()
            trans.commit()
        with engine.connect() as conn:
            assert ledger.available(conn, a) == 300
            assert ledger.check(conn).balanced
    finally:
        engine.dispose()


def test_query_placeholders_per_dialect() -> None:
    q = Query("SELECT a FROM t WHERE b = ? AND c = ?", ("a",))
    assert q.sql.count("?") == 2 and q.pg_sql.count("%s") == 2


def test_request_savepoints_stay_inside_the_batch_transaction(url: str) -> None:
    """A released savepoint is not a commit (on SQLite, a leading SAVEPOINT would otherwise
    become the transaction itself), and rolling back to one undoes only its request."""
    engine = make_engine(url)
    upgrade(engine, "host")
    try:
        with engine.begin() as conn:
            a = ledger.create_account(conn, "a", "card", must_not_overdraw=False)
            b = ledger.create_account(conn, "b", "merchant", must_not_overdraw=False)
        with engine.connect() as conn:
            trans = conn.begin()
            raw = Raw.of(conn)
            raw.savepoint()  # the first statement of the batch
            ledger.transfer(conn, "kept", a, b, 100, "test")
            raw.release()
            raw.savepoint()
            ledger.transfer(conn, "undone", a, b, 200, "test")
            raw.rollback_to_savepoint()
            assert ledger.get_transfer(conn, "kept") is not None
            assert ledger.get_transfer(conn, "undone") is None
            trans.rollback()  # the batch fails as a whole: nothing of it stays
        with engine.connect() as conn:
            assert ledger.get_transfer(conn, "kept") is None
            assert ledger.check(conn).balanced
    finally:
        engine.dispose()


def test_one_writer_per_database(url: str) -> None:
    """A second writer on the same database is refused at start, not left to hand out the
    same RRNs; once the first stops, another may start."""
    engine = make_engine(url)
    upgrade(engine, "host")

    async def go() -> None:
        first = BatchWriter(engine, processor=None)  # type: ignore[arg-type]
        second = BatchWriter(engine, processor=None)  # type: ignore[arg-type]
        first.start()
        with pytest.raises(AlreadyLocked, match="host-writer"):
            second.start()
        await first.stop()
        second.start()
        await second.stop()

    try:
        asyncio.run(go())
    finally:
        engine.dispose()
