"""The host's rules for a refund (protocol.md §8.6): it names a sale by the sale's RRN —
not a void's or another refund's — and one it cannot read is a format error; none of
these moves money."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.host.test_duplicates import ask, good_balance, keyed_purchase
from tests.host.test_reversal_interplay import balanced, held, refund_of, void_of
from tests.sandbox import running_sandbox

pytestmark = pytest.mark.integration


def test_a_refund_names_a_sale_by_its_rrn_only(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path, tls=False) as sb:
            t = sb.terminal(profile=sb.profile)
            await t.sign_on()
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
            await t.link.close()

    asyncio.run(go())


@pytest.mark.parametrize("missing", ["4", "37"])
def test_a_refund_without_its_amount_or_reference_is_a_format_error(
    tmp_path: Path, missing: str
) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path, tls=False) as sb:
            t = sb.terminal(profile=sb.profile)
            await t.sign_on()
            sale = keyed_purchase(t, 5_000, "000002", "100000")
            rrn = (await ask(sb, t, sale))["37"]
            before = good_balance(sb)
            refund = refund_of(sale, rrn, 1_000, "000003", "101000")
            del refund[missing]
            assert (await ask(sb, t, refund))["39"] == "30"
            assert good_balance(sb) == before
            await t.link.close()

    asyncio.run(go())


def test_a_refund_of_zero_is_refused_13(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path, tls=False) as sb:
            t = sb.terminal(profile=sb.profile)
            await t.sign_on()
            sale = keyed_purchase(t, 5_000, "000002", "100000")
            rrn = (await ask(sb, t, sale))["37"]
            before = good_balance(sb)
            assert (await ask(sb, t, refund_of(sale, rrn, 0, "000003", "101000")))["39"] == "13"
            assert good_balance(sb) == before
            await t.link.close()

    asyncio.run(go())
