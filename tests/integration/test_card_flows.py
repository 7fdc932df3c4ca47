"""End to end over TLS: terminal engine ⇄ sandbox host, every test card and money path."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from smartpos.cards.reading import CardInput
from smartpos.host import steps
from smartpos.host.ledger import available, check
from smartpos.host.tables import cards, terminals
from smartpos.host.testcards import CATALOGUE, TestCard, by_label_prefix
from smartpos.terminal.engine import Terminal, TerminalError
from tests.sandbox import Sandbox, running_sandbox

pytestmark = pytest.mark.integration

GOOD = CATALOGUE[0]
PIN = "123456"


def balance_of(sb: Sandbox, card: TestCard) -> int:
    with sb.host.engine.connect() as conn:
        acct = conn.execute(
            select(cards.c.account_id).where(cards.c.token == sb.host.tokenizer.token(card.pan))
        ).scalar_one()
        return available(conn, acct)


def assert_ledger_balanced(sb: Sandbox) -> None:
    with sb.host.engine.connect() as conn:
        report = check(conn)
    assert report.balanced, report.problems


async def signed_on(sb: Sandbox, tid: str = "10000001") -> Terminal:
    t = sb.terminal(tid)
    assert (await t.sign_on()).result == "approved"
    return t


def test_sale_approves_with_pin_and_holds_the_money(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            before = balance_of(sb, GOOD)
            r = await t.sale(1234, CardInput.parse(GOOD.pan), PIN)
            assert r.result == "approved", r
            assert r.response_code == "00" and len(r.auth_code) == 6 and len(r.rrn) == 12
            assert r.pan_masked == GOOD.pan[:6] + "******" + GOOD.pan[-4:]
            assert balance_of(sb, GOOD) == before - 1234
            swiped = await t.sale(100, CardInput.parse(GOOD.track2), PIN)
            assert swiped.result == "approved" and swiped.entry_mode == "swipe"
            assert_ledger_balanced(sb)
            await t.link.close()

    asyncio.run(go())


EXPECTED = {
    "UnionPay debit, balance 10.00": "51",
    "UnionPay debit, expired": "54",
    "UnionPay debit, reported lost": "41",
    "UnionPay debit, reported stolen": "43",
    "UnionPay debit, issuer refuses": "05",
    "UnionPay debit, restricted": "62",
}


def test_every_test_card_gives_its_response_code(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            for prefix, code in EXPECTED.items():
                card = by_label_prefix(prefix)
                before = balance_of(sb, card)
                r = await t.sale(5000, CardInput.parse(card.pan), PIN)
                assert (r.result, r.response_code) == ("declined", code), (prefix, r)
                assert balance_of(sb, card) == before
            for card in CATALOGUE[:5]:  # all approving cards, with and without PIN
                pin = PIN if card.pin_required else None
                assert (await t.sale(100, CardInput.parse(card.pan), pin)).result == "approved"
            assert_ledger_balanced(sb)
            await t.link.close()

    asyncio.run(go())


def test_wrong_pin_then_tries_exceeded(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            card = by_label_prefix("UnionPay debit for PIN")
            codes = [
                (await t.sale(100, CardInput.parse(card.pan), "654321")).response_code
                for _ in range(3)
            ]
            assert codes == ["55", "55", "75"]
            # Locked now, even with the right PIN; nothing was ever debited.
            assert (await t.sale(100, CardInput.parse(card.pan), PIN)).response_code == "75"
            assert balance_of(sb, card) == card.balance_minor
            # A debit card without a PIN is refused too.
            assert (await t.sale(100, CardInput.parse(GOOD.pan), None)).response_code == "55"
            await t.link.close()

    asyncio.run(go())


def test_no_answer_card_times_out_and_is_reversed(tmp_path: Path) -> None:
    async def go() -> None:
        from dataclasses import replace

        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            t.profile = replace(t.profile, response_timeout_ms=500, reversal_backoff_ms=10)
            t.link.profile = t.profile
            card = by_label_prefix("UnionPay debit, issuer silent")
            r = await t.sale(2000, CardInput.parse(card.pan), PIN)
            assert r.result == "error" and r.reversal == "sent", r
            assert t.pending_reversals() == 0
            assert balance_of(sb, card) == card.balance_minor
            assert_ledger_balanced(sb)
            await t.link.close()

    asyncio.run(go())


def test_void_refund_and_over_refund(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            start = balance_of(sb, GOOD)
            sale = await t.sale(10_000, CardInput.parse(GOOD.pan), PIN)
            voided = await t.void(stan=sale.stan)
            assert voided.result == "approved", voided
            assert balance_of(sb, GOOD) == start
            with pytest.raises(TerminalError):
                await t.void(stan=sale.stan)  # already voided

            sale2 = await t.sale(10_000, CardInput.parse(GOOD.pan), PIN)
            part = await t.refund(3_000, CardInput.parse(GOOD.pan), rrn=sale2.rrn)
            assert part.result == "approved", part
            assert balance_of(sb, GOOD) == start - 7_000
            with pytest.raises(TerminalError, match="exceeds"):
                await t.refund(7_001, CardInput.parse(GOOD.pan), rrn=sale2.rrn)
            rest = await t.refund(7_000, CardInput.parse(GOOD.pan), rrn=sale2.rrn)
            assert rest.result == "approved"
            assert balance_of(sb, GOOD) == start
            assert_ledger_balanced(sb)
            await t.link.close()

    asyncio.run(go())


def test_host_refuses_over_refund_even_if_terminal_does_not_know(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t1 = await signed_on(sb, "10000001")
            t2 = await signed_on(sb, "10000002")
            sale = await t1.sale(5_000, CardInput.parse(GOOD.pan), PIN)
            ok = await t2.refund(5_000, CardInput.parse(GOOD.pan), rrn=sale.rrn)
            assert ok.result == "approved"
            again = await t2.refund(1, CardInput.parse(GOOD.pan), rrn=sale.rrn)
            assert (again.result, again.response_code) == ("declined", "64")
            other = await t2.refund(1, CardInput.parse(CATALOGUE[1].pan), rrn=sale.rrn)
            assert other.response_code in ("14", "64")
            assert_ledger_balanced(sb)
            await t1.link.close()
            await t2.link.close()

    asyncio.run(go())


def test_balance_inquiry(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            r = await t.balance(CardInput.parse(GOOD.pan), PIN)
            assert r.result == "approved" and r.balance_minor == GOOD.balance_minor
            await t.link.close()

    asyncio.run(go())


def test_settlement_balanced_captures_holds(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            await t.sale(1_000, CardInput.parse(GOOD.pan), PIN)
            visa = by_label_prefix("Visa")
            s2 = await t.sale(2_000, CardInput.parse(visa.pan), None)
            await t.refund(500, CardInput.parse(visa.pan), rrn=s2.rrn)
            out = (await t.settle()).to_dict()
            assert out["result"] == "balanced" and out["sales_count"] == 2
            assert out["next_batch_no"] == "000002"
            with sb.host.engine.connect() as conn:
                report = check(conn)
            assert report.balanced and report.debits_pending == 0
            # A sale after settlement lands in the new batch.
            assert (await t.sale(100, CardInput.parse(GOOD.pan), PIN)).batch_no == "000002"
            await t.link.close()

    asyncio.run(go())


def test_settlement_not_balanced_runs_batch_upload(tmp_path: Path) -> None:
    async def go() -> None:
        from sqlalchemy import update

        from smartpos.terminal.tables import journal

        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            keep = await t.sale(1_000, CardInput.parse(GOOD.pan), PIN)
            lost = await t.sale(2_000, CardInput.parse(GOOD.pan), PIN)
            # The terminal lost its record of the second approval (e.g. restored backup).
            with t.engine.begin() as conn:
                conn.execute(
                    update(journal).where(journal.c.stan == lost.stan).values(status="error")
                )
            start = balance_of(sb, GOOD)
            out = (await t.settle()).to_dict()
            assert out["result"] == "uploaded" and out["uploaded"] == 1
            # The host released the hold the terminal does not know; kept the other.
            assert balance_of(sb, GOOD) == start + 2_000
            assert keep.result == "approved"
            assert_ledger_balanced(sb)
            await t.link.close()

    asyncio.run(go())


def test_unprovisioned_terminal_and_bad_mac_are_refused(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            t._tak = bytes(16)  # wrong MAC key: host must refuse, nothing posted
            before = balance_of(sb, GOOD)
            r = await t.sale(1_000, CardInput.parse(GOOD.pan), PIN)
            assert r.response_code == "A0" and r.result == "declined"
            assert balance_of(sb, GOOD) == before
            await t.link.close()

    asyncio.run(go())


def test_lost_settlement_answer_is_caught_up_on_77(tmp_path: Path) -> None:
    """The host settled the batch but the terminal never heard: the next sale gets 77, the
    terminal closes its batch too, and the retry is approved in the new batch."""

    async def go() -> None:
        from sqlalchemy import update

        from smartpos.terminal.tables import terminal_config

        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            # Two sales: the host remembers the batch as open after the second one; the
            # settlement must make it forget that.
            await t.sale(1_000, CardInput.parse(GOOD.pan), PIN)
            await t.sale(700, CardInput.parse(GOOD.pan), PIN)
            assert (await t.settle()).result == "balanced"
            with t.engine.begin() as conn:  # as if the 0510 had been lost
                conn.execute(update(terminal_config).values(batch_no=1))
            r = await t.sale(500, CardInput.parse(GOOD.pan), PIN)
            assert r.response_code == "77" and "retry" in r.message
            assert t.batch_no() == "000002"
            again = await t.sale(500, CardInput.parse(GOOD.pan), PIN)
            assert again.result == "approved" and again.batch_no == "000002"
            assert_ledger_balanced(sb)
            await t.link.close()

    asyncio.run(go())


def test_batch_upload_takes_back_a_refund_the_terminal_does_not_hold(tmp_path: Path) -> None:
    async def go() -> None:
        from sqlalchemy import update

        from smartpos.terminal.tables import journal

        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            start = balance_of(sb, GOOD)
            sale = await t.sale(4_000, CardInput.parse(GOOD.pan), PIN)
            refund = await t.refund(1_500, CardInput.parse(GOOD.pan), rrn=sale.rrn)
            assert balance_of(sb, GOOD) == start - 2_500
            with t.engine.begin() as conn:  # the terminal lost its record of the refund
                conn.execute(
                    update(journal).where(journal.c.stan == refund.stan).values(status="error")
                )
            out = (await t.settle()).to_dict()
            assert out["result"] == "uploaded" and out["uploaded"] == 1
            assert balance_of(sb, GOOD) == start - 4_000  # refund taken back, sale captured
            assert_ledger_balanced(sb)
            await t.link.close()

    asyncio.run(go())


@pytest.mark.parametrize("profile", ["cup-ecb", "no-mac"])
def test_other_acquirer_profiles_work_end_to_end(tmp_path: Path, profile: str) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path, profile=profile) as sb:
            t = sb.terminal(profile=sb.profile)
            assert (await t.sign_on()).result == "approved"
            sale = await t.sale(1_000, CardInput.parse(GOOD.pan), PIN)
            assert sale.result == "approved", sale
            assert (await t.void(stan=sale.stan)).result == "approved"
            assert_ledger_balanced(sb)
            await t.link.close()

    asyncio.run(go())


def test_test_amounts_force_outcomes(tmp_path: Path) -> None:
    async def go() -> None:
        from dataclasses import replace

        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            before = balance_of(sb, GOOD)
            for cents, code in ((51, "51"), (5, "05"), (61, "61"), (96, "96")):
                r = await t.sale(900_000 + cents, CardInput.parse(GOOD.pan), PIN)
                assert (r.result, r.response_code) == ("declined", code)
            ok = await t.sale(900_042, CardInput.parse(GOOD.pan), PIN)
            assert ok.result == "approved"
            t.profile = replace(t.profile, response_timeout_ms=400, reversal_backoff_ms=10)
            t.link.profile = t.profile
            silent = await t.sale(900_098, CardInput.parse(GOOD.pan), PIN)
            assert silent.result == "error" and silent.reversal == "sent"
            assert balance_of(sb, GOOD) == before - 900_042
            assert_ledger_balanced(sb)
            await t.link.close()

    asyncio.run(go())


def test_upload_of_an_approval_the_host_never_gave_is_reported(tmp_path: Path) -> None:
    async def go() -> None:
        from datetime import UTC, datetime

        from smartpos.terminal.tables import journal

        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            real = await t.sale(1_000, CardInput.parse(GOOD.pan), PIN)
            start = balance_of(sb, GOOD)
            now = datetime.now(UTC)
            with t.engine.begin() as conn:  # e.g. a journal restored from another device
                conn.execute(
                    journal.insert().values(
                        kind="sale",
                        stan="999999",
                        date_mmdd=real.stan[:4],
                        invoice_no="999999",
                        batch_no=real.batch_no,
                        amount_minor=777,
                        currency="CNY",
                        pan_masked=real.pan_masked,
                        brand="unionpay",
                        entry_mode="manual",
                        status="approved",
                        rrn="999999999999",
                        refunded_minor=0,
                        settled=False,
                        created_at=now,
                        updated_at=now,
                    )
                )
            out = (await t.settle()).to_dict()
            assert out["result"] == "not_balanced", out
            assert (out["uploaded"], out["upload_refused"]) == (2, 1)
            assert balance_of(sb, GOOD) == start  # nothing posted for the unknown approval
            assert_ledger_balanced(sb)
            again = await t.sale(100, CardInput.parse(GOOD.pan), PIN)
            assert again.result == "approved" and again.batch_no == "000002"
            await t.link.close()

    asyncio.run(go())


def test_after_a0_the_terminal_signs_on_again_by_itself(tmp_path: Path) -> None:
    """The host rotated the terminal's keys behind its back (as after a sign-on from a
    replaced terminal): the next sale is answered A0 with nothing charged, the terminal signs
    on again by itself, and the sale after that is approved."""

    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            row = sb.service.terminals[t.tid]
            tpk, tak, _ = sb.host.hsm.new_working_keys(t.tid, row.sealed_tmk)
            with sb.host.engine.begin() as conn:
                conn.execute(
                    terminals.update()
                    .where(terminals.c.tid == t.tid)
                    .values(sealed_tpk=tpk, sealed_tak=tak)
                )
            sb.service.reload_terminals()
            before = balance_of(sb, GOOD)
            refused = await t.sale(1234, CardInput.parse(GOOD.pan), PIN)
            assert (refused.result, refused.response_code) == ("declined", "A0"), refused
            assert "signed on again" in refused.message
            assert balance_of(sb, GOOD) == before  # nothing charged
            assert await t.flush_reversals() == 0  # and nothing to reverse
            again = await t.sale(1234, CardInput.parse(GOOD.pan), PIN)
            assert again.result == "approved", again
            assert balance_of(sb, GOOD) == before - 1234
            assert_ledger_balanced(sb)
            await t.link.close()

    asyncio.run(go())


def test_chip_sale_end_to_end_and_a_refused_arpc_is_reversed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chip entry through the terminal engine: ARQC from the simulated chip, checked by the
    host, ARPC checked by the card; the counter moves on with each sale. When the card
    refuses the issuer's answer, the approved sale is reversed and nothing stays charged."""

    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            before = balance_of(sb, GOOD)
            chip = CardInput.parse(GOOD.pan, chip=True)
            first = await t.sale(1234, chip, PIN)
            assert first.result == "approved" and first.entry_mode == "chip", first
            assert (first.icc["AID"], first.app_label) == ("A000000333010101", "UnionPay Debit")
            # The card accepted the approval: its TC (second GENERATE AC) is on the slip.
            assert len(first.icc["TC"]) == 16 and first.icc["TC"] != first.icc["ARQC"]
            second = await t.sale(100, chip, PIN)  # the next ATC: not a replay
            assert second.result == "approved", second
            assert balance_of(sb, GOOD) == before - 1334

            real = steps.arpc_tag91
            monkeypatch.setattr(
                steps,
                "arpc_tag91",
                lambda *a, **kw: real(*a, **kw)[:-5] + bytes(5),  # a broken ARPC
            )
            refused = await t.sale(500, chip, PIN)
            assert refused.result != "approved" and refused.reversal is not None, refused
            assert "TC" not in refused.icc  # the card answered with an AAC
            monkeypatch.setattr(steps, "arpc_tag91", real)
            assert await t.flush_reversals() == 0
            assert balance_of(sb, GOOD) == before - 1334  # the refused one is undone
            assert_ledger_balanced(sb)
            await t.link.close()

    asyncio.run(go())


def test_settlement_sends_the_cards_tcs_first(tmp_path: Path) -> None:
    """Each approved inserted-chip sale's TC goes to the host in a TC advice before the
    settlement; the host keeps it on the sale; the terminal keeps no PAN afterwards."""

    async def go() -> None:
        from smartpos.host.tables import requests
        from smartpos.terminal.tables import journal

        async with running_sandbox(tmp_path) as sb:
            t = await signed_on(sb)
            chip = CardInput.parse(GOOD.pan, chip=True)
            kept = await t.sale(1_500, chip, PIN)
            tampered = await t.sale(800, chip, PIN)
            voided = await t.sale(600, chip, PIN)
            swiped = await t.sale(400, CardInput.parse(GOOD.track2), PIN)
            assert (await t.void(stan=voided.stan)).result == "approved"
            with t.engine.begin() as conn:  # a TC the card never made: the host refuses it
                row = conn.execute(select(journal.c.tc).where(journal.c.stan == tampered.stan))
                tc = row.scalar_one()
                forged = tc[: tc.index("9F2608") + 6] + "00" * 8 + tc[tc.index("9F2608") + 22 :]
                conn.execute(
                    journal.update().where(journal.c.stan == tampered.stan).values(tc=forged)
                )
            out = (await t.settle()).to_dict()
            assert out["result"] == "balanced", out
            assert out["tc_advices"] == {"sent": 1, "refused": 1, "pending": 0}, out
            with sb.host.engine.connect() as conn:
                tcs = dict(conn.execute(select(requests.c.rrn, requests.c.tc)).all())
            assert tcs[kept.rrn] is not None and kept.icc["TC"] in tcs[kept.rrn]
            assert tcs[tampered.rrn] is None and tcs[voided.rrn] is None
            assert tcs[swiped.rrn] is None
            with t.engine.connect() as conn:
                states = dict(conn.execute(select(journal.c.stan, journal.c.tc_state)).all())
                sealed = conn.execute(
                    select(journal.c.id).where(journal.c.tc_pan_sealed.is_not(None))
                ).all()
            assert states[kept.stan] == "sent" and states[tampered.stan] == "refused"
            assert states[voided.stan] == "dropped" and states[swiped.stan] is None
            assert sealed == []  # no PAN kept past the settlement
            assert_ledger_balanced(sb)
            await t.link.close()

    asyncio.run(go())
