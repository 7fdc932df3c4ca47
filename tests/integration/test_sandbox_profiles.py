"""The sandbox host accepts the same acquirer profiles as the terminal: on the plain
ISO 8583:1987 profile (ASCII, no TPDU, no header, no MAC) it stands in for such a host —
a sale, its void, and a refund go through, and its ledger stays balanced."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from smartpos.cards.reading import CardInput
from smartpos.host.testcards import CATALOGUE
from smartpos.protocol.profiles import get_profile
from tests.integration.test_card_flows import assert_ledger_balanced, balance_of
from tests.sandbox import running_sandbox

pytestmark = pytest.mark.integration

NO_PIN = next(c for c in CATALOGUE if not c.pin_required)  # Visa credit: no PIN asked
PLAIN = get_profile("iso87-plain")


def test_the_sandbox_host_speaks_the_plain_1987_dialect(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path, profile="iso87-plain", tls=False) as sb:
            t = sb.terminal(profile=PLAIN)
            before = balance_of(sb, NO_PIN)
            card = CardInput.parse(NO_PIN.track2)
            sale = await t.sale(25_00, card, order_ref="p-1")
            assert sale.result == "approved", sale
            assert balance_of(sb, NO_PIN) == before - 25_00
            void = await t.void(stan=sale.stan, order_ref="p-1/void")
            assert void.result == "approved", void
            assert balance_of(sb, NO_PIN) == before
            second = await t.sale(40_00, card, order_ref="p-2")
            refund = await t.refund(15_00, card, rrn=second.rrn, order_ref="p-2/r")
            assert (second.result, refund.result) == ("approved", "approved"), refund
            assert balance_of(sb, NO_PIN) == before - 25_00
            assert_ledger_balanced(sb)
            await t.close()

    asyncio.run(go())
