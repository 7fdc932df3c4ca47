"""A fault-injecting TCP proxy between a terminal and the host (plain TCP, no TLS).

It understands only the link framing (2-byte big-endian length + body), so it can act per
message: forward it, drop it, drop or delay its answer, send it twice, or close the
connection around it. Which fault applies to each request is decided by ``policy`` — a
callable the test sets, usually driven by a seeded ``random.Random`` so a run replays.

Every wait is bounded; ``close()`` ends every connection task.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from smartpos.protocol.framing import read_body

FAULTS = (
    "none",
    "drop_request",  # read the request, never forward it; keep the link open (terminal times out)
    "drop_response",  # forward, swallow the answer
    "delay_response",  # hold the answer past the terminal's timeout, then deliver it late
    "duplicate_request",  # forward twice, return one answer, swallow the other
    "close_before",  # close the terminal's connection without forwarding
    "close_after",  # forward, wait for the host to answer, close before answering
    "host_crash",  # forward; the host "dies" right after committing (see the test's hook)
)

UPSTREAM_TIMEOUT_S = 2.0
IDLE_TIMEOUT_S = 30.0


def _frame(body: bytes) -> bytes:
    return struct.pack(">H", len(body)) + body


@dataclass
class FaultProxy:
    upstream_port: int
    # Late answers are held this long (longer than the terminal's response timeout).
    delay_s: float = 0.5
    policy: Callable[[bytes], str] = lambda body: "none"
    # Called (in the event loop) right before a "host_crash" request is forwarded.
    on_host_crash: Callable[[], None] | None = None
    log: list[str] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._session(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _session(
        self, t_reader: asyncio.StreamReader, t_writer: asyncio.StreamWriter
    ) -> None:
        up: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                try:
                    body = await asyncio.wait_for(read_body(t_reader), IDLE_TIMEOUT_S)
                except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
                    return
                fault = self.policy(body)
                self.log.append(fault)
                if fault == "close_before":
                    return
                if fault == "drop_request":
                    continue
                if up is None or up[1].is_closing():
                    up = await asyncio.wait_for(
                        asyncio.open_connection("127.0.0.1", self.upstream_port),
                        UPSTREAM_TIMEOUT_S,
                    )
                u_reader, u_writer = up
                if fault == "host_crash" and self.on_host_crash is not None:
                    self.on_host_crash()
                u_writer.write(_frame(body))
                if fault == "duplicate_request":
                    u_writer.write(_frame(body))
                await u_writer.drain()
                answer = await self._answer(u_reader)
                if fault == "duplicate_request":
                    second = await self._answer(u_reader)
                    answer = answer if answer is not None else second
                if answer is None:  # the host closed or did not answer in time
                    with contextlib.suppress(Exception):
                        u_writer.close()
                    up = None
                    if fault in ("host_crash", "none", "duplicate_request"):
                        return  # like the host: the connection dies
                    continue
                if fault in ("drop_response", "host_crash"):
                    continue
                if fault == "close_after":
                    return
                if fault == "delay_response":
                    await asyncio.sleep(self.delay_s)
                t_writer.write(_frame(answer))
                await t_writer.drain()
        except (ConnectionError, OSError, TimeoutError):
            return
        finally:
            for w in (t_writer, up[1] if up else None):
                if w is not None:
                    w.close()
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(w.wait_closed(), 1)

    @staticmethod
    async def _answer(reader: asyncio.StreamReader) -> bytes | None:
        try:
            return await asyncio.wait_for(read_body(reader), UPSTREAM_TIMEOUT_S)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            return None
