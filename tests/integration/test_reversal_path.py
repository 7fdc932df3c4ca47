"""The terminal's reversal path, deterministically: the process dies at each point of a
money request, a new process takes the same database, and the money ends where it
started. (Mutation testing found that not arming the reversal before sending was caught
only by some randomized fault runs.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from smartpos.host.testcards import CATALOGUE
from smartpos.protocol.framing import Frame, Tpdu, encode_frame
from smartpos.terminal.engine import CardInput, Terminal
from smartpos.terminal.link import HostLink
from tests.integration.test_card_flows import assert_ledger_balanced, balance_of
from tests.sandbox import running_sandbox

pytestmark = pytest.mark.integration
GOOD = CATALOGUE[0]
PIN = "123456"


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
