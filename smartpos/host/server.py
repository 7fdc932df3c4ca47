"""The host's TCP(+TLS) server: many terminal connections, one request at a time each."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl

from smartpos.host.pipeline import HostService
from smartpos.protocol.framing import FramingError, read_body

log = logging.getLogger("smartpos.host")

# An idle terminal link is closed after this long; terminals reconnect per transaction.
IDLE_TIMEOUT_S = 300.0
MAX_CONNECTIONS = 2048
DRAIN_TIMEOUT_S = 10.0


class HostServer:
    def __init__(self, service: HostService, *, ssl_context: ssl.SSLContext | None) -> None:
        self.service = service
        self.ssl_context = ssl_context
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._in_flight = 0  # requests read and not yet answered

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.service.start()
        self._server = await asyncio.start_server(
            self._client, host, port, ssl=self.ssl_context, backlog=1024, limit=8192
        )

    async def start_on(self, sock: socket.socket) -> None:
        """Serve on an already listening socket (a front-end process of the cluster)."""
        self.service.start()
        self._server = await asyncio.start_server(
            self._client, sock=sock, ssl=self.ssl_context, limit=8192
        )

    async def serve_forever(self) -> None:
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def drain(self, timeout: float = DRAIN_TIMEOUT_S) -> None:
        """Stop gracefully: accept no more connections, let every request already taken
        get its answer (up to ``timeout``), then close. Nothing is cut mid-request, so a
        restart costs the terminals no reversals."""
        if self._server is not None:
            self._server.close()
        deadline = asyncio.get_running_loop().time() + timeout
        while self._in_flight and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._clients):
            writer.close()
        await self.service.stop()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._clients) >= MAX_CONNECTIONS:
            writer.close()
            return
        self._clients.add(writer)
        peer = writer.get_extra_info("peername")
        try:
            while True:
                try:
                    # asyncio.timeout, not wait_for: wait_for wraps every read in a new task.
                    async with asyncio.timeout(IDLE_TIMEOUT_S):
                        body = await read_body(reader)
                except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
                    return
                self._in_flight += 1
                try:
                    response = await self.service.handle(body)
                    if response is not None:
                        writer.write(response)
                        await writer.drain()
                except FramingError as exc:
                    log.warning("closing link from %s: %s", peer, exc)
                    return
                finally:
                    self._in_flight -= 1
        except (ConnectionError, ssl.SSLError):
            return
        except Exception:
            log.exception("link from %s failed; closed", peer)
        finally:
            self._clients.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
