"""Reversals that arrive after other requests about the same sale: a refund of it, a
settlement of its batch, a reversal of the sale itself. Whatever the order, the card and
the merchant end where the requests that stand put them — never richer, never poorer by a
request that was undone (protocol.md §9.3)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from smartpos.host.ledger import check
from smartpos.host.tables import accounts, cards
from smartpos.protocol.messages import (
    F60,
    F61,
    NET_BATCH_UPLOAD_END,
    NET_SETTLE,
    PROC_REFUND,
    PROC_VOID,
    TYPE_NETWORK,
    TYPE_REFUND,
    TYPE_VOID,
    SettlementTotals,
    TotalsGroup,
)
from smartpos.terminal.engine import Terminal
from tests.host.test_bad_input import GOOD
from tests.host.test_duplicates import ask, good_balance, keyed_purchase, reversal_of, signed_on
from tests.sandbox import Sandbox

pytestmark = pytest.mark.integration

BATCH = "000001"


def void_of(sale: dict[str, Any], stan: str, time: str) -> dict[str, Any]:
    return {
        **sale,
        "3": PROC_VOID,
        "11": stan,
        "12": time,
        "60": F60(TYPE_VOID, BATCH).encode(),
        "61": F61(BATCH, sale["11"], sale["13"]).encode(),
    }


def refund_of(sale: dict[str, Any], rrn: str, amount: int, stan: str, time: str) -> dict[str, Any]:
    fields = {k: v for k, v in sale.items() if k not in ("52", "23", "55")}
    return {
        **fields,
        "t": "0220",
        "3": PROC_REFUND,
        "4": f"{amount:012d}",
        "11": stan,
        "12": time,
        "37": rrn,
        "60": F60(TYPE_REFUND, BATCH).encode(),
    }


def settlement(
    t: Terminal, stan: str, sales: tuple[int, int], refunds: tuple[int, int]
) -> dict[str, Any]:
    """A 0500 for batch 000001 with these (amount, count) totals of domestic cards."""
    totals = SettlementTotals(
        TotalsGroup(sales[0], sales[1], refunds[0], refunds[1]), TotalsGroup(0, 0, 0, 0)
    )
    return {
        "t": "0500",
        "11": stan,
        "12": "230000",
        "13": "1123",
        "41": t.tid,
        "42": t.mid,
        "48": totals.encode(),
        "49": "156",
        "60": F60(TYPE_NETWORK, BATCH, NET_SETTLE).encode(),
        "63": "01 ",
    }


def held(sb: Sandbox) -> int:
    """What is on hold on the good card's funds."""
    with sb.host.engine.connect() as conn:
        token = sb.host.tokenizer.token(GOOD.pan)
        acct = conn.execute(select(cards.c.account_id).where(cards.c.token == token))
        found = conn.execute(
            select(accounts.c.debits_pending).where(accounts.c.id == acct.scalar_one())
        )
        return int(found.scalar_one())


def balanced(sb: Sandbox) -> bool:
    with sb.host.engine.connect() as conn:
        return check(conn).balanced


@pytest.mark.parametrize("settle_first", [False, True], ids=["held", "captured"])
def test_reversing_a_partly_refunded_sale_takes_its_refund_back(
    tmp_path: Path, settle_first: bool
) -> None:
    """A sale of 100.00 is refunded 30.00, then the sale is reversed (its answer had been
    lost): the sale never happened, so the card ends where it started — it used to end
    30.00 richer, the refund of a sale that no longer stood. The refund's own reversal,
    arriving after, moves nothing more."""

    async def go() -> None:
        async with signed_on(tmp_path) as (sb, [t]):
            start = good_balance(sb)
            sale = keyed_purchase(t, 10_000, "000002", "100000")
            approved = await ask(sb, t, sale)
            assert approved["39"] == "00"
            if settle_first:
                done = await ask(sb, t, settlement(t, "000003", (10_000, 1), (0, 0)))
                assert done["39"] == "00"
            refund = refund_of(sale, approved["37"], 3_000, "000004", "110000")
            if settle_first:
                refund["60"] = F60(TYPE_REFUND, "000002").encode()
            assert (await ask(sb, t, refund))["39"] == "00"
            assert good_balance(sb) == start - 7_000

            assert (await ask(sb, t, reversal_of(sale)))["39"] == "00"
            assert (good_balance(sb), held(sb)) == (start, 0)
            assert (await ask(sb, t, reversal_of(refund)))["39"] == "00"
            assert good_balance(sb) == start
            # Nothing is left to refund of a sale that was reversed.
            again = refund_of(sale, approved["37"], 1_000, "000005", "120000")
            again["60"] = refund["60"]
            assert (await ask(sb, t, again))["39"] == "12"
            assert good_balance(sb) == start
            assert balanced(sb)

    asyncio.run(go())


def test_a_void_reversed_after_its_batch_settled_charges_the_sale(tmp_path: Path) -> None:
    """The void's answer was lost, the batch settled without the sale (the host had it
    voided), then the void's reversal arrived: the sale stands again, so the card pays it
    — posted, not held, since no settlement of that batch will ever capture a hold. It used
    to be put back as a hold that stayed on the card's funds for ever."""

    async def go() -> None:
        async with signed_on(tmp_path) as (sb, [t]):
            start = good_balance(sb)
            sale = keyed_purchase(t, 2_500, "000002", "100000")
            assert (await ask(sb, t, sale))["39"] == "00"
            void = void_of(sale, "000003", "101000")
            assert (await ask(sb, t, void))["39"] == "00"
            assert good_balance(sb) == start
            assert (await ask(sb, t, settlement(t, "000004", (0, 0), (0, 0))))["39"] == "00"

            assert (await ask(sb, t, reversal_of(void)))["39"] == "00"
            assert good_balance(sb) == start - 2_500
            assert held(sb) == 0, "a hold nothing will ever capture"
            assert balanced(sb)

    asyncio.run(go())


def test_reversing_a_void_of_a_reversed_sale_charges_nothing(tmp_path: Path) -> None:
    """The sale was voided and then reversed itself; the void's reversal arriving last must
    not put the sale's money back on hold: nothing of that sale stands."""

    async def go() -> None:
        async with signed_on(tmp_path) as (sb, [t]):
            start = good_balance(sb)
            sale = keyed_purchase(t, 4_000, "000002", "100000")
            assert (await ask(sb, t, sale))["39"] == "00"
            void = void_of(sale, "000003", "101000")
            assert (await ask(sb, t, void))["39"] == "00"
            assert (await ask(sb, t, reversal_of(sale)))["39"] == "00"
            assert (await ask(sb, t, reversal_of(void)))["39"] == "00"
            assert good_balance(sb) == start
            # The batch settles with nothing in it: no sale, no refund.
            assert (await ask(sb, t, settlement(t, "000004", (0, 0), (0, 0))))["39"] == "00"
            assert good_balance(sb) == start
            assert balanced(sb)

    asyncio.run(go())


def test_a_void_reversed_in_its_open_batch_is_captured_at_settlement(tmp_path: Path) -> None:
    """The void's reversal puts the sale's hold back (another sale came first, so the void
    must find its own); the settlement then captures it: the card pays both sales once,
    and nothing stays on hold."""

    async def go() -> None:
        async with signed_on(tmp_path) as (sb, [t]):
            start = good_balance(sb)
            first = keyed_purchase(t, 1_100, "000002", "090000")
            assert (await ask(sb, t, first))["39"] == "00"
            sale = keyed_purchase(t, 2_500, "000003", "100000")
            assert (await ask(sb, t, sale))["39"] == "00"
            void = void_of(sale, "000004", "101000")
            assert (await ask(sb, t, void))["39"] == "00"
            assert (await ask(sb, t, reversal_of(void)))["39"] == "00"
            assert good_balance(sb) == start - 3_600
            assert held(sb) == 3_600
            done = await ask(sb, t, settlement(t, "000005", (3_600, 2), (0, 0)))
            assert done["39"] == "00" and done["48"][-1] == "1"  # balanced
            assert (good_balance(sb), held(sb)) == (start - 3_600, 0)
            assert balanced(sb)

    asyncio.run(go())


@pytest.mark.parametrize("settle_first", [False, True], ids=["held", "captured"])
def test_undoing_a_void_or_a_refund_is_posted_even_if_the_card_spent_it(
    tmp_path: Path, settle_first: bool
) -> None:
    """Between a void (or refund) and its reversal the card spent everything: the reversal
    still takes the money back — the void or refund never happened for the terminal, and
    the customer left with the goods — so the card goes below zero, by exactly that much."""

    async def go() -> None:
        async with signed_on(tmp_path) as (sb, [t]):
            other = keyed_purchase(t, 700, "000002", "090000")
            assert (await ask(sb, t, other))["39"] == "00"
            sale = keyed_purchase(t, 2_500, "000003", "100000")
            assert (await ask(sb, t, sale))["39"] == "00"
            void = void_of(sale, "000004", "101000")
            assert (await ask(sb, t, void))["39"] == "00"
            resent = await ask(sb, t, other)  # a resend: the stored answer, its RRN
            refund = refund_of(other, resent["37"], 300, "000005", "102000")
            assert (await ask(sb, t, refund))["39"] == "00"
            # Spend all that is left (two purchases under the single-transaction limit).
            left = good_balance(sb)
            spent = 0
            for stan, amount in (("000006", left // 2), ("000007", left - left // 2)):
                assert (await ask(sb, t, keyed_purchase(t, amount, stan, "103000")))["39"] == "00"
                spent += amount
            assert good_balance(sb) == 0
            if settle_first:
                totals = ((700 + spent), 3), (300, 1)
                assert (await ask(sb, t, settlement(t, "000008", *totals)))["39"] == "00"
            assert (await ask(sb, t, reversal_of(void)))["39"] == "00"
            assert good_balance(sb) == -2_500
            assert (await ask(sb, t, reversal_of(refund)))["39"] == "00"
            assert good_balance(sb) == -2_800
            assert balanced(sb)

    asyncio.run(go())


@pytest.mark.parametrize("refunded", [4_000, 3_999])
def test_reversing_a_refunded_captured_sale_gives_back_what_is_left(
    tmp_path: Path, refunded: int
) -> None:
    """Captured, then refunded in full (or all but 0.01), then reversed: the card gets back
    what it has not had back yet — nothing, or 0.01."""

    async def go() -> None:
        async with signed_on(tmp_path) as (sb, [t]):
            start = good_balance(sb)
            sale = keyed_purchase(t, 4_000, "000002", "100000")
            approved = await ask(sb, t, sale)
            assert (await ask(sb, t, settlement(t, "000003", (4_000, 1), (0, 0))))["39"] == "00"
            refund = refund_of(sale, approved["37"], refunded, "000004", "110000")
            refund["60"] = F60(TYPE_REFUND, "000002").encode()
            assert (await ask(sb, t, refund))["39"] == "00"
            assert good_balance(sb) == start - 4_000 + refunded
            assert (await ask(sb, t, reversal_of(sale)))["39"] == "00"
            assert (good_balance(sb), held(sb)) == (start, 0)
            assert balanced(sb)

    asyncio.run(go())


def test_a_reversed_refund_gives_its_sale_back_what_can_be_refunded(tmp_path: Path) -> None:
    """Two sales; 30.00 of the second is refunded and the refund reversed: the second can
    be refunded in full again, and the first no further than its own amount."""

    async def go() -> None:
        async with signed_on(tmp_path) as (sb, [t]):
            start = good_balance(sb)
            first = keyed_purchase(t, 10_000, "000002", "090000")
            first_rrn = (await ask(sb, t, first))["37"]
            second = keyed_purchase(t, 5_000, "000003", "100000")
            second_rrn = (await ask(sb, t, second))["37"]
            refund = refund_of(second, second_rrn, 3_000, "000004", "110000")
            assert (await ask(sb, t, refund))["39"] == "00"
            assert (await ask(sb, t, reversal_of(refund)))["39"] == "00"
            assert good_balance(sb) == start - 15_000
            again = refund_of(second, second_rrn, 5_000, "000005", "111000")
            assert (await ask(sb, t, again))["39"] == "00"
            over = refund_of(first, first_rrn, 10_001, "000006", "112000")
            assert (await ask(sb, t, over))["39"] == "64"
            assert good_balance(sb) == start - 10_000
            assert balanced(sb)

    asyncio.run(go())


def test_a_reversal_names_its_original_by_terminal_trace_and_date(tmp_path: Path) -> None:
    """Another terminal's reversal under the same trace, or this terminal's under the same
    trace on another day, is not about this sale: acknowledged (nothing of theirs was
    posted), and the sale keeps its money."""

    async def go() -> None:
        async with signed_on(tmp_path, "10000002") as (sb, [a, b]):
            start = good_balance(sb)
            sale = keyed_purchase(a, 2_000, "000002", "100000")
            assert (await ask(sb, a, sale))["39"] == "00"
            theirs = {**reversal_of(sale), "41": b.tid}
            assert (await ask(sb, b, theirs))["39"] == "00"
            other_day = {**reversal_of(sale), "13": "1124"}
            assert (await ask(sb, a, other_day))["39"] == "00"
            assert (good_balance(sb), held(sb)) == (start - 2_000, 2_000)
            assert balanced(sb)

    asyncio.run(go())


def test_a_sale_undone_by_the_batch_upload_is_not_undone_again_by_its_reversal(
    tmp_path: Path,
) -> None:
    """The terminal's batch does not hold the sale (its answer never arrived): the upload
    end undoes it at the host. The sale's reversal, arriving after, finds it undone and
    moves nothing — it used to be able to credit the card a second time."""

    async def go() -> None:
        async with signed_on(tmp_path) as (sb, [t]):
            start = good_balance(sb)
            sale = keyed_purchase(t, 2_000, "000002", "100000")
            assert (await ask(sb, t, sale))["39"] == "00"
            answer = await ask(sb, t, settlement(t, "000003", (0, 0), (0, 0)))
            assert answer["39"] == "00" and answer["48"][-1] == "2"  # not balanced
            end = {
                "t": "0320",
                "11": "000004",
                "12": "230100",
                "13": "1123",
                "41": t.tid,
                "42": t.mid,
                "48": "0000",
                "60": F60(TYPE_NETWORK, BATCH, NET_BATCH_UPLOAD_END).encode(),
                "63": "01 ",
            }
            assert (await ask(sb, t, end))["39"] == "00"
            assert (good_balance(sb), held(sb)) == (start, 0)
            assert (await ask(sb, t, reversal_of(sale)))["39"] == "00"
            assert (good_balance(sb), held(sb)) == (start, 0)
            assert balanced(sb)

    asyncio.run(go())
