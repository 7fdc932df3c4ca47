"""Batches fit field 48 by design. Its settlement totals count each card group's sales and
refunds in three digits: a batch of 1,000 sales used to get a 30 for its settlement, over
and over, and every hold in it stayed on the cardholders' funds. Now the terminal closes a
batch at its cap by itself (as real terminals do), and a host that is sent more than the
digits hold settles the batch through the upload, transaction by transaction."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from smartpos.cards.reading import CardInput
from smartpos.host.ledger import check
from smartpos.host.tables import batches, requests, transfers
from smartpos.host.testcards import CATALOGUE
from smartpos.protocol import codec
from smartpos.protocol.codec import MessageError
from smartpos.protocol.messages import (
    F60,
    NET_BATCH_UPLOAD,
    NET_BATCH_UPLOAD_END,
    NET_SETTLE,
    TOTALS_AMOUNT_MAX_MINOR,
    TOTALS_COUNT_MAX,
    TYPE_NETWORK,
    TYPE_PURCHASE,
    SettlementTotals,
    SettleResult,
    TotalsGroup,
)
from smartpos.protocol.profiles import AcquirerProfile, ProfileError
from smartpos.terminal.tables import journal, settlements
from tests.host.test_bad_input import frame, send_raw
from tests.sandbox import running_sandbox

pytestmark = pytest.mark.integration

NO_PIN = next(c for c in CATALOGUE if not c.pin_required)  # Visa: the foreign-card group


def test_totals_fit_their_digits_at_the_limits() -> None:
    full = TotalsGroup(TOTALS_AMOUNT_MAX_MINOR, TOTALS_COUNT_MAX, TOTALS_AMOUNT_MAX_MINOR, 999)
    text = SettlementTotals(full, TotalsGroup()).encode()
    assert len(text) == 62 and SettlementTotals.decode(text)[0].domestic == full
    for over in (
        TotalsGroup(0, 1000),
        TotalsGroup(TOTALS_AMOUNT_MAX_MINOR + 1, 1),
        TotalsGroup(0, 0, 0, 1000),
    ):
        with pytest.raises(MessageError, match="do not fit"):
            SettlementTotals(over, TotalsGroup()).encode()
        # A host's saturated figures still make 62 digits: the largest the digits hold.
        saturated = SettlementTotals(over, TotalsGroup()).encode(
            SettleResult.NOT_BALANCED, saturate=True
        )
        assert len(saturated) == 62 and SettlementTotals.decode(saturated)[0].domestic.fits()
    with pytest.raises(ProfileError, match=r"1\.\.999"):
        AcquirerProfile("too-big", batch_max_transactions=1000)


def test_five_thousand_sales_settle_in_batches_the_terminal_closes_itself(
    tmp_path: Path,
) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            t.profile = replace(t.profile, batch_max_transactions=TOTALS_COUNT_MAX)
            assert (await t.sign_on()).result == "approved"
            card = CardInput.parse(NO_PIN.pan)
            notes = []
            for n in range(5000):
                r = await t.sale(100 + n % 7, card)
                assert r.result == "approved", (n, r)
                if "was full" in r.message:
                    notes.append((n, r.batch_no, r.message))
            report = await t.settle()
            assert report.result == "balanced"
            # Closed at 999 each time, by the terminal, balanced: 999 × 5 + 5.
            assert [n for n, _, _ in notes] == [999, 1998, 2997, 3996, 4995]
            assert all("balanced" in message for _, _, message in notes)
            with t.engine.connect() as conn:
                rows = conn.execute(select(settlements.c.batch_no, settlements.c.result)).all()
                assert [r.result for r in rows] == ["balanced"] * 6
                unsettled = conn.execute(
                    select(func.count()).select_from(journal).where(journal.c.settled.is_(False))
                ).scalar_one()
                assert unsettled == 0
            with sb.host.engine.connect() as conn:
                assert check(conn).balanced
                # Every hold captured: no purchase of a settled batch left pending.
                pending = conn.execute(
                    select(func.count())
                    .select_from(transfers)
                    .where(transfers.c.phase == "pending", transfers.c.code == "purchase")
                ).scalar_one()
                captured = conn.execute(
                    select(func.count()).select_from(transfers).where(transfers.c.phase == "post")
                ).scalar_one()
                assert pending == captured == 5000
                assert (
                    conn.execute(
                        select(func.count())
                        .select_from(batches)
                        .where(batches.c.status == "settled")
                    ).scalar_one()
                    == 6
                )
            await t.link.close()

    asyncio.run(go())


def test_a_host_settles_a_batch_too_big_for_the_totals(tmp_path: Path) -> None:
    """Another vendor's terminal with no cap: 1,001 sales in one batch. The host's totals do
    not fit field 48, so they cannot match; it answers 'not balanced' with the figures
    saturated, takes the upload of all 1,001, and settles the batch."""

    async def go() -> None:
        async with running_sandbox(tmp_path, tls=False) as sb:
            t = sb.terminal(profile=sb.profile)
            assert (await t.sign_on()).result == "approved"
            rrns = []
            for n in range(1, 1002):
                fields = {
                    "t": "0200",
                    "2": NO_PIN.pan,
                    "3": "000000",
                    "4": "000000000100",
                    "11": f"{n:06d}",
                    "12": "101010",
                    "13": "1123",
                    "22": "012",
                    "25": "00",
                    "41": t.tid,
                    "42": t.mid,
                    "49": "156",
                    "60": F60(TYPE_PURCHASE, "000001").encode(),
                }
                answer = await ask(sb, t, fields)
                assert answer["39"] == "00", answer
                rrns.append((f"{n:06d}", answer["37"]))
            claimed = SettlementTotals(TotalsGroup(), TotalsGroup(100_100, 999))
            settle = await ask(
                sb,
                t,
                {
                    "t": "0500",
                    "11": "002000",
                    "12": "120000",
                    "13": "1123",
                    "41": t.tid,
                    "42": t.mid,
                    "48": claimed.encode(),
                    "49": "156",
                    "60": F60(TYPE_NETWORK, "000001", NET_SETTLE).encode(),
                    "63": "01 ",
                },
            )
            assert settle["39"] == "00"
            host_view, result = SettlementTotals.decode(settle["48"])
            assert result == SettleResult.NOT_BALANCED
            assert host_view.foreign.debit_count == TOTALS_COUNT_MAX  # saturated
            for stan, rrn in rrns:
                upload = {
                    "t": "0320",
                    "4": "000000000100",
                    "11": stan,
                    "13": "1123",
                    "37": rrn,
                    "41": t.tid,
                    "42": t.mid,
                    "60": F60(TYPE_PURCHASE, "000001", NET_BATCH_UPLOAD).encode(),
                }
                assert (await ask(sb, t, upload))["39"] == "00"
            end = await ask(
                sb,
                t,
                {
                    "t": "0320",
                    "11": "002001",
                    "12": "120100",
                    "13": "1123",
                    "41": t.tid,
                    "42": t.mid,
                    "48": "1001",
                    "60": F60(TYPE_NETWORK, "000001", NET_BATCH_UPLOAD_END).encode(),
                },
            )
            assert end["39"] == "00"
            assert SettlementTotals.decode(end["48"])[1] == SettleResult.BALANCED
            with sb.host.engine.connect() as conn:
                assert check(conn).balanced
                settled = conn.execute(
                    select(func.count())
                    .select_from(requests)
                    .where(requests.c.kind == "purchase", requests.c.settled.is_(True))
                ).scalar_one()
                assert settled == 1001
            await t.link.close()

    asyncio.run(go())


async def ask(sb, t, fields):  # type: ignore[no-untyped-def]
    resp = await send_raw(sb, frame(sb, codec.encode(fields, mac=t._mac)))
    assert resp is not None
    return codec.decode(resp)


def test_an_upload_of_a_sale_the_host_voided_is_refused(tmp_path: Path) -> None:
    """The terminal's journal holds a sale as approved that the host has voided (the void's
    answer was lost, say). Its upload advice must be refused (25) — the host used to
    confirm it, and the settlement came out balanced while the terminal counted money the
    host never captures."""
    from sqlalchemy import update

    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            assert (await t.sign_on()).result == "approved"
            kept = await t.sale(1_000, CardInput.parse(NO_PIN.pan))
            gone = await t.sale(2_000, CardInput.parse(NO_PIN.pan))
            assert (await t.void(stan=gone.stan)).result == "approved"
            with t.engine.begin() as conn:  # as if the void had never been recorded
                conn.execute(
                    update(journal).where(journal.c.id == gone.journal_id).values(status="approved")
                )
            report = await t.settle()
            assert (report.result, report.uploaded, report.upload_refused) == (
                "not_balanced",
                2,
                1,
            )
            assert kept.result == "approved"
            with sb.host.engine.connect() as conn:
                assert check(conn).balanced
            await t.link.close()

    asyncio.run(go())


@pytest.mark.parametrize("digit", ["3", "0"])
def test_a_settlement_the_host_could_not_complete_keeps_the_batch_open(
    tmp_path: Path, digit: str
) -> None:
    """A 0510 whose result is 3 (error) — or no result at all — does not close the batch (it
    used to be taken as balanced)."""
    from smartpos.host import processor
    from smartpos.host.processor import Processor
    from smartpos.protocol.messages import TxnType
    from smartpos.terminal.engine import TerminalError

    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            assert (await t.sign_on()).result == "approved"
            assert (await t.sale(1_000, CardInput.parse(NO_PIN.pan))).result == "approved"
            settle_as_is = Processor._settlement

            def failing(self: Processor, conn: object, ctx: object) -> None:
                settle_as_is(self, conn, ctx)  # type: ignore[arg-type]
                totals = ctx.response["48"]  # type: ignore[attr-defined]
                ctx.response["48"] = totals[:30] + digit + totals[31:61] + digit  # type: ignore[attr-defined]

            processor._HANDLERS[TxnType.SETTLEMENT] = failing
            try:
                with pytest.raises(TerminalError, match="stays open"):
                    await t.settle()
            finally:
                processor._HANDLERS[TxnType.SETTLEMENT] = settle_as_is
            assert t.batch_no() == "000001"
            with t.engine.connect() as conn:
                assert conn.execute(select(func.count()).select_from(settlements)).scalar() == 0
            await t.link.close()

    asyncio.run(go())


def test_the_batch_closes_before_a_card_groups_amounts_overflow(tmp_path: Path) -> None:
    """Field 48 holds each card group's amounts in twelve digits: a sale that would carry
    the domestic (UnionPay) sales past them makes the terminal settle first; the same
    sale on a foreign card, whose group is empty, does not — and nor does a refund, whose
    own amounts are counted apart."""

    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            nearly_full = TotalsGroup(TOTALS_AMOUNT_MAX_MINOR - 100, 3)
            empty = TotalsGroup(0, 0)
            t.totals = lambda conn, batch_no: SettlementTotals(nearly_full, empty)  # type: ignore[method-assign]
            settled: list[str] = []

            async def settle() -> SimpleNamespace:
                settled.append(t.batch_no())
                return SimpleNamespace(result="balanced")

            t.settle = settle  # type: ignore[method-assign]
            assert await t._make_room("sale", 100, "unionpay") is None
            assert await t._make_room("refund", 101, "unionpay") is None
            assert settled == []
            # Through a real sale: the card's brand picks the group.
            assert (await t.sign_on()).result == "approved"
            foreign = await t.sale(101, CardInput.parse(NO_PIN.pan), None)
            assert foreign.result == "approved" and settled == []
            domestic = await t.sale(101, CardInput.parse(CATALOGUE[0].pan), CATALOGUE[0].pin)
            assert domestic.result == "approved", domestic
            assert settled == [t.batch_no()]
            assert domestic.message.startswith("Approved (batch ")
            assert domestic.message.endswith("was full and has been settled: balanced)")
            await t.link.close()

    asyncio.run(go())
