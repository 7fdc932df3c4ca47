"""The terminal's reversal path, deterministically: the process dies at each point of a
money request, a new process takes the same database, and the money ends where it
started; a reversal names its sale by the sale's own fields, and stays owed until the host
takes it. (Mutation testing found these held only by randomized fault runs, or by none.)"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from smartpos.cards.reading import CardInput
from smartpos.host.testcards import CATALOGUE, by_label_prefix
from smartpos.protocol import codec
from smartpos.protocol.framing import Frame, Tpdu, encode_frame
from smartpos.terminal.engine import Terminal, TerminalError
from smartpos.terminal.link import HostLink
from smartpos.terminal.tables import journal, reversals
from tests.integration.test_card_flows import assert_ledger_balanced, balance_of
from tests.sandbox import running_sandbox

pytestmark = pytest.mark.integration
GOOD = CATALOGUE[0]
PIN = "123456"


def status_of(t: Terminal, journal_id: int | None) -> str:
    with t.engine.connect() as conn:
        found = conn.execute(select(journal.c.status).where(journal.c.id == journal_id))
        return str(found.scalar())


class Crash(BaseException):
    """The terminal process dies here (nothing of the terminal's own handling runs)."""


class DyingLink(HostLink):
    """A real link whose process dies after the request reached the host: before or after
    the host's answer arrives."""

    def __init__(self, link: HostLink, *, after_answer: bool) -> None:
        super().__init__(link.host, link.port, link.profile, link.fingerprint)
        self.after_answer = after_answer

    async def exchange(self, message: bytes, timeout_ms: int | None = None) -> bytes:
        if self.after_answer:
            await super().exchange(message, timeout_ms)
            raise Crash
        await self._connect()
        assert self._writer is not None
        tpdu = Tpdu(self.profile.host_nii, self.profile.terminal_nii)
        self._writer.write(encode_frame(Frame(tpdu, self.profile.app_header, message)))
        await self._writer.drain()
        await asyncio.sleep(0.2)  # the host decides and commits; no answer is read
        raise Crash


@pytest.mark.parametrize("after_answer", [False, True], ids=["before-answer", "after-answer"])
@pytest.mark.parametrize("kind", ["sale", "void", "refund"])
def test_a_crash_mid_request_is_reversed_by_the_next_process(
    tmp_path: Path, kind: str, after_answer: bool
) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            assert (await t.sign_on()).result == "approved"
            sale = None
            if kind != "sale":
                sale = await t.sale(5_000, CardInput.parse(GOOD.pan), PIN)
                assert sale.result == "approved"
            before = balance_of(sb, GOOD)
            live = t.link
            t.link = DyingLink(live, after_answer=after_answer)
            with pytest.raises(Crash):
                if kind == "sale":
                    await t.sale(1_234, CardInput.parse(GOOD.pan), PIN)
                elif kind == "void":
                    assert sale is not None
                    await t.void(stan=sale.stan)
                else:
                    assert sale is not None
                    await t.refund(1_000, CardInput.parse(GOOD.pan), rrn=sale.rrn)
            await t.link.close()
            assert balance_of(sb, GOOD) != before  # the host did move the money

            # The next process on the same database.
            restarted = Terminal(t.engine, t.vault, t.profile, live)
            assert restarted.recover() == 1
            assert await restarted.flush_reversals() == 0
            assert balance_of(sb, GOOD) == before
            assert_ledger_balanced(sb)
            # And it sells again.
            r = await restarted.sale(100, CardInput.parse(GOOD.pan), PIN)
            assert r.result == "approved"
            await restarted.link.close()

    asyncio.run(go())


class Recording(HostLink):
    """A real link that keeps every request it sends, decoded."""

    def __init__(self, link: HostLink) -> None:
        super().__init__(link.host, link.port, link.profile, link.fingerprint)
        self.sent: list[dict[str, str]] = []

    async def exchange(self, message: bytes, timeout_ms: int | None = None) -> bytes:
        self.sent.append(codec.decode(message))
        return await super().exchange(message, timeout_ms)


def test_an_unanswered_sale_is_reversed_by_its_own_fields(tmp_path: Path) -> None:
    """The reversal names the sale it undoes — its trace, date and time, amount, processing
    code, entry mode, currency and batch — and the terminal's other transactions are left as
    they were: the approved sale before it still settles."""

    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            t.profile = replace(t.profile, response_timeout_ms=400, reversal_backoff_ms=10)
            t.link = Recording(t.link)
            t.link.profile = t.profile
            assert (await t.sign_on()).result == "approved"
            kept = await t.sale(1_500, CardInput.parse(GOOD.pan), PIN)
            assert kept.result == "approved"
            silent = by_label_prefix("UnionPay debit, issuer silent")
            lost = await t.sale(2_200, CardInput.parse(silent.pan), PIN)
            assert (lost.result, lost.reversal) == ("error", "sent")
            original = next(f for f in t.link.sent if f["t"] == "0200" and f["11"] == lost.stan)
            reversal = next(f for f in t.link.sent if f["t"] == "0400")
            for name in ("3", "4", "11", "12", "13", "22", "25", "41", "42", "49", "60"):
                assert reversal[name] == original[name], name
            assert reversal["39"] == "98"  # no response
            assert status_of(t, kept.journal_id) == "approved"
            assert status_of(t, lost.journal_id) == "reversed"
            report = await t.settle()
            assert (report.result, report.sales_count, report.sales_minor) == (
                "balanced",
                1,
                1_500,
            )
            await t.link.close()

    asyncio.run(go())


class MacBreaking(Recording):
    """A recording link that breaks the MAC of the first answer to a 0200."""

    def __init__(self, link: HostLink) -> None:
        super().__init__(link)
        self.broken = False

    async def exchange(self, message: bytes, timeout_ms: int | None = None) -> bytes:
        answer = await super().exchange(message, timeout_ms)
        if self.sent[-1]["t"] == "0200" and not self.broken:
            self.broken = True
            return answer[:-1] + bytes([answer[-1] ^ 0x01])
        return answer


def test_an_answer_with_a_bad_mac_is_reversed_as_such(tmp_path: Path) -> None:
    """The host approved, but the answer's MAC fails: the terminal cannot trust it, so it
    reverses the sale at once, saying why (39 = A0, not 98), and tells the cashier the
    sale was reversed."""

    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            t.profile = replace(t.profile, reversal_backoff_ms=5)
            t.link = MacBreaking(t.link)
            t.link.profile = t.profile
            assert (await t.sign_on()).result == "approved"
            before = balance_of(sb, GOOD)
            r = await t.sale(1_800, CardInput.parse(GOOD.pan), PIN)
            assert (r.result, r.reversal) == ("error", "sent"), r
            assert r.message.endswith("; the transaction was reversed"), r.message
            reversal = next(f for f in t.link.sent if f["t"] == "0400")
            assert reversal["39"] == "A0" and reversal["11"] == r.stan
            assert balance_of(sb, GOOD) == before
            assert status_of(t, r.journal_id) == "reversed"
            await t.link.close()

    asyncio.run(go())


def test_a_reversal_the_host_cannot_take_stays_pending(tmp_path: Path) -> None:
    """A reversal answered with anything but 00 (here the host fails: 96) is still owed:
    it stays pending, the terminal takes no new card work, and it goes out again until the
    host takes it."""
    from smartpos.host import processor
    from smartpos.protocol.messages import TxnType

    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            t.profile = replace(t.profile, response_timeout_ms=400, reversal_backoff_ms=5)
            t.link = Recording(t.link)
            t.link.profile = t.profile
            assert (await t.sign_on()).result == "approved"
            reverse_as_is = processor._HANDLERS[TxnType.REVERSAL]

            def failing(self: Any, conn: Any, ctx: Any) -> None:
                raise RuntimeError("the host's database is down")

            processor._HANDLERS[TxnType.REVERSAL] = failing
            before = balance_of(sb, GOOD)
            try:
                silent = by_label_prefix("UnionPay debit, issuer silent")
                lost = await t.sale(2_200, CardInput.parse(silent.pan), PIN)
                assert lost.reversal == "queued" and t.pending_reversals() == 1
                assert lost.message.endswith(
                    "; reversal queued, it is sent before the next transaction"
                ), lost.message
                assert await t.flush_reversals() == 1
                with pytest.raises(TerminalError, match="reversal is still waiting"):
                    await t.sale(100, CardInput.parse(GOOD.pan), PIN)
            finally:
                processor._HANDLERS[TxnType.REVERSAL] = reverse_as_is
            assert balance_of(sb, GOOD) == before  # the refused sale never left
            assert await t.flush_reversals() == 0
            assert status_of(t, lost.journal_id) == "reversed"
            # The first attempt is a 0400, every repeat a 0401 (protocol.md §9.3).
            mtis = [f["t"] for f in t.link.sent if f["t"] in ("0400", "0401")]
            assert len(mtis) >= 3 and mtis[0] == "0400" and set(mtis[1:]) == {"0401"}, mtis
            assert (await t.sale(100, CardInput.parse(GOOD.pan), PIN)).result == "approved"
            assert_ledger_balanced(sb)
            await t.link.close()

    asyncio.run(go())


class Answering:
    """A host stand-in answering every request with fixed fields (trace matched), MACed
    under ``mac`` when given."""

    def __init__(self, answer: dict[str, str], mac: Any = None) -> None:
        self.answer, self.mac = answer, mac

    async def exchange(self, message: bytes, timeout_ms: int | None = None) -> bytes:
        from smartpos.protocol.messages import response_mti

        req = codec.decode(message)
        fields = {"t": response_mti(req["t"]), "11": req["11"], "41": req["41"], **self.answer}
        return codec.encode(fields, mac=self.mac)

    async def close(self) -> None:
        return None


def test_only_a_maced_answer_can_say_nothing_is_left_to_reverse(tmp_path: Path) -> None:
    """25 or 94 to a reversal means the host holds no request of ours under its trace — but
    only a MACed answer may say so: an unauthenticated one leaves the reversal owed, and so
    does any other code."""
    from smartpos.host import processor
    from smartpos.protocol.messages import TxnType

    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            t.profile = replace(t.profile, response_timeout_ms=400, reversal_backoff_ms=5)
            t.link = Recording(t.link)
            t.link.profile = t.profile
            assert (await t.sign_on()).result == "approved"
            reverse_as_is = processor._HANDLERS[TxnType.REVERSAL]

            def failing(self: Any, conn: Any, ctx: Any) -> None:
                raise RuntimeError("down")

            processor._HANDLERS[TxnType.REVERSAL] = failing
            try:
                silent = by_label_prefix("UnionPay debit, issuer silent")
                owed = await t.sale(2_200, CardInput.parse(silent.pan), PIN)
            finally:
                processor._HANDLERS[TxnType.REVERSAL] = reverse_as_is
            assert owed.reversal == "queued"
            live = t.link
            forged = lambda data: bytes(8)  # noqa: E731 - a MAC under no key of ours
            for code, mac in (
                ("00", None),
                ("00", forged),
                ("25", None),
                ("94", forged),
                ("12", t._mac),
                ("05", t._mac),
            ):
                t.link = Answering({"39": code}, mac=mac)  # type: ignore[assignment]
                assert await t.flush_reversals() == 1, code
                assert status_of(t, owed.journal_id) == "reversal_pending"
            for code in ("25", "94"):
                t.link = Answering({"39": code}, mac=t._mac)  # type: ignore[assignment]
                with t.engine.begin() as conn:  # owed again, to try the other code
                    conn.execute(
                        update(reversals)
                        .where(reversals.c.journal_id == owed.journal_id)
                        .values(status="pending")
                    )
                assert await t.flush_reversals() == 0, code
                assert status_of(t, owed.journal_id) == "reversed"
            t.link = live
            await live.close()

    asyncio.run(go())
