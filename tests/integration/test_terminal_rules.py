"""The terminal's own rules for voids, refunds, settlement and the batch upload, each held to
what a cashier or the merchant sees — written for the mutants of the terminal engine that
no test killed (docs/fault-injection.md, "Mutation testing")."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from smartpos.cards.reading import CardInput
from smartpos.host.testcards import CATALOGUE
from smartpos.protocol import codec
from smartpos.protocol.codes import describe
from smartpos.terminal.engine import Terminal, TerminalError
from smartpos.terminal.link import HostLink
from smartpos.terminal.tables import journal, settlements, terminal_config
from tests.integration.test_card_flows import assert_ledger_balanced, balance_of
from tests.sandbox import Sandbox, running_sandbox

pytestmark = pytest.mark.integration
GOOD = CATALOGUE[0]
PIN = "123456"


async def signed_on(sb: Sandbox) -> Terminal:
    t = sb.terminal()
    assert (await t.sign_on()).result == "approved"
    return t


def status_of(t: Terminal, journal_id: int | None) -> str:
    with t.engine.connect() as conn:
        return str(
            conn.execute(select(journal.c.status).where(journal.c.id == journal_id)).scalar()
        )


def test_void_finds_the_sale_it_is_asked_for(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            first = await t.sale(1_000, CardInput.parse(GOOD.pan), PIN)
            second = await t.sale(2_000, CardInput.parse(GOOD.pan), PIN)
            refund = await t.refund(300, CardInput.parse(GOOD.pan), rrn=first.rrn)
            assert refund.result == "approved"
            # By voucher number, the one printed on the slip.
            by_invoice = await t.void(invoice_no=second.invoice_no)
            assert by_invoice.result == "approved" and by_invoice.amount_minor == 2_000
            # The void's record and slip name the sale's card (masked) and brand.
            assert (by_invoice.pan_masked, by_invoice.brand) == (
                second.pan_masked,
                second.brand,
            )
            assert by_invoice.pan_masked.endswith(GOOD.pan[-4:]) and "*" in by_invoice.pan_masked
            with t.engine.connect() as conn:
                rows = {
                    r.id: (r.pan_masked, r.brand, r.entry_mode)
                    for r in conn.execute(
                        select(
                            journal.c.id,
                            journal.c.pan_masked,
                            journal.c.brand,
                            journal.c.entry_mode,
                        ).where(journal.c.id.in_((by_invoice.journal_id, second.journal_id)))
                    )
                }
            assert rows[by_invoice.journal_id] == rows[second.journal_id]
            assert rows[second.journal_id][1:] == ("unionpay", "manual")
            assert status_of(t, second.journal_id) == "voided"
            assert status_of(t, first.journal_id) == "approved"
            sent = sb.service.stats.requests
            # The trace of a refund is not a sale's.
            with pytest.raises(TerminalError, match="no such sale"):
                await t.void(stan=refund.stan)
            with pytest.raises(TerminalError, match="no such sale"):
                await t.void(invoice_no="999999")
            # A sale partly refunded, or in a settled batch, is refunded instead.
            with pytest.raises(TerminalError, match="partly refunded"):
                await t.void(stan=first.stan)
            assert sb.service.stats.requests == sent  # nothing went to the host
            assert (await t.settle()).result == "balanced"
            kept = await t.sale(500, CardInput.parse(GOOD.pan), PIN)
            assert (await t.settle()).result == "balanced"
            sent = sb.service.stats.requests
            with pytest.raises(TerminalError, match="settled batch"):
                await t.void(stan=kept.stan)
            assert sb.service.stats.requests == sent
            await t.link.close()

    asyncio.run(go())


def test_void_after_the_trace_wraps_takes_the_latest_sale(tmp_path: Path) -> None:
    """Trace numbers wrap after 999999: the journal then holds two sales with one trace, and
    a void by trace means the one of the open batch, the latest."""

    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            old = await t.sale(700, CardInput.parse(GOOD.pan), PIN)
            assert (await t.settle()).result == "balanced"
            with t.engine.begin() as conn:  # one cycle of the counter later, another day
                conn.execute(update(terminal_config).values(stan=int(old.stan) - 1))
            t.clock = lambda: datetime.now() + timedelta(days=1)
            new = await t.sale(800, CardInput.parse(GOOD.pan), PIN)
            assert new.stan == old.stan and new.result == "approved"
            voided = await t.void(stan=new.stan)
            assert voided.result == "approved" and voided.amount_minor == 800
            await t.link.close()

    asyncio.run(go())


def test_a_refund_of_nothing_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            sale = await t.sale(1_000, CardInput.parse(GOOD.pan), PIN)
            sent = sb.service.stats.requests
            for amount in (0, -100):
                with pytest.raises(TerminalError, match="above zero"):
                    await t.refund(amount, CardInput.parse(GOOD.pan), rrn=sale.rrn)
            with pytest.raises(TerminalError, match="exceeds what is left"):
                await t.refund(1_001, CardInput.parse(GOOD.pan), rrn=sale.rrn)
            other = CATALOGUE[1]
            with pytest.raises(TerminalError, match="not the card"):
                await t.refund(100, CardInput.parse(other.pan), rrn=sale.rrn)
            assert sb.service.stats.requests == sent
            await t.link.close()

    asyncio.run(go())


def test_a_77_for_a_batch_with_nothing_open_closes_it_and_says_so(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            assert (await t.sale(1_000, CardInput.parse(GOOD.pan), PIN)).result == "approved"
            assert (await t.settle()).result == "balanced"
            with t.engine.begin() as conn:  # as if the 0510 had been lost
                conn.execute(update(terminal_config).values(batch_no=1))
            r = await t.sale(500, CardInput.parse(GOOD.pan), PIN)
            assert r.response_code == "77"
            assert r.message.startswith(describe("77").en)
            assert (
                "already settled batch 000001" in r.message and "now on batch 000002" in r.message
            )
            assert t.batch_no() == "000002"
            with t.engine.connect() as conn:
                rows = conn.execute(
                    select(settlements.c.batch_no, settlements.c.result, settlements.c.uploaded)
                ).all()
            assert [tuple(r) for r in rows] == [
                ("000001", "balanced", 0),
                ("000001", "already_settled", 0),
            ]
            assert (await t.sale(500, CardInput.parse(GOOD.pan), PIN)).result == "approved"
            await t.link.close()

    asyncio.run(go())


class TamperedUpload(HostLink):
    """The link delivers the host's answers to batch upload advices with their MAC broken."""

    async def exchange(self, message: bytes, timeout_ms: int | None = None) -> bytes:
        answer = await super().exchange(message, timeout_ms)
        fields = codec.decode(answer)
        if fields["t"] == "0330" and fields.get("60", "").endswith("201"):
            return answer[:-1] + bytes([answer[-1] ^ 0x01])
        return answer


def test_the_batch_upload_sends_this_batch_and_keeps_its_refunds(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            earlier = await t.sale(900, CardInput.parse(GOOD.pan), PIN)
            assert (await t.settle()).result == "balanced"  # batch 1, closed
            sale = await t.sale(5_000, CardInput.parse(GOOD.pan), PIN)
            refund = await t.refund(1_200, CardInput.parse(GOOD.pan), rrn=sale.rrn)
            old_refund = await t.refund(100, CardInput.parse(GOOD.pan), rrn=earlier.rrn)
            assert refund.result == old_refund.result == "approved"
            # The host holds an approval the terminal does not: the totals disagree.
            stray = await t.sale(333, CardInput.parse(GOOD.pan), PIN)
            with t.engine.begin() as conn:
                conn.execute(
                    update(journal).where(journal.c.id == stray.journal_id).values(status="error")
                )
            before = balance_of(sb, GOOD)

            # An upload whose answers do not verify is no upload: the batch stays open.
            honest = t.link
            t.link = TamperedUpload(honest.host, honest.port, honest.profile, honest.fingerprint)
            with pytest.raises(TerminalError, match="batch upload failed"):
                await t.settle()
            assert t.batch_no() == "000002"
            await t.link.close()
            t.link = honest

            report = await t.settle()
            # This batch's sale and both refunds, nothing of batch 1; none refused.
            assert (report.result, report.uploaded, report.upload_refused) == (
                "uploaded",
                3,
                0,
            )
            # The refunds stand (the cardholder keeps them); the stray approval was undone.
            assert balance_of(sb, GOOD) == before + 333
            # The terminal's record of the settlement says what the host settled.
            with t.engine.connect() as conn:
                row = conn.execute(
                    select(settlements).where(settlements.c.batch_no == "000002")
                ).one()
            assert (row.result, row.uploaded) == ("uploaded", 3)
            assert row.host_totals is not None and row.host_totals[30] == "1"
            assert report.host_totals_agree is True
            assert_ledger_balanced(sb)
            await t.link.close()

    asyncio.run(go())
