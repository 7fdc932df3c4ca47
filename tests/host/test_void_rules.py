"""The host's rules for a void (protocol.md §8.5): it names its sale by batch and trace of
this terminal, and nothing else — not another terminal's sale under the same numbers, not
a refund — and a void it cannot read is a format error that changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from smartpos.protocol.messages import F60, TYPE_VOID
from tests.host.test_duplicates import ask, good_balance, keyed_purchase, signed_on
from tests.host.test_reversal_interplay import balanced, held, refund_of, settlement, void_of

pytestmark = pytest.mark.integration


def test_a_void_names_only_a_sale_of_its_own_terminal(tmp_path: Path) -> None:
    async def go() -> None:
        async with signed_on(tmp_path, "10000002") as (sb, [a, b]):
            start = good_balance(sb)
            sale = keyed_purchase(a, 2_000, "000002", "100000")
            rrn = (await ask(sb, a, sale))["37"]
            # Terminal B holds no sale under batch 000001 trace 000002: A's is not B's.
            foreign = {**void_of(sale, "000003", "101000"), "41": b.tid}
            assert (await ask(sb, b, foreign))["39"] == "25"
            # A refund is not a sale: a void naming the refund's trace finds nothing.
            refund = refund_of(sale, rrn, 500, "000004", "102000")
            assert (await ask(sb, a, refund))["39"] == "00"
            of_refund = {**void_of(sale, "000005", "103000"), "4": f"{500:012d}"}
            of_refund["61"] = of_refund["61"][:6] + "000004" + of_refund["61"][12:]
            assert (await ask(sb, a, of_refund))["39"] == "25"
            # No sale at all under that trace.
            nothing = void_of(sale, "000006", "104000")
            nothing["61"] = nothing["61"][:6] + "000099" + nothing["61"][12:]
            assert (await ask(sb, a, nothing))["39"] == "25"
            assert (good_balance(sb), held(sb)) == (start - 1_500, 2_000)
            assert balanced(sb)

    asyncio.run(go())


@pytest.mark.parametrize("missing", ["4", "61"])
def test_a_void_without_its_amount_or_original_is_a_format_error(
    tmp_path: Path, missing: str
) -> None:
    async def go() -> None:
        async with signed_on(tmp_path) as (sb, [t]):
            sale = keyed_purchase(t, 2_000, "000002", "100000")
            assert (await ask(sb, t, sale))["39"] == "00"
            before = good_balance(sb)
            void = void_of(sale, "000003", "101000")
            del void[missing]
            assert (await ask(sb, t, void))["39"] == "30"
            assert (good_balance(sb), held(sb)) == (before, 2_000)

    asyncio.run(go())


def test_a_void_is_refused_12_where_it_cannot_undo_the_sale(tmp_path: Path) -> None:
    """From another batch, of a voided sale, of a partly refunded sale: 12, nothing moves."""

    async def go() -> None:
        async with signed_on(tmp_path) as (sb, [t]):
            start = good_balance(sb)
            sale = keyed_purchase(t, 2_000, "000002", "100000")
            assert (await ask(sb, t, sale))["39"] == "00"
            later = void_of(sale, "000003", "101000")
            later["60"] = F60(TYPE_VOID, "000002").encode()  # the terminal's next batch
            assert (await ask(sb, t, later))["39"] == "12"
            assert (await ask(sb, t, void_of(sale, "000004", "102000")))["39"] == "00"
            assert (await ask(sb, t, void_of(sale, "000005", "103000")))["39"] == "12"
            other = keyed_purchase(t, 3_000, "000006", "104000")
            rrn = (await ask(sb, t, other))["37"]
            assert (await ask(sb, t, refund_of(other, rrn, 100, "000007", "105000")))["39"] == "00"
            assert (await ask(sb, t, void_of(other, "000008", "106000")))["39"] == "12"
            assert (good_balance(sb), held(sb)) == (start - 2_900, 3_000)
            assert balanced(sb)

    asyncio.run(go())


def test_a_void_must_match_its_sale_in_amount_and_reference(tmp_path: Path) -> None:
    """Another amount: 64; another RRN in 37: 25; the sale's own: approved, once."""

    async def go() -> None:
        async with signed_on(tmp_path) as (sb, [t]):
            start = good_balance(sb)
            sale = keyed_purchase(t, 2_000, "000002", "100000")
            rrn = (await ask(sb, t, sale))["37"]
            other_amount = {**void_of(sale, "000003", "101000"), "4": f"{1_999:012d}"}
            assert (await ask(sb, t, other_amount))["39"] == "64"
            other_rrn = {**void_of(sale, "000004", "102000"), "37": "999999999999"}
            assert (await ask(sb, t, other_rrn))["39"] == "25"
            assert (good_balance(sb), held(sb)) == (start - 2_000, 2_000)
            own = {**void_of(sale, "000005", "103000"), "37": rrn}
            assert (await ask(sb, t, own))["39"] == "00"
            assert (good_balance(sb), held(sb)) == (start, 0)

    asyncio.run(go())


def test_a_settlement_captures_only_its_own_terminals_batch(tmp_path: Path) -> None:
    """Terminal A settles batch 000001: terminal B's sale in its own batch 000001, and A's
    sale already in its next batch, stay held — each can still be voided."""

    async def go() -> None:
        async with signed_on(tmp_path, "10000002") as (sb, [a, b]):
            start = good_balance(sb)
            settled = keyed_purchase(a, 1_000, "000002", "100000")
            assert (await ask(sb, a, settled))["39"] == "00"
            next_batch = {**keyed_purchase(a, 2_000, "000003", "100100"), "60": "22000002000"}
            assert (await ask(sb, a, next_batch))["39"] == "00"
            theirs = keyed_purchase(b, 3_000, "000002", "100200")
            assert (await ask(sb, b, theirs))["39"] == "00"
            assert (await ask(sb, a, settlement(a, "000004", (1_000, 1), (0, 0))))["39"] == "00"
            assert held(sb) == 5_000
            void_next = void_of(next_batch, "000005", "101000")
            void_next["60"] = F60(TYPE_VOID, "000002").encode()
            void_next["61"] = "000002" + void_next["61"][6:]
            assert (await ask(sb, a, void_next))["39"] == "00"
            void_theirs = {**void_of(theirs, "000003", "101100"), "41": b.tid}
            assert (await ask(sb, b, void_theirs))["39"] == "00"
            assert (good_balance(sb), held(sb)) == (start - 1_000, 0)
            assert balanced(sb)

    asyncio.run(go())


def test_each_terminal_settles_its_batch_once(tmp_path: Path) -> None:
    """B settles its batch 000001, then A its own: each is recorded for its terminal, so
    A's settlement again is 77 (never settled twice), and B's is too."""

    async def go() -> None:
        async with signed_on(tmp_path, "10000002") as (sb, [a, b]):
            start = good_balance(sb)
            assert (await ask(sb, a, keyed_purchase(a, 1_000, "000002", "100000")))["39"] == "00"
            theirs = keyed_purchase(b, 3_000, "000002", "100200")
            assert (await ask(sb, b, theirs))["39"] == "00"
            b_settles = settlement(b, "000003", (3_000, 1), (0, 0))
            assert (await ask(sb, b, b_settles))["39"] == "00"
            assert (await ask(sb, a, settlement(a, "000003", (1_000, 1), (0, 0))))["39"] == "00"
            assert (good_balance(sb), held(sb)) == (start - 4_000, 0)
            again = await ask(sb, a, settlement(a, "000004", (1_000, 1), (0, 0)))
            assert again["39"] == "77"
            b_again = settlement(b, "000004", (3_000, 1), (0, 0))
            assert (await ask(sb, b, b_again))["39"] == "77"
            assert balanced(sb)

    asyncio.run(go())


def test_an_empty_batch_settles_once_at_the_host(tmp_path: Path) -> None:
    """A 0500 for a batch the host has nothing of (another terminal has its own batch of
    that number): balanced, recorded for this terminal, and 77 the second time."""

    async def go() -> None:
        async with signed_on(tmp_path, "10000002") as (sb, [a, b]):
            theirs = keyed_purchase(b, 3_000, "000002", "100200")
            assert (await ask(sb, b, theirs))["39"] == "00"
            first = await ask(sb, a, settlement(a, "000002", (0, 0), (0, 0)))
            assert first["39"] == "00" and first["48"][-1] == "1"
            assert (await ask(sb, a, settlement(a, "000003", (0, 0), (0, 0))))["39"] == "77"
            assert held(sb) == 3_000  # B's batch is B's

    asyncio.run(go())
