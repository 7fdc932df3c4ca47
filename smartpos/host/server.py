"""The host's TCP(+TLS) server: many terminal connections, one request at a time each.

The server accepts plain TCP itself and only then runs the TLS handshake, so a link counts
against the limits (:mod:`smartpos.host.links`) from the moment it is accepted — a peer that
connects and never finishes its handshake holds a slot for at most ``handshake_timeout_s``,
and can be dropped for a newcomer before that. Every wait has a limit: the handshake, the
next frame (short on a link that has not shown a valid MAC yet, long on a terminal's), and
the peer taking its answer (``write_timeout_s``).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import logging
import resource
import socket
import ssl
import termios

from smartpos.host.links import Link, LinkLimits, LinkTable, Refused, source_of
from smartpos.host.memory import release_free_memory
from smartpos.host.pipeline import HostService, Unanswerable
from smartpos.host.rejects import RejectLog
from smartpos.protocol.framing import FramingError

log = logging.getLogger("smartpos.host")

DRAIN_TIMEOUT_S = 10.0
READ_LIMIT_BYTES = 8192  # a frame is at most 4098 bytes on the wire
# Kernel buffers per link (the kernel doubles them). One request and one answer of at most
# 4 KB are in flight on a link; left alone, Linux grows a socket's buffers up to 4-6 MB,
# which a peer that sends without reading would make the host hold for each link.
SOCKET_BUFFER_BYTES = 16384
WRITE_BUFFER_BYTES = 16384  # the transport's high water mark: drain() waits above it
# Encrypted bytes a TLS link may have waiting before the host stops reading it (the loop's
# default, 256 KB, made a peer pipelining requests cost the host ~0.6 MB of memory).
TLS_READ_BUFFER_BYTES = 16384
# A link whose earlier answers still wait unacknowledged in the kernel, more than this, is a
# peer that does not read: its next request waits until they are taken (write_timeout_s at
# most). A terminal sends its next request only after reading the answer, so for it the
# queue is empty by then. Without this, the host kept answering a peer that pipelines
# requests and never reads, one queued write per answer in the event loop (~0.7 KB each, up
# to ~0.9 MB a link on uvloop).
UNREAD_ANSWERS_MAX_BYTES = 16384
UNREAD_CHECK_EVERY = 8  # requests; between checks at most that many answers can queue
UNREAD_POLL_S = 0.01
ACCEPT_BACKLOG = 1024
ACCEPT_RETRY_S = 0.1  # after a failed accept (out of file descriptors): let links close
FLUSH_INTERVAL_S = 1.0  # summaries of held-back reject lines
# After a burst of closed links (a flood), give their freed memory back (smartpos/host/memory.py):
# at most every 2 s, once 200 links closed since the last time (a trim takes ~3 ms).
MEMORY_RELEASE_INTERVAL_S = 2.0
MEMORY_RELEASE_AFTER_LINKS = 200


class HostServer:
    def __init__(
        self,
        service: HostService,
        *,
        ssl_context: ssl.SSLContext | None,
        limits: LinkLimits | None = None,
    ) -> None:
        self.service = service
        self.ssl_context = ssl_context
        self.limits = limits or LinkLimits()
        self.links = LinkTable(self.limits)
        self._listener: socket.socket | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # accept loop, flusher, links
        self._accepting: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self._in_flight = 0  # requests read and not yet answered
        self._links_closed = 0  # since memory was last released

    @property
    def rejects(self) -> RejectLog:
        return self.service.rejects

    @property
    def open_links(self) -> int:
        """Connections not yet fully closed: in the link table, or closing."""
        return len(self._tasks) - (self._accepting is not None) - 1  # minus housekeeping

    @property
    def port(self) -> int:
        assert self._listener is not None
        return int(self._listener.getsockname()[1])

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, _, _, _, address = infos[0]
        sock = socket.create_server(address[:2], family=family, backlog=ACCEPT_BACKLOG)
        await self.start_on(sock)

    async def start_on(self, sock: socket.socket) -> None:
        """Serve on an already listening socket (a front-end process of the cluster)."""
        _raise_file_limit(self.limits.max_links)
        sock.setblocking(False)
        self._listener = sock
        self.service.start()
        self._accepting = self._spawn(self._accept(sock))
        self._spawn(self._housekeeping())

    async def serve_forever(self) -> None:
        await self._closed.wait()

    def close_links(self) -> None:
        """Close every link at once, requests in flight or not (fault tests: "the host
        died")."""
        for link in list(self.links):
            link.stop()

    async def drain(self, timeout: float = DRAIN_TIMEOUT_S) -> None:
        """Stop gracefully: accept no more connections, let every request already taken
        get its answer (up to ``timeout``), then close. Nothing is cut mid-request, so a
        restart costs the terminals no reversals."""
        self._stop_accepting()
        deadline = asyncio.get_running_loop().time() + timeout
        while self._in_flight and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        await self.close()

    async def close(self) -> None:
        self._stop_accepting()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.service.stop()
        self.rejects.flush(force=True)
        self._closed.set()

    def _stop_accepting(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
            self._accepting = None
        if self._listener is not None:
            self._listener.close()

    def _spawn(self, coro: object) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _housekeeping(self) -> None:
        """Summaries of held-back reject lines every second; freed memory back to the
        system after a burst of closed links."""
        loop = asyncio.get_running_loop()
        released_at = loop.time()
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            self.rejects.flush()
            now = loop.time()
            if (
                self._links_closed >= MEMORY_RELEASE_AFTER_LINKS
                and now - released_at >= MEMORY_RELEASE_INTERVAL_S
            ):
                self._links_closed = 0
                released_at = now
                release_free_memory()

    # -- admission -------------------------------------------------------------------------

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, peer = await loop.sock_accept(listener)
            except OSError as exc:  # EMFILE/ENFILE: wait for links to close, do not spin
                self.rejects.reject("accept", "-", str(exc))
                await asyncio.sleep(ACCEPT_RETRY_S)
                continue
            self._admit(sock, peer)

    def _admit(self, sock: socket.socket, peer: object) -> None:
        source = source_of(peer)
        name = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        link = Link(source, name)
        try:
            evicted = self.links.admit(link)
        except Refused as exc:
            self.rejects.reject("link limit", name, f"refused: {exc}")
            sock.close()
            return
        for old in evicted:
            self.rejects.reject(
                "link limit", old.name, f"oldest unauthenticated link dropped for {name}"
            )
            old.stop()
        link.on_trust = self._trusted
        # The socket is the transport's once _open hands it over; until then (a link
        # dropped before its task ran) it is closed here.
        unopened = [sock]
        task = self._spawn(self._serve(link, unopened))

        def closed(_: object) -> None:
            for left in unopened:
                left.close()

        def stop() -> None:
            task.cancel()

        task.add_done_callback(closed)
        link.stop = stop

    def _trusted(self, link: Link, tid: str) -> None:
        for old in self.links.trust(link, tid):
            self.rejects.reject("link limit", old.name, f"oldest idle link of {tid} dropped")
            old.stop()

    # -- one link --------------------------------------------------------------------------

    async def _serve(self, link: Link, unopened: list[socket.socket]) -> None:
        writer: asyncio.StreamWriter | None = None
        polite = False
        try:
            streams = await self._open(link, unopened.pop())
            if streams is not None:
                reader, writer = streams
                polite = await self._requests(link, reader, writer)
        except (ConnectionError, ssl.SSLError):
            pass
        except Exception:
            self.rejects.reject("internal error", link.name, "link failed; closed", traceback=True)
        finally:
            self.links.remove(link)
            self._links_closed += 1
            if writer is not None:
                # A link the host drops (timeout, limit, hostile frame, eviction) is aborted:
                # closing would wait to flush answers, and a TLS close for the peer's
                # close_notify, to a peer that may never read — holding its buffers.
                if polite:
                    writer.close()
                else:
                    writer.transport.abort()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    async def _open(
        self, link: Link, sock: socket.socket
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """The link's streams once its TLS handshake is done (None: failed or too slow).
        The socket belongs to the transport from here on, closed or not."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=READ_LIMIT_BYTES)
        # Our own protocol object: with TLS, uvloop returns its SSL protocol instead.
        protocol = asyncio.StreamReaderProtocol(reader)
        timeout_s = self.limits.handshake_timeout_s
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER_BYTES)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER_BYTES)
            async with asyncio.timeout(timeout_s):
                transport, _ = await loop.connect_accepted_socket(
                    lambda: protocol,
                    sock,
                    ssl=self.ssl_context,
                    ssl_handshake_timeout=timeout_s if self.ssl_context else None,
                    ssl_shutdown_timeout=(
                        self.limits.tls_shutdown_timeout_s if self.ssl_context else None
                    ),
                )
        except (TimeoutError, OSError) as exc:  # ssl.SSLError is an OSError
            slow = isinstance(exc, TimeoutError)
            detail = f"no TLS handshake in {timeout_s:g} s" if slow else str(exc)
            self.rejects.reject("handshake", link.name, detail)
            return None
        transport.set_write_buffer_limits(high=WRITE_BUFFER_BYTES)
        if self.ssl_context is not None:
            transport.set_read_buffer_limits(high=TLS_READ_BUFFER_BYTES)  # type: ignore[attr-defined]
        return reader, asyncio.StreamWriter(transport, protocol, reader, loop)

    async def _requests(
        self, link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Serve requests until the link ends. True if it ended politely (the peer closed,
        or a terminal's link idled out), False if the host drops it."""
        limits = self.limits
        outq, requests = _SendQueue(writer), 0
        read_body = self.service.profile.framing.read_body
        while True:
            idle_s = limits.idle_timeout_s if link.trusted else limits.untrusted_idle_timeout_s
            try:
                # asyncio.timeout, not wait_for: wait_for wraps every read in a new task.
                async with asyncio.timeout(idle_s):
                    body = await read_body(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return True
            except TimeoutError:
                if link.trusted:
                    return True
                self.rejects.reject("idle", link.name, f"no valid request in {idle_s:g} s")
                return False
            except FramingError as exc:
                self.rejects.reject("framing", link.name, str(exc))
                return False
            requests += 1
            if (
                requests % UNREAD_CHECK_EVERY == 0
                and outq.unacknowledged() > UNREAD_ANSWERS_MAX_BYTES
                and not await self._peer_reads(outq)
            ):
                self.rejects.reject(
                    "write", link.name, f"answers not taken in {limits.write_timeout_s:g} s"
                )
                return False
            self._in_flight += 1
            link.busy = True
            try:
                response = await self.service.handle(body, link)
                if response is not None:
                    writer.write(response)
                    # drain() waits only while the transport's buffer is above its high
                    # water mark, i.e. for a peer that stops reading: without a limit it
                    # would hold the link, and its buffers, forever. With nothing left in
                    # the buffer there is nothing to wait for (the usual case).
                    if writer.transport.get_write_buffer_size():
                        async with asyncio.timeout(limits.write_timeout_s):
                            await writer.drain()
            except Unanswerable as exc:
                self.rejects.reject(exc.reason, link.name, str(exc))
                return False
            except FramingError as exc:
                self.rejects.reject("framing", link.name, str(exc))
                return False
            except TimeoutError:
                self.rejects.reject(
                    "write", link.name, f"answer not taken in {limits.write_timeout_s:g} s"
                )
                return False
            finally:
                self._in_flight -= 1
                link.busy = False

    async def _peer_reads(self, outq: _SendQueue) -> bool:
        """Wait until the link's unacknowledged answers are within UNREAD_ANSWERS_MAX_BYTES
        (False: not within write_timeout_s)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.write_timeout_s
        while loop.time() < deadline:
            await asyncio.sleep(UNREAD_POLL_S)
            if outq.unacknowledged() <= UNREAD_ANSWERS_MAX_BYTES:
                return True
        return False


class _SendQueue:
    """A link's socket send queue, as the kernel has it."""

    __slots__ = ("_fd", "_out")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        self._fd = -1 if sock is None else int(sock.fileno())
        self._out = array.array("i", [0])

    def unacknowledged(self) -> int:
        """Bytes written that the peer has not acknowledged (Linux SIOCOUTQ); 0 where that
        cannot be known."""
        if self._fd < 0:
            return 0
        try:
            fcntl.ioctl(self._fd, termios.TIOCOUTQ, self._out, True)
        except OSError:
            return 0
        return self._out[0]


def _raise_file_limit(links: int) -> None:
    """Let the process hold ``links`` sockets plus its own files, if the hard limit allows
    (the usual soft limit, 1024, is below the default link limit)."""
    wanted = links + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < wanted:
            log.warning("file descriptor limit %d is below %d links + 256", target, links)
