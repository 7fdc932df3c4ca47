"""Connection floods against the host, from many loopback addresses (as from other hosts):

* ``raw``: TCP connections that never send a byte (stuck before the TLS handshake);
* ``handshake``: a ClientHello cut short, then nothing (stuck inside the handshake);
* ``idle-tls``: a finished TLS handshake, then no request;
* ``slow-reader``: a TLS link that sends requests the host answers, and never reads.

Each flood keeps up to ``links`` connections open, opening new ones (at most ``rate`` a
second) as the host closes them, until stopped. TLS is driven by hand over a plain
non-blocking socket (``ssl.MemoryBIO``), so "does not read" really leaves the host's answers
in the kernel: an asyncio TLS transport would keep reading into its own buffers.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from smartpos.protocol.tls import pinned_client_context

KINDS = ("raw", "handshake", "idle-tls", "slow-reader")
CONNECT_TIMEOUT_S = 5.0
SLOW_READER_BYTES = 600_000  # requests sent by a slow reader: far more answers than buffers
# A slow reader reads nothing for this long, then reads: a host that dropped it hands over
# what it had sent, then EOF. The host's write timeout (10 s) counts from when the reader's
# answers pile up, which takes the host a few seconds of reading its requests first — longer
# on two cores saturated by the fuzz itself (a 15 s hold saw 138 of 720 readers still
# served in a 900 s run): 30 s, three times the write timeout.
SLOW_READER_HOLD_S = 30.0
DROP_SEEN_WITHIN_S = 2.0


@dataclass
class FloodStats:
    kind: str
    opened: int = 0
    closed_by_host: int = 0
    connect_failed: int = 0
    peak_open: int = 0
    open_now: int = 0
    still_served: int = 0  # slow readers the host had not dropped after SLOW_READER_HOLD_S


class Flood:
    """One kind of flood. ``await run(stop)`` returns when ``stop`` is set (all its
    connections closed)."""

    def __init__(
        self,
        kind: str,
        port: int,
        sources: list[str],
        links: int,
        rate: float,
        request: Callable[[], bytes] | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"flood kind must be one of {KINDS}")
        self.kind, self.port, self.sources, self.links = kind, port, sources, links
        self.interval_s = 1.0 / rate
        self.request = request  # a slow reader's requests (frames the host answers)
        self.stats = FloodStats(kind)
        self._next_at = 0.0
        self._requests: bytes | None = None
        self._senders: dict[socket.socket, asyncio.Task[None]] = {}

    async def run(self, stop: asyncio.Event) -> FloodStats:
        slots = [asyncio.ensure_future(self._slot(i, stop)) for i in range(self.links)]
        await stop.wait()
        for slot in slots:
            slot.cancel()
        await asyncio.gather(*slots, return_exceptions=True)
        return self.stats

    async def _paced(self) -> None:
        """Wait for this flood's next connect (``rate`` a second in all)."""
        now = time.monotonic()
        self._next_at = max(self._next_at + self.interval_s, now)
        await asyncio.sleep(self._next_at - now)

    async def _slot(self, index: int, stop: asyncio.Event) -> None:
        source = self.sources[index % len(self.sources)]
        while not stop.is_set():
            await self._paced()
            sock = socket.socket()
            try:
                sock.setblocking(False)
                if self.kind == "slow-reader":
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.bind((source, 0))
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.port))
                    await self._start(sock)
            except (OSError, TimeoutError, ssl.SSLError):
                self.stats.connect_failed += 1
                sock.close()
                continue
            self.stats.opened += 1
            self.stats.open_now += 1
            self.stats.peak_open = max(self.stats.peak_open, self.stats.open_now)
            try:
                if self.kind == "slow-reader":
                    dropped = await _slow_reader_dropped(sock)
                    self.stats.still_served += not dropped
                else:
                    dropped = await _closed_by_host(sock)
                self.stats.closed_by_host += dropped
            finally:
                self.stats.open_now -= 1
                sender = self._senders.pop(sock, None)
                if sender is not None:  # never close a socket under a pending send
                    sender.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sender
                sock.close()

    async def _start(self, sock: socket.socket) -> None:
        """Bring a fresh connection into this flood's state (its TLS, if any, is driven by
        hand: the flood only ever reads raw bytes afterwards)."""
        loop = asyncio.get_running_loop()
        if self.kind == "raw":
            return
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = pinned_client_context().wrap_bio(incoming, outgoing)
        if self.kind == "handshake":
            with contextlib.suppress(ssl.SSLWantReadError):
                tls.do_handshake()
            hello = outgoing.read()
            await loop.sock_sendall(sock, hello[: max(1, len(hello) // 2)])
            return
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if pending := outgoing.read():
                    await loop.sock_sendall(sock, pending)
                data = await loop.sock_recv(sock, 65536)
                if not data:
                    raise ConnectionError("closed during the handshake") from None
                incoming.write(data)
        if pending := outgoing.read():
            await loop.sock_sendall(sock, pending)
        if self.kind == "slow-reader" and self.request is not None:
            if self._requests is None:  # built once: building is the fuzzer's own CPU
                frames = b"".join(self.request() for _ in range(64))
                self._requests = frames * (SLOW_READER_BYTES // len(frames) + 1)
            tls.write(self._requests)
            # Sent in the background: the host stops reading once its answers back up.
            self._senders[sock] = loop.create_task(_send_quietly(sock, outgoing.read()))


async def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):
        await asyncio.get_running_loop().sock_sendall(sock, data)


async def _closed_by_host(sock: socket.socket) -> bool:
    """Hold the connection until the host closes it (True)."""
    loop = asyncio.get_running_loop()
    try:
        while await loop.sock_recv(sock, 65536):
            pass  # TLS session tickets after the handshake: read and held
    except OSError:
        pass
    return True


async def _slow_reader_dropped(sock: socket.socket) -> bool:
    """Read nothing for SLOW_READER_HOLD_S, then read: True if the host had dropped the
    link (its last bytes, then EOF or a reset), False if answers keep coming. (While the
    reader reads nothing, the host's FIN waits behind the answers it cannot send, so the
    drop cannot be seen before.)"""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(SLOW_READER_HOLD_S)
    try:
        async with asyncio.timeout(DROP_SEEN_WITHIN_S):
            while await loop.sock_recv(sock, 65536):
                pass
    except TimeoutError:
        return False
    except OSError:
        pass
    return True
