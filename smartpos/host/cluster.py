"""The host on several processes: front-ends for the link, one writer for the ledger.

One process runs out of CPU well before the ledger does: TLS, framing, decoding, MAC checks,
PIN-block and card parsing and answer encoding take as much time as the decisions
themselves. ``smartpos host serve --workers N`` therefore runs

* **the writer** (this process): owns the database and the only :class:`BatchWriter` —
  de-duplicate → PIN → risk → authorize → persist, one durable commit per batch, exactly as
  in a single-process host. It also opens the listening socket and supervises the
  front-ends.
* **N front-ends** (child processes, ``python -m smartpos.host.cluster``): each accepts
  terminal connections on the shared listening socket and runs the :class:`HostService`
  steps that need no database writes (decode, terminal & MAC check, card reading,
  fingerprint, answer encoding and MAC). Each checked request goes to the writer over a Unix
  socket in the host directory (mode 0600) and is answered once the writer says it is
  committed.

Guarantees are the single-process ones, because every decision is still made by one writer
in one transaction order: a retried request gets the original answer, a reversal before its
original leaves a tombstone, nothing is answered before its commit. The front-ends hold no
money state; the only thing they cache is terminal keys, re-read from the database when a
terminal signed on through another front-end (see ``HostService._mac_ok``).

Link limits (docs/architecture.md, "Link limits") hold for the host as a whole: each
front-end enforces 1/N of the counts (``LinkLimits.share``), handed to it in its
environment with the settings.

Writer link: 4-byte big-endian length + a ``marshal``-encoded dict (plain dicts, lists and
strings only; ~4× cheaper than JSON, and the peers are this program's own processes on a
socket only its user can open). Request
``{"i": id, "t": tid, "k": kind, "f": fields, "fp": fingerprint, "c": [pan, expiry, token,
error]}``; answer ``{"i": id, "r": fields, "c": code, "s": silent, "n": [tpk, tak] | null}``
or ``{"i": id, "x": reason}`` when the writer could not commit the batch. Clear PANs cross
this local socket in memory only, as they cross the TLS link; nothing here is stored or
logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import marshal
import os
import signal
import socket
import struct
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from smartpos.config import Settings
from smartpos.host.context import CardRead, Context, TerminalKeys
from smartpos.host.links import LinkLimits
from smartpos.host.pipeline import (
    BatchWriter,
    HostStats,
    load_terminal,
    load_terminals,
)
from smartpos.logs import setup_logging
from smartpos.protocol.messages import TxnType

log = logging.getLogger("smartpos.host")

_LEN = struct.Struct(">I")
MAX_LINK_FRAME = 1 << 20
SOCKET_NAME = "writer.sock"
SETTINGS_ENV = "SMARTPOS_CLUSTER_SETTINGS"
LIMITS_ENV = "SMARTPOS_CLUSTER_LINK_LIMITS"  # one front-end's share of the link limits
RESPAWN_LIMIT = 20
"""Front-end restarts allowed over the life of the writer before it gives up."""


def _frame(obj: Any) -> bytes:
    data = marshal.dumps(obj)
    return _LEN.pack(len(data)) + data


async def _read_frame(reader: asyncio.StreamReader) -> Any:
    (size,) = _LEN.unpack(await reader.readexactly(_LEN.size))
    if size > MAX_LINK_FRAME:
        raise ValueError(f"writer link frame of {size} bytes")
    return marshal.loads(await reader.readexactly(size))  # noqa: S302 - see module doc


# -- front-end side --------------------------------------------------------------------------


class RemoteWriter:
    """A front-end's link to the writer process (the :class:`Writer` of its HostService)."""

    def __init__(self, path: Path, on_lost: Callable[[], None] | None = None) -> None:
        self.path = path
        self.on_lost = on_lost
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, tuple[Context, asyncio.Future[None]]] = {}
        self._next = 0
        self._task: asyncio.Task[None] | None = None
        self.lost = False

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_unix_connection(str(self.path))
        self._task = asyncio.get_running_loop().create_task(self._replies())

    def start(self) -> None:  # connected by connect()
        pass

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()

    async def decide(self, ctx: Context) -> None:
        if self.lost or self._writer is None:
            raise ConnectionError("writer process is gone")
        self._next += 1
        rid = self._next
        card = ctx.card_read
        payload = {
            "i": rid,
            "t": ctx.terminal.tid,
            "k": ctx.kind.value,
            "f": ctx.fields,
            "fp": ctx.fingerprint,
            "c": (
                None
                if card is None
                else [card.pan, card.expiry, card.token, card.error, card.chip_card]
            ),
        }
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[rid] = (ctx, fut)
        self._writer.write(_frame(payload))
        await fut

    async def _replies(self) -> None:
        assert self._reader is not None
        try:
            while True:
                msg = await _read_frame(self._reader)
                pending = self._pending.pop(msg["i"], None)
                if pending is None:
                    log.error("writer answered an unknown request id %r", msg["i"])
                    continue
                ctx, fut = pending
                if "x" in msg:
                    fut.set_exception(RuntimeError(f"writer: {msg['x']}"))
                    continue
                ctx.response = msg["r"]
                ctx.response_code = msg["c"]
                ctx.silent = msg["s"]
                keys = msg["n"]
                ctx.new_keys = (
                    None if keys is None else (bytes.fromhex(keys[0]), bytes.fromhex(keys[1]))
                )
                if not fut.done():
                    fut.set_result(None)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            log.error("link to the writer process lost: %s", exc)
        finally:
            self.lost = True
            for _, fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("writer process is gone"))
            self._pending.clear()
            if self.on_lost is not None:
                self.on_lost()


async def _frontend_main(fd: int, sock_path: str, tls: bool, profile: str) -> None:
    from smartpos import bootstrap

    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    rt = bootstrap.host_runtime(settings)
    stop = asyncio.Event()
    remote = RemoteWriter(Path(sock_path), on_lost=stop.set)
    service = bootstrap.host_service(rt, profile, writer=remote)
    limits = LinkLimits(**json.loads(os.environ[LIMITS_ENV]))
    server = bootstrap.host_server(settings, service, tls=tls, limits=limits)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await remote.connect()
    listener = socket.socket(fileno=fd)
    await server.start_on(listener)
    await stop.wait()
    await server.drain()  # answer what was taken (the writer is still there on SIGTERM)
    rt.engine.dispose()
    if remote.lost:
        sys.exit(3)


# -- writer side -----------------------------------------------------------------------------


class WriterHub:
    """The writer process's side of the links: requests in, answers out after commit."""

    def __init__(self, batch_writer: BatchWriter, expected_links: int = 1) -> None:
        self.batch_writer = batch_writer
        with batch_writer.engine.connect() as conn:
            self.terminals = load_terminals(conn)
        self.links = 0
        self.expected_links = expected_links
        self.linked = asyncio.Event()

    async def serve_link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.links += 1
        if self.links >= self.expected_links:
            self.linked.set()
        try:
            while True:
                try:
                    msg = await _read_frame(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                ctx = self._context(msg)
                if ctx is None:
                    writer.write(_frame({"i": msg["i"], "x": "unknown terminal"}))
                    continue
                await self.batch_writer.submit(ctx, self._answer(msg["i"], writer))
        except Exception:
            log.exception("front-end link failed; closed")
        finally:
            self.links -= 1
            writer.close()

    def _context(self, msg: dict[str, Any]) -> Context | None:
        tid = msg["t"]
        terminal = self.terminals.get(tid) or self._reload_terminal(tid)
        if terminal is None:
            return None
        card = msg["c"]
        return Context(
            fields=msg["f"],
            kind=TxnType(msg["k"]),
            message=b"",
            terminal=terminal,
            fingerprint=msg["fp"],
            card_read=None if card is None else CardRead(*card),
        )

    def _reload_terminal(self, tid: str) -> TerminalKeys | None:
        keys = load_terminal(self.batch_writer.engine, tid)
        if keys is not None:
            self.terminals[tid] = keys
        return keys

    def _answer(
        self, rid: int, writer: asyncio.StreamWriter
    ) -> Callable[[Context, BaseException | None], None]:
        def done(ctx: Context, exc: BaseException | None) -> None:
            if exc is not None:
                reply: dict[str, Any] = {"i": rid, "x": type(exc).__name__}
            else:
                keys: list[str] | None = None
                if ctx.new_keys is not None:
                    tid = ctx.terminal.tid
                    self.terminals[tid] = self.terminals[tid].with_working_keys(ctx.new_keys)
                    keys = [k.hex() for k in ctx.new_keys]
                reply = {
                    "i": rid,
                    "r": ctx.response,
                    "c": ctx.response_code,
                    "s": ctx.silent,
                    "n": keys,
                }
            if not writer.is_closing():
                writer.write(_frame(reply))

        return done


class Cluster:
    """The writer process: database, batch writer, listening socket, front-end children."""

    def __init__(
        self,
        settings: Settings,
        *,
        workers: int,
        tls: bool,
        profile: str,
        durable: bool = True,
        limits: LinkLimits | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be ≥ 1")
        self.settings = settings
        self.workers = workers
        # The host's link limits, whatever the number of front-ends: each takes its share.
        self.frontend_limits = (limits or LinkLimits()).share(workers)
        self.tls = tls
        self.profile = profile
        self.durable = durable
        self.stats = HostStats()
        self.port = 0
        self._children: list[asyncio.subprocess.Process] = []
        self._listener: socket.socket | None = None
        self._unix: asyncio.Server | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._respawns = 0
        self.failed = asyncio.Event()

    @property
    def socket_path(self) -> Path:
        return self.settings.host_dir / SOCKET_NAME

    async def start(self, host: str, port: int) -> None:
        from smartpos.host.sandbox import open_host

        self.rt = open_host(self.settings, durable=self.durable)
        self.batch_writer = BatchWriter(self.rt.engine, self.rt.processor(), stats=self.stats)
        self.batch_writer.start()
        self.hub = WriterHub(self.batch_writer, expected_links=self.workers)
        path = self.socket_path
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        old_umask = os.umask(0o077)
        try:
            self._unix = await asyncio.start_unix_server(self.hub.serve_link, path=str(path))
        finally:
            os.umask(old_umask)
        self._listener = socket.create_server((host, port), backlog=1024)
        self._listener.setblocking(False)
        self.port = int(self._listener.getsockname()[1])
        for _ in range(self.workers):
            self._children.append(await self._spawn())
        await self._wait_linked()
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def _wait_linked(self, timeout: float = 60.0) -> None:
        """Wait until every front-end has linked to the writer; fail fast if one exits."""
        linked = asyncio.ensure_future(self.hub.linked.wait())
        exits = [asyncio.ensure_future(c.wait()) for c in self._children]
        try:
            done, _ = await asyncio.wait(
                [linked, *exits], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for f in (linked, *exits):
                f.cancel()
        if linked not in done:
            await self.close()
            codes = [c.returncode for c in self._children]
            raise RuntimeError(f"front-end processes did not start (exit codes {codes})")

    async def _spawn(self) -> asyncio.subprocess.Process:
        assert self._listener is not None
        fd = self._listener.fileno()
        env = {
            **os.environ,
            SETTINGS_ENV: self.settings.model_dump_json(),
            LIMITS_ENV: json.dumps(dataclasses.asdict(self.frontend_limits)),
        }
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "smartpos.host.cluster",
            str(fd),
            str(self.socket_path),
            "tls" if self.tls else "plain",
            self.profile,
            pass_fds=(fd,),
            env=env,
        )

    async def _supervise(self) -> None:
        """Restart a front-end that died (its terminals reconnect and reverse what was in
        flight, as after any lost link); give up after RESPAWN_LIMIT restarts."""
        while not self._closing:
            waits = {asyncio.ensure_future(c.wait()): c for c in self._children}
            finished, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                if w not in finished:
                    w.cancel()
            if self._closing:
                return
            for w in finished:
                child = waits[w]
                self._children.remove(child)
                log.error("front-end process %d exited with %s", child.pid, child.returncode)
                if self._respawns >= RESPAWN_LIMIT:
                    log.error("front-ends keep dying; host stops")
                    self.failed.set()
                    return
                self._respawns += 1
                self._children.append(await self._spawn())

    @property
    def frontend_pids(self) -> list[int]:
        return [c.pid for c in self._children]

    async def close(self) -> None:
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        for child in self._children:
            with contextlib.suppress(ProcessLookupError):
                child.terminate()
        for child in self._children:
            try:
                await asyncio.wait_for(child.wait(), 10)
            except TimeoutError:
                child.kill()
                await child.wait()
        if self._unix is not None:
            self._unix.close()
        # Answers still owed to front-ends that are gone cannot be sent; what was committed
        # stays committed (their terminals reverse or resend, as after any lost link).
        await self.batch_writer.stop()
        if self._listener is not None:
            self._listener.close()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        self.rt.engine.dispose()


async def serve_cluster(
    settings: Settings,
    port: int,
    tls: bool,
    profile: str,
    workers: int,
    ready: Callable[[int], Awaitable[None]] | None = None,
    *,
    durable: bool = True,
    stop: asyncio.Event | None = None,
) -> HostStats:
    """Run the writer and ``workers`` front-ends until cancelled (or ``stop`` is set)."""
    cluster = Cluster(settings, workers=workers, tls=tls, profile=profile, durable=durable)
    await cluster.start(settings.host_bind, port)
    if stop is None:  # SIGTERM: front-ends drain (this writer answers them), then stop
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        if ready is not None:
            await ready(cluster.port)
        waits = [asyncio.ensure_future(cluster.failed.wait())]
        if stop is not None:
            waits.append(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        if cluster.failed.is_set():
            raise RuntimeError("front-end processes keep failing")
    finally:
        await cluster.close()
    return cluster.stats


def _main(argv: list[str]) -> None:
    fd, sock_path, tls, profile = argv
    setup_logging(logging.WARNING)
    try:
        import uvloop

        run: Callable[[Any], Any] = uvloop.run
    except ImportError:  # pragma: no cover
        run = asyncio.run
    run(_frontend_main(int(fd), sock_path, tls == "tls", profile))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        _main(sys.argv[1:])
