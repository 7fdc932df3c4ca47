"""The issuer ledger's promises, one by one, on a real database (SQLite here; the PostgreSQL
run of the same code is in tests/integration): holds resolve at most once and only as holds,
a retry with the same id is the first result, a refused debit writes nothing, and check()
notices every kind of damage. Written after mutation testing showed which of these no test
held the code to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, update

from smartpos.db.engine import make_engine
from smartpos.db.migrate import upgrade
from smartpos.host import ledger
from smartpos.host.ledger import AlreadyResolved, InsufficientFunds, LedgerError
from smartpos.host.tables import accounts, transfers


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[Connection]:
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}", durable=False)
    upgrade(engine, "host")
    with engine.connect() as c, c.begin():
        yield c
    engine.dispose()


def accounts_of(conn: Connection) -> tuple[int, int, int]:
    funding = ledger.create_account(conn, "funding", "control", must_not_overdraw=False)
    card = ledger.create_account(conn, "card", "card", must_not_overdraw=True)
    shop = ledger.create_account(conn, "shop", "merchant", must_not_overdraw=False)
    ledger.transfer(conn, "open", funding, card, 10_000, "opening")
    return funding, card, shop


def counters(conn: Connection, acct: int) -> tuple[int, int, int, int]:
    row = conn.execute(accounts.select().where(accounts.c.id == acct)).one()
    return (row.debits_pending, row.debits_posted, row.credits_pending, row.credits_posted)


def assert_balanced(conn: Connection) -> None:
    report = ledger.check(conn)
    assert report.balanced, report.problems


def test_a_hold_counts_against_the_balance_until_posted_or_voided(conn: Connection) -> None:
    _, card, shop = accounts_of(conn)
    ledger.hold(conn, "h1", card, shop, 3_000, "purchase")
    assert ledger.available(conn, card) == 7_000
    assert counters(conn, card) == (3_000, 0, 0, 10_000)
    assert counters(conn, shop) == (0, 0, 3_000, 0)
    assert ledger.pending_open(conn, "h1")
    ledger.post_pending(conn, "h1:capture", "h1")
    assert not ledger.pending_open(conn, "h1")
    assert ledger.available(conn, card) == 7_000
    assert counters(conn, card) == (0, 3_000, 0, 10_000)
    assert counters(conn, shop) == (0, 0, 0, 3_000)
    ledger.hold(conn, "h2", card, shop, 2_000, "purchase")
    ledger.void_pending(conn, "h2:void", "h2")
    assert ledger.available(conn, card) == 7_000
    assert counters(conn, shop) == (0, 0, 0, 3_000)
    assert_balanced(conn)


def test_a_hold_resolves_at_most_once(conn: Connection) -> None:
    _, card, shop = accounts_of(conn)
    ledger.hold(conn, "h", card, shop, 1_000, "purchase")
    first = ledger.void_pending(conn, "h:void", "h")
    # The same resolution again (a retry): the first result, nothing moves.
    assert ledger.void_pending(conn, "h:void", "h") == first
    before = counters(conn, card), counters(conn, shop)
    # Any other resolution of it: refused.
    with pytest.raises(AlreadyResolved):
        ledger.post_pending(conn, "h:capture", "h")
    with pytest.raises(AlreadyResolved):
        ledger.void_pending(conn, "h:void-again", "h")
    assert (counters(conn, card), counters(conn, shop)) == before
    assert_balanced(conn)


def test_only_a_hold_can_be_resolved(conn: Connection) -> None:
    _funding, card, shop = accounts_of(conn)
    with pytest.raises(LedgerError, match="not a pending transfer"):
        ledger.post_pending(conn, "x:capture", "open")  # a posted transfer
    with pytest.raises(LedgerError, match="not a pending transfer"):
        ledger.void_pending(conn, "x:void", "no-such-transfer")
    assert not ledger.pending_open(conn, "open")
    assert not ledger.pending_open(conn, "no-such-transfer")
    ledger.hold(conn, "h", card, shop, 500, "purchase")
    ledger.post_pending(conn, "h:capture", "h")
    with pytest.raises(LedgerError, match="not a pending transfer"):
        ledger.void_pending(conn, "c:void", "h:capture")  # a resolution is not a hold
    assert_balanced(conn)


def test_a_retry_with_the_same_id_is_the_first_result(conn: Connection) -> None:
    _, card, shop = accounts_of(conn)
    first = ledger.transfer(conn, "r1", shop, card, 700, "refund", force=True)
    assert ledger.transfer(conn, "r1", shop, card, 700, "refund", force=True) == first
    hold = ledger.hold(conn, "h1", card, shop, 300, "purchase")
    assert ledger.hold(conn, "h1", card, shop, 300, "purchase") == hold
    assert counters(conn, card) == (300, 0, 0, 10_700)
    # The same id with other content is a bug, never a second posting.
    with pytest.raises(LedgerError, match="other content"):
        ledger.transfer(conn, "r1", shop, card, 701, "refund", force=True)
    with pytest.raises(LedgerError, match="other content"):
        ledger.hold(conn, "h1", shop, card, 300, "purchase", force=True)
    assert counters(conn, card) == (300, 0, 0, 10_700)
    assert_balanced(conn)


def test_a_refused_debit_writes_nothing(conn: Connection) -> None:
    funding, card, shop = accounts_of(conn)
    ledger.hold(conn, "h1", card, shop, 9_000, "purchase")
    before = counters(conn, card), counters(conn, shop)
    with pytest.raises(InsufficientFunds):
        ledger.hold(conn, "h2", card, shop, 1_001, "purchase")
    with pytest.raises(InsufficientFunds):
        ledger.transfer(conn, "t2", card, shop, 1_001, "purchase")
    assert (counters(conn, card), counters(conn, shop)) == before
    assert ledger.get_transfer(conn, "h2") is None and ledger.get_transfer(conn, "t2") is None
    # Exactly what is left can be spent; an account that may overdraw always can.
    ledger.hold(conn, "h3", card, shop, 1_000, "purchase")
    assert ledger.available(conn, card) == 0
    ledger.transfer(conn, "t3", shop, funding, 50_000, "payout")
    # A forced debit (a reversal restoring an earlier state) is not refused.
    ledger.hold(conn, "h4", card, shop, 100, "purchase", force=True)
    assert ledger.available(conn, card) == -100
    assert_balanced(conn)


def test_transfers_need_a_positive_amount_and_two_accounts(conn: Connection) -> None:
    _, card, shop = accounts_of(conn)
    for amount in (0, -1):
        with pytest.raises(LedgerError, match="positive"):
            ledger.transfer(conn, f"z{amount}", shop, card, amount, "refund", force=True)
        with pytest.raises(LedgerError, match="positive"):
            ledger.hold(conn, f"h{amount}", card, shop, amount, "purchase")
    with pytest.raises(LedgerError, match="two different accounts"):
        ledger.transfer(conn, "self", card, card, 1, "x", force=True)
    with pytest.raises(LedgerError, match="no account"):
        ledger.available(conn, 999)
    with pytest.raises(LedgerError, match="no account"):
        ledger.hold(conn, "nobody", 999, shop, 1, "purchase")
    with pytest.raises(LedgerError, match="no account"):
        ledger.account_id(conn, "nobody")
    assert ledger.account_id(conn, "card") == card
    assert_balanced(conn)


def test_check_notices_every_kind_of_damage(conn: Connection) -> None:
    _, card, shop = accounts_of(conn)
    ledger.hold(conn, "one-fen", card, shop, 1, "purchase")  # the smallest amount is fine
    ledger.void_pending(conn, "one-fen:void", "one-fen")
    ledger.hold(conn, "h", card, shop, 400, "purchase")
    ledger.post_pending(conn, "h:capture", "h")
    ledger.hold(conn, "h2", card, shop, 100, "purchase")
    assert_balanced(conn)
    report = ledger.check(conn)
    assert (report.accounts, report.transfers) == (3, 6)
    assert report.debits_posted == report.credits_posted == 10_400
    assert report.debits_pending == report.credits_pending == 100

    def damaged(statement: object) -> list[str]:
        savepoint = conn.begin_nested()
        conn.execute(statement)  # type: ignore[call-overload]
        problems = ledger.check(conn).problems
        savepoint.rollback()
        return problems

    assert any(
        "debits_posted" in p
        for p in damaged(update(accounts).where(accounts.c.id == card).values(debits_posted=0))
    )
    assert any(
        "pending debits" in p
        for p in damaged(update(accounts).where(accounts.c.id == card).values(debits_pending=0))
    )
    assert any(
        "another amount" in p
        for p in damaged(
            update(transfers).where(transfers.c.id == "h:capture").values(amount_minor=1)
        )
    )
    assert any(
        "not a hold" in p
        for p in damaged(
            update(transfers).where(transfers.c.id == "h:capture").values(pending_id="open")
        )
    )
    assert any(
        "non-positive" in p
        for p in damaged(update(transfers).where(transfers.c.id == "open").values(amount_minor=0))
    )
    assert any(
        "unknown phase" in p
        for p in damaged(update(transfers).where(transfers.c.id == "open").values(phase="odd"))
    )
    assert any(
        "names no hold" in p
        for p in damaged(
            update(transfers).where(transfers.c.id == "h:capture").values(pending_id=None)
        )
    )
    assert ledger.check(conn).balanced
