"""The terminal service: what the command line and the cashier app call to take payments.

It is long-lived. It opens the terminal's database once (migrations run once, at open),
holds the terminal's process lock for its whole life (no other process can drive the same
terminal), and keeps one :class:`~smartpos.terminal.engine.Terminal` per terminal ID with
its link. Each terminal runs on **its own thread with its own event loop**: the engine's
database commits (the journal row and armed reversal are made durable before anything is
sent) block that thread only, never the caller's event loop — a web server keeps serving
while a sale waits for its disk sync and for the bank. Calls to one terminal are serialized
(one request on its link at a time, as the host requires).

Every money-moving call takes a caller-chosen **order reference** (the idempotency key). The
same reference again returns the stored result and sends nothing; two concurrent calls with
one reference produce one request (the second waits for the first and gets its result).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import TypeVar

from smartpos.cards.reading import CardInput
from smartpos.config import Settings
from smartpos.devices.ports import PinBlock, PinPad
from smartpos.terminal.engine import Terminal
from smartpos.terminal.results import SettleReport, TxnResult

__all__ = ["TerminalService"]

T = TypeVar("T")


class _Worker:
    """One terminal on its own thread and event loop; coroutines submitted run one at a
    time, in the order they were submitted."""

    def __init__(self, terminal_factory: Callable[[], Terminal], name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready: Future[Terminal] = Future()
        self._thread = threading.Thread(target=self._run, args=(terminal_factory,), name=name)
        self._thread.daemon = True
        self._thread.start()
        self.terminal = self._ready.result()  # the factory's error, if any, raises here
        self._lock: asyncio.Lock | None = None

    def _run(self, factory: Callable[[], Terminal]) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._ready.set_result(factory())
        except BaseException as exc:
            self._ready.set_exception(exc)
            self._loop.close()
            return
        self._loop.run_forever()
        self._loop.close()

    async def _serial(self, fn: Callable[[Terminal], Awaitable[T]]) -> T:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            return await fn(self.terminal)

    async def call(self, fn: Callable[[Terminal], Awaitable[T]]) -> T:
        fut = asyncio.run_coroutine_threadsafe(self._serial(fn), self._loop)
        return await asyncio.wrap_future(fut)

    async def stop(self) -> None:
        """Close the terminal (its link says goodbye to a host that may run on the
        caller's loop: so the caller's loop is awaited, never blocked), then the thread."""
        if not self._thread.is_alive():
            return
        closing = asyncio.run_coroutine_threadsafe(self.terminal.close(), self._loop)
        try:
            await asyncio.wait_for(asyncio.wrap_future(closing), 30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            await asyncio.to_thread(self._thread.join, 30)


class TerminalService:
    """Payments on the provisioned terminal(s). Open with :meth:`open` (or
    ``smartpos.bootstrap.terminal_service``), close with ``await`` :meth:`close`."""

    def __init__(self, terminals: dict[str, _Worker]) -> None:
        self._workers = terminals

    @classmethod
    def open(
        cls, settings: Settings, *, factory: Callable[[], Terminal] | None = None
    ) -> TerminalService:
        """Open the terminal of ``settings`` (its database, lock and link). ``factory``
        builds the terminal instead (tests and tools that wire their own link); it runs on
        the terminal's thread."""
        if factory is None:
            from smartpos.terminal.setup import open_terminal

            def factory() -> Terminal:
                return open_terminal(settings)

        worker = _Worker(factory, "terminal")
        return cls({worker.terminal.tid: worker})

    @property
    def terminal_ids(self) -> list[str]:
        return sorted(self._workers)

    def _worker(self, tid: str | None) -> _Worker:
        if tid is None:
            if len(self._workers) != 1:
                raise ValueError(f"say which terminal: {self.terminal_ids}")
            return next(iter(self._workers.values()))
        return self._workers[tid]

    async def call(self, fn: Callable[[Terminal], Awaitable[T]], *, tid: str | None = None) -> T:
        """Run ``fn`` on the terminal's own thread, after the calls before it."""
        return await self._worker(tid).call(fn)

    # -- payments ----------------------------------------------------------------------------

    async def sale(
        self,
        amount_minor: int,
        card: CardInput,
        pin: str | PinBlock | None = None,
        *,
        order_ref: str,
        tid: str | None = None,
    ) -> TxnResult:
        return await self.call(
            lambda t: t.sale(amount_minor, card, pin, order_ref=order_ref), tid=tid
        )

    async def void(
        self,
        *,
        order_ref: str,
        stan: str | None = None,
        invoice_no: str | None = None,
        tid: str | None = None,
    ) -> TxnResult:
        return await self.call(
            lambda t: t.void(stan=stan, invoice_no=invoice_no, order_ref=order_ref), tid=tid
        )

    async def refund(
        self,
        amount_minor: int,
        card: CardInput,
        *,
        rrn: str,
        order_ref: str,
        tid: str | None = None,
    ) -> TxnResult:
        return await self.call(
            lambda t: t.refund(amount_minor, card, rrn=rrn, order_ref=order_ref), tid=tid
        )

    async def balance(
        self, card: CardInput, pin: str | PinBlock | None = None, *, tid: str | None = None
    ) -> TxnResult:
        return await self.call(lambda t: t.balance(card, pin), tid=tid)

    async def attach_pin_pad(self, pad: PinPad, *, tid: str | None = None) -> None:
        """Have ``pad`` make the terminal's PIN blocks (its TPK loaded now and at each
        sign-on): the caller then passes the pad's ``PinBlock``, never the PIN."""

        async def attach(t: Terminal) -> None:
            t.attach_pin_pad(pad)

        await self.call(attach, tid=tid)

    # -- terminal management -----------------------------------------------------------------

    async def sign_on(self, *, tid: str | None = None) -> TxnResult:
        return await self.call(lambda t: t.sign_on(), tid=tid)

    async def echo(self, *, tid: str | None = None) -> TxnResult:
        return await self.call(lambda t: t.echo(), tid=tid)

    async def settle(self, *, tid: str | None = None) -> SettleReport:
        return await self.call(lambda t: t.settle(), tid=tid)

    async def send_reversals(self, *, tid: str | None = None) -> int:
        """Send pending reversals now (after a crash too); returns how many still wait."""

        async def go(t: Terminal) -> int:
            t.recover()
            return await t.flush_reversals()

        return await self.call(go, tid=tid)

    async def close(self) -> None:
        """Close the links, release the terminals' locks, stop their threads."""
        workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            await worker.stop()
