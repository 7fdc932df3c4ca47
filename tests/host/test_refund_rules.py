"""The host's rules for a refund (protocol.md §8.6): it names a sale by the sale's RRN —
not a void's or another refund's — and one it cannot read is a format error; none of
these moves money."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.host.test_duplicates import ask, good_balance, keyed_purchase, signed_on
from tests.host.test_reversal_interplay import balanced, held, refund_of, void_of
from tests.sandbox import running_sandbox

pytestmark = pytest.mark.integration


def test_a_refund_names_a_sale_by_its_rrn_only(tmp_path: Path) -> None:
    async def go() -> None:
        async with signed_on(tmp_path) as (sb, [t]):
            start = good_balance(sb)
            sale = keyed_purchase(t, 5_000, "000002", "100000")
            rrn = (await ask(sb, t, sale))["37"]
            first = await ask(sb, t, refund_of(sale, rrn, 1_000, "000003", "101000"))
            assert first["39"] == "00" and first["37"] != rrn
            # The refund's own RRN is no sale's.
            assert (await ask(sb, t, refund_of(sale, first["37"], 500, "000004", "102000")))[
                "39"
            ] == "25"
            voided = keyed_purchase(t, 2_000, "000005", "103000")
            assert (await ask(sb, t, voided))["39"] == "00"
            void = await ask(sb, t, void_of(voided, "000006", "104000"))
            assert void["39"] == "00"
            assert (await ask(sb, t, refund_of(sale, void["37"], 500, "000007", "105000")))[
                "39"
            ] == "25"
            unknown = refund_of(sale, "000000000001", 500, "000008", "106000")
            assert (await ask(sb, t, unknown))["39"] == "25"
            assert (good_balance(sb), held(sb)) == (start - 4_000, 5_000)
            assert balanced(sb)

    asyncio.run(go())


@pytest.mark.parametrize("missing", ["4", "37"])
def test_a_refund_without_its_amount_or_reference_is_a_format_error(
    tmp_path: Path, missing: str
) -> None:
    async def go() -> None:
        async with signed_on(tmp_path) as (sb, [t]):
            sale = keyed_purchase(t, 5_000, "000002", "100000")
            rrn = (await ask(sb, t, sale))["37"]
            before = good_balance(sb)
            refund = refund_of(sale, rrn, 1_000, "000003", "101000")
            del refund[missing]
            assert (await ask(sb, t, refund))["39"] == "30"
            assert good_balance(sb) == before

    asyncio.run(go())


def test_a_refund_of_zero_is_refused_13(tmp_path: Path) -> None:
    async def go() -> None:
        async with signed_on(tmp_path) as (sb, [t]):
            sale = keyed_purchase(t, 5_000, "000002", "100000")
            rrn = (await ask(sb, t, sale))["37"]
            before = good_balance(sb)
            assert (await ask(sb, t, refund_of(sale, rrn, 0, "000003", "101000")))["39"] == "13"
            assert good_balance(sb) == before

    asyncio.run(go())


def test_a_refund_needs_the_card_the_merchant_and_what_is_left(tmp_path: Path) -> None:
    """Without card data: 30; from another merchant's terminal: 25; beyond what is left of
    the sale: 64; of a voided sale: 12. None of them moves money."""
    from sqlalchemy import update

    from smartpos.host.sandbox import ensure_merchant
    from smartpos.host.tables import terminals

    async def go() -> None:
        async with signed_on(tmp_path, "10000002") as (sb, [t, other]):
            # The second terminal belongs to another merchant (moved there at the host).
            other_mid = "898310048169999"
            ensure_merchant(sb.host, other_mid, "another shop")
            with sb.host.engine.begin() as conn:
                conn.execute(
                    update(terminals).where(terminals.c.tid == other.tid).values(mid=other_mid)
                )
            sb.service.reload_terminals()
            sale = keyed_purchase(t, 5_000, "000002", "100000")
            rrn = (await ask(sb, t, sale))["37"]
            voided = keyed_purchase(t, 2_000, "000003", "100100")
            voided_rrn = (await ask(sb, t, voided))["37"]
            assert (await ask(sb, t, void_of(voided, "000004", "100200")))["39"] == "00"
            before = good_balance(sb)

            cardless = refund_of(sale, rrn, 1_000, "000005", "101000")
            del cardless["2"]
            assert (await ask(sb, t, cardless))["39"] == "30"
            foreign = {
                **refund_of(sale, rrn, 1_000, "000002", "101100"),
                "41": other.tid,
                "42": other_mid,
            }
            assert (await ask(sb, other, foreign))["39"] == "25"
            assert (await ask(sb, t, refund_of(sale, rrn, 5_001, "000006", "101200")))["39"] == "64"
            assert (await ask(sb, t, refund_of(voided, voided_rrn, 100, "000007", "101300")))[
                "39"
            ] == "12"
            assert (good_balance(sb), held(sb)) == (before, 5_000)
            assert balanced(sb)

    asyncio.run(go())


def test_a_sale_before_sign_on_is_refused_with_the_reason(tmp_path: Path) -> None:
    from smartpos.cards.reading import CardInput
    from smartpos.host.testcards import CATALOGUE
    from smartpos.terminal.engine import TerminalError

    async def go() -> None:
        async with running_sandbox(tmp_path, tls=False) as sb:
            t = sb.terminal(profile=sb.profile)
            no_pin = next(c for c in CATALOGUE if not c.pin_required)
            with pytest.raises(TerminalError, match=r"^no MAC key: sign on first"):
                await t.sale(100, CardInput.parse(no_pin.pan), None)
            await t.link.close()

    asyncio.run(go())
