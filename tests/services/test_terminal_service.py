"""The terminal service: an order reference is charged once, whatever the caller repeats;
calls to one terminal are serialized; a waiting sale does not block the caller's loop."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from smartpos.cards.reading import CardInput
from smartpos.config import Settings
from smartpos.host.tables import requests
from smartpos.host.testcards import CATALOGUE, by_label_prefix
from smartpos.services.terminal import TerminalService
from smartpos.terminal.engine import Terminal
from smartpos.terminal.errors import Refusal, TerminalError
from smartpos.terminal.link import HostLink
from tests.integration.test_card_flows import assert_ledger_balanced, balance_of
from tests.sandbox import Sandbox, running_sandbox

pytestmark = pytest.mark.integration

GOOD = CATALOGUE[0]
SILENT = by_label_prefix("UnionPay debit, issuer silent")


def host_requests(sb: Sandbox, kind: str) -> int:
    with sb.host.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(requests).where(requests.c.kind == kind)
            ).scalar_one()
        )


class CountingLink:
    """The terminal's real link, counting the requests that leave (and optionally holding
    the terminal's thread the way a slow disk sync would)."""

    def __init__(self, link: HostLink, block_s: float = 0.0) -> None:
        self.link, self.block_s, self.sent = link, block_s, 0

    async def exchange(self, message: bytes, timeout_ms: int | None = None) -> bytes:
        self.sent += 1
        if self.block_s:
            time.sleep(self.block_s)  # blocks the terminal's thread, as a commit would
        return await self.link.exchange(message, timeout_ms)

    async def close(self) -> None:
        await self.link.close()


def service_on(t: Terminal) -> TerminalService:
    return TerminalService.open(Settings(), factory=lambda: t)


def test_the_same_order_reference_is_charged_once(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            link = CountingLink(t.link)  # type: ignore[arg-type]
            t.link = link  # type: ignore[assignment]
            service = service_on(t)
            try:
                assert (await service.sign_on()).result == "approved"
                before = balance_of(sb, GOOD)
                card = CardInput.parse(GOOD.pan)
                first = await service.sale(1234, card, GOOD.pin, order_ref="A-1001")
                sent = link.sent
                again = await service.sale(1234, card, GOOD.pin, order_ref="A-1001")
                assert first.result == "approved" and not first.repeated
                assert again.repeated and again.result == "approved"
                assert (again.rrn, again.auth_code, again.stan) == (
                    first.rrn,
                    first.auth_code,
                    first.stan,
                )
                assert link.sent == sent  # nothing left the terminal the second time
                assert host_requests(sb, "purchase") == 1
                assert balance_of(sb, GOOD) == before - 1234
                # Another amount under the same reference is refused, nothing sent.
                with pytest.raises(TerminalError) as refused:
                    await service.sale(999, card, GOOD.pin, order_ref="A-1001")
                assert refused.value.code == Refusal.KEY_REUSED
                assert "订单号" in refused.value.text("zh")
                assert link.sent == sent
                # The void under its own reference, repeated, voids once.
                void = await service.void(stan=first.stan, order_ref="A-1001/void")
                assert void.result == "approved"
                repeat = await service.void(stan=first.stan, order_ref="A-1001/void")
                assert repeat.repeated and repeat.rrn == void.rrn
                assert host_requests(sb, "void") == 1
                assert balance_of(sb, GOOD) == before
                assert_ledger_balanced(sb)
            finally:
                await service.close()

    asyncio.run(go())


def test_two_concurrent_calls_with_one_reference_make_one_request(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            link = CountingLink(t.link)  # type: ignore[arg-type]
            t.link = link  # type: ignore[assignment]
            service = service_on(t)
            try:
                assert (await service.sign_on()).result == "approved"
                before = balance_of(sb, GOOD)
                card = CardInput.parse(GOOD.pan)
                a, b = await asyncio.gather(
                    service.sale(500, card, GOOD.pin, order_ref="double-click"),
                    service.sale(500, card, GOOD.pin, order_ref="double-click"),
                )
                assert a.result == b.result == "approved"
                assert a.rrn == b.rrn and [a.repeated, b.repeated].count(True) == 1
                assert host_requests(sb, "purchase") == 1
                assert balance_of(sb, GOOD) == before - 500
            finally:
                await service.close()

    asyncio.run(go())


def test_an_unanswered_sale_repeated_is_not_sent_again(tmp_path: Path) -> None:
    """No answer: the sale is reversed. Its reference again sends nothing — not the sale,
    not a second reversal — and says what became of it."""

    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            t.profile = replace(t.profile, response_timeout_ms=300, reversal_backoff_ms=10)
            link = CountingLink(t.link)  # type: ignore[arg-type]
            t.link = link  # type: ignore[assignment]
            service = service_on(t)
            try:
                assert (await service.sign_on()).result == "approved"
                card = CardInput.parse(SILENT.pan)
                first = await service.sale(700, card, SILENT.pin, order_ref="B-7")
                assert first.result == "error" and first.reversal in ("sent", "queued")
                sent = link.sent
                again = await service.sale(700, card, SILENT.pin, order_ref="B-7")
                assert again.repeated and again.result == "error"
                assert link.sent == sent
                assert host_requests(sb, "purchase") <= 1
                assert_ledger_balanced(sb)
            finally:
                await service.close()

    asyncio.run(go())


def test_a_sale_waiting_on_the_terminal_does_not_block_the_callers_loop(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            t.link = CountingLink(t.link, block_s=0.5)  # type: ignore[arg-type, assignment]
            service = service_on(t)
            ticks = 0
            try:
                sign_on = asyncio.ensure_future(service.sign_on())
                while not sign_on.done():
                    await asyncio.sleep(0.01)
                    ticks += 1
                assert sign_on.result().result == "approved"
                # The terminal's thread was held for 0.5 s; the caller's loop kept running.
                assert ticks >= 10
            finally:
                await service.close()

    asyncio.run(go())


def test_a_second_service_on_the_same_terminal_is_refused(tmp_path: Path) -> None:
    """The service holds the terminal's lock for its life: another process (or service)
    driving the same terminal would take this one's in-flight request for a crashed one."""

    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            sb.terminal()  # provisioned in the sandbox's terminal directory
            settings = Settings(home=sb.settings.home / "terminal-10000001")
            first = TerminalService.open(settings)
            try:
                with pytest.raises(TerminalError) as busy:
                    TerminalService.open(settings)
                assert busy.value.code == Refusal.BUSY
            finally:
                await first.close()
            await TerminalService.open(settings).close()  # free again once closed

    asyncio.run(go())
