"""The host pipeline: decode → terminal & MAC → (writer: de-duplicate → PIN → risk →
authorize → persist) → respond.

Checks that need no database run in the event loop. Everything that reads or writes the
ledger goes to one writer task, which takes the requests waiting in its queue (up to
``max_batch``) and handles them in a single database transaction: one durable commit for the
batch, after which every answer in it is sent. Nothing is answered before its commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, select

from smartpos.db.lock import ProcessLock
from smartpos.host.context import Context, TerminalKeys
from smartpos.host.processor import Processor
from smartpos.host.rejects import RejectLog
from smartpos.host.tables import terminals
from smartpos.keys.hsm import SoftHsm
from smartpos.protocol.codec import Fields, MessageError
from smartpos.protocol.framing import FrameParts, FramingError
from smartpos.protocol.messages import TxnType, classify, response_mti
from smartpos.protocol.profiles import AcquirerProfile

log = logging.getLogger("smartpos.host")

# Messages without a working-key MAC: echo carries none; a sign-on is MACed under a key
# derived from the TMK (the working keys are what it asks for).
UNMACED = (TxnType.SIGN_ON, TxnType.ECHO)
WRITER_LOCK = "host-writer"
KEY_RELOAD_INTERVAL_S = 1.0
_REQUEST_MTIS = {"0200", "0220", "0221", "0320", "0400", "0401", "0500", "0800", "0820"}


Done = Callable[[Context, BaseException | None], None]


class NoAnswer(Exception):
    """The host decided not to answer (the "no answer" test card and test amount)."""


class Unanswerable(FramingError):
    """A frame the host does not answer at all (docs/protocol.md §10.2): the link is closed.
    ``reason`` names the kind of reject for the log."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class Peer(Protocol):
    """The link a frame came on, as the server keeps it."""

    @property
    def name(self) -> str:
        """Its address, for log lines."""
        ...

    def trust(self, tid: str) -> None:
        """Called once a request on this link proved to come from registered terminal
        ``tid`` (its MAC verified; with a profile without MACs: a registered terminal and
        its merchant)."""
        ...


@dataclass
class HostStats:
    requests: int = 0
    answered: int = 0
    batches: int = 0
    decided: int = 0
    decide_seconds: float = 0.0  # the writer deciding batches (event loop)
    commit_seconds: float = 0.0  # the writer waiting for durable commits (thread)
    by_code: dict[str, int] = field(default_factory=dict)


def _keys(row: Any) -> TerminalKeys:
    return TerminalKeys(
        row.tid, row.mid, row.status, row.sealed_tmk, row.sealed_tpk, row.sealed_tak
    )


def load_terminals(conn: Connection) -> dict[str, TerminalKeys]:
    return {row.tid: _keys(row) for row in conn.execute(select(terminals))}


def load_terminal(engine: Engine, tid: str) -> TerminalKeys | None:
    """One terminal as the database has it now (provisioned or signed on since start-up)."""
    with engine.connect() as conn:
        row = conn.execute(select(terminals).where(terminals.c.tid == tid)).first()
    return None if row is None else _keys(row)


class BatchWriter:
    """The single writer: takes the requests waiting in its queue (up to ``max_batch``),
    decides them in one transaction and commits it durably, then calls each request's
    ``done`` callback — nothing is answered before its commit."""

    def __init__(
        self,
        engine: Engine,
        processor: Processor,
        *,
        max_batch: int = 256,
        after_commit: Callable[[list[Context]], None] | None = None,
        stats: HostStats | None = None,
        writer_lock: ProcessLock | None = None,
    ) -> None:
        self.engine = engine
        self.processor = processor
        self.max_batch = max_batch
        self.after_commit = after_commit
        self.stats = stats or HostStats()
        self._queue: asyncio.Queue[tuple[Context, Done]] = asyncio.Queue(maxsize=max_batch * 16)
        self._task: asyncio.Task[None] | None = None
        # Taken already by a caller that had to be sure of it before changing anything
        # (the demo provisions its terminal only once it knows no other host runs).
        self._lock: ProcessLock | None = writer_lock

    def start(self) -> None:
        """Start writing. Raises :class:`AlreadyLocked` if another process already writes
        to this database (ids, RRNs and decisions must come from one writer)."""
        if self._task is None:
            if self._lock is None:
                self._lock = ProcessLock(self.engine, WRITER_LOCK).acquire()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    async def submit(self, ctx: Context, done: Done) -> None:
        """Queue ``ctx``; ``done(ctx, None)`` runs after its batch committed, ``done(ctx,
        exc)`` if the batch could not be committed (nothing of it was stored)."""
        await self._queue.put((ctx, done))

    async def decide(self, ctx: Context) -> None:
        """Decide ``ctx`` (filling ``ctx.response``) and return once it is committed."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def done(_: Context, exc: BaseException | None) -> None:
            if fut.done():
                return
            if exc is None:
                fut.set_result(None)
            else:
                fut.set_exception(exc)

        await self.submit(ctx, done)
        await fut

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._process_batch([ctx for ctx, _ in batch])
            except Exception as exc:  # the batch was rolled back: nothing is answered
                for ctx, done in batch:
                    done(ctx, exc)
                continue
            for ctx, done in batch:
                done(ctx, None)

    async def _process_batch(self, batch: list[Context]) -> None:
        """Decide the whole batch in one transaction, then commit it durably.

        The deciding runs on the event loop (CPU work: a thread would only add GIL hand-offs);
        the commit — the disk sync — runs in a thread, so the loop keeps reading, decoding and
        MAC-checking the next requests meanwhile. Nothing is answered before the commit."""
        self.stats.batches += 1
        self.stats.decided += len(batch)
        failed = False
        started = time.perf_counter()
        with self.engine.connect() as conn:
            trans = conn.begin()
            try:
                for ctx in batch:
                    self.processor.process(conn, ctx)
            except Exception:
                log.exception("batch of %d failed; processing one by one", len(batch))
                trans.rollback()
                failed = True
            else:
                decided = time.perf_counter()
                self.stats.decide_seconds += decided - started
                await asyncio.to_thread(trans.commit)
                self.stats.commit_seconds += time.perf_counter() - decided
        if failed:
            self.processor._next_id = None  # ids of the rolled-back batch are free again
            for ctx in batch:
                self._process_alone(ctx)
        if self.after_commit is not None:
            self.after_commit(batch)

    def _process_alone(self, ctx: Context) -> None:
        try:
            with self.engine.begin() as conn:
                self.processor.process(conn, ctx)
        except Exception:
            log.exception("request failed; answered 96, nothing posted")
            self.processor._next_id = None
            ctx.response_code = "96"
            # Echoed as the early declines are, so the terminal can match the answer and
            # knows that nothing was done (no reversal needed).
            ctx.response = {"39": "96", **_echo(ctx.fields)}
            ctx.new_keys = None


class Writer(Protocol):
    """Where HostService sends a checked request to be decided: the in-process
    :class:`BatchWriter`, or a link to the writer process (:mod:`smartpos.host.cluster`)."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def decide(self, ctx: Context) -> None: ...


class HostService:
    """Turns request frames into response frames."""

    def __init__(
        self,
        engine: Engine,
        processor: Processor,
        hsm: SoftHsm,
        profile: AcquirerProfile,
        *,
        max_batch: int = 256,
        after_commit: Callable[[list[Context]], None] | None = None,
        writer: Writer | None = None,
        writer_lock: ProcessLock | None = None,
    ) -> None:
        self.engine = engine
        self.processor = processor
        self.hsm = hsm
        self.profile = profile
        self.stats = HostStats()
        self.rejects = RejectLog(log)
        with engine.connect() as conn:
            self.terminals = load_terminals(conn)
        self._key_reloads: dict[str, float] = {}
        self.writer: Writer = writer or BatchWriter(
            engine,
            processor,
            max_batch=max_batch,
            after_commit=after_commit,
            stats=self.stats,
            writer_lock=writer_lock,
        )

    def reload_terminals(self) -> None:
        with self.engine.connect() as conn:
            self.terminals = load_terminals(conn)

    def _reload_terminal(self, tid: str) -> TerminalKeys | None:
        """Re-read one terminal from the database: it may have been provisioned since start,
        or signed on through another front-end process (new keys)."""
        keys = load_terminal(self.engine, tid)
        if keys is not None:
            self.terminals[tid] = keys
        return keys

    def start(self) -> None:
        self.writer.start()

    async def stop(self) -> None:
        await self.writer.stop()

    # -- one request -----------------------------------------------------------------------

    async def handle(self, body: bytes, peer: Peer | None = None) -> bytes | None:
        """Answer one frame body. Returns the response frame, or None for no answer.
        Raises ``FramingError`` when the frame is too broken to answer (close the link);
        every reject is logged (rate-limited, :class:`RejectLog`). ``peer`` is told when
        the request proves to come from a registered terminal."""
        self.stats.requests += 1
        frame = self.profile.framing.split(body)
        who = peer.name if peer is not None else "-"
        try:
            fields = self.profile.codec.decode(frame.message)
        except MessageError as exc:
            return await _turn(self._format_error(frame, exc, who))
        mti = fields["t"]
        try:
            answer_mti = response_mti(mti)
        except MessageError as exc:
            raise Unanswerable("mti", str(exc)) from None
        try:
            kind = classify(fields)
        except MessageError as exc:  # 12, or 30 for a field 60 that does not parse
            reason = "format" if exc.response_code == "30" else "unsupported"
            return await _turn(
                self._reject(frame, who, reason, exc.response_code, answer_mti, fields)
            )
        tid = fields.get("41", "")
        terminal = self.terminals.get(tid) or (self._reload_terminal(tid) if tid else None)
        if terminal is None:
            return await _turn(
                self._reject(frame, who, "unknown terminal", "97", answer_mti, fields)
            )
        if fields.get("42") != terminal.mid:
            return await _turn(self._reject(frame, who, "merchant", "03", answer_mti, fields))
        if terminal.status != "active":
            return await _turn(
                self._reject(frame, who, "inactive terminal", "58", answer_mti, fields)
            )
        if self.profile.mac_required and (
            (kind == TxnType.SIGN_ON and not self._signon_mac_ok(terminal, frame.message, fields))
            or (kind not in UNMACED and not self._mac_ok(terminal, frame.message, fields))
        ):
            return await _turn(self._reject(frame, who, "mac", "A0", answer_mti, fields))
        if peer is not None and (kind != TxnType.ECHO or not self.profile.mac_required):
            peer.trust(terminal.tid)  # its MAC (a sign-on's under the TMK) proved the terminal
        terminal = self.terminals.get(terminal.tid, terminal)  # as re-read by the MAC check
        ctx = Context(fields=fields, kind=kind, message=frame.message, terminal=terminal)
        self.processor.prepare(ctx)
        await self.writer.decide(ctx)
        if ctx.new_keys is not None:
            tid = terminal.tid
            self.terminals[tid] = self.terminals[tid].with_working_keys(ctx.new_keys)
        if ctx.silent:
            return None
        response = {"t": answer_mti, **ctx.response, "32": self.profile.acquirer_id}
        tak = None
        if self.profile.mac_required and kind not in UNMACED:
            tak = self.terminals[terminal.tid].sealed_tak
        return self._reply(frame, response, tak, terminal.tid)

    def _reject(
        self, frame: FrameParts, who: str, reason: str, code: str, answer_mti: str, fields: Fields
    ) -> bytes:
        """Answer a request refused before the MAC check (no MAC on the answer)."""
        self.rejects.reject(
            reason, who, f"MTI {fields['t']} TID {fields.get('41', '-')!r} answered {code}"
        )
        return self._reply(frame, {"t": answer_mti, "39": code, **_echo(fields)}, None)

    def _signon_mac_ok(self, terminal: TerminalKeys, message: bytes, fields: Fields) -> bool:
        if "64" not in fields:
            return False
        data, mac = self.profile.codec.mac_input(message)
        return self.hsm.verify_signon_mac(
            terminal.tid, terminal.sealed_tmk, self.profile.mac_algorithm, data, mac
        )

    def _mac_ok(self, terminal: TerminalKeys, message: bytes, fields: Fields) -> bool:
        if "64" not in fields:
            return False
        data, mac = self.profile.codec.mac_input(message)
        alg = self.profile.mac_algorithm
        if terminal.sealed_tak is not None and self.hsm.verify_mac(
            terminal.tid, terminal.sealed_tak, alg, data, mac
        ):
            return True
        # The terminal may have signed on through another front-end process since this one
        # cached its keys: check once more against the keys in the database. Only a
        # front-end needs this (in one process the keys are always current), and at most
        # once a second per terminal, so bad MACs cannot make every request a database read.
        if isinstance(self.writer, BatchWriter):
            return False
        now = time.monotonic()
        if (
            now - self._key_reloads.get(terminal.tid, -KEY_RELOAD_INTERVAL_S)
            < KEY_RELOAD_INTERVAL_S
        ):
            return False
        self._key_reloads[terminal.tid] = now
        fresh = self._reload_terminal(terminal.tid)
        if fresh is None or fresh.sealed_tak in (None, terminal.sealed_tak):
            return False
        return self.hsm.verify_mac(terminal.tid, fresh.sealed_tak, alg, data, mac)

    def _format_error(self, frame: FrameParts, exc: MessageError, who: str) -> bytes | None:
        mti = self.profile.codec.mti_of(frame.message)
        if mti not in _REQUEST_MTIS:
            raise Unanswerable("undecodable", f"undecodable message, MTI {mti!r}: {exc}")
        self.rejects.reject("format", who, f"MTI {mti}: {exc}, answered {exc.response_code}")
        # Echo what decoded cleanly before the defect (11 and 41 let the terminal match the
        # answer to its request and know that nothing was done).
        echo = {k: v for k, v in _echo(exc.partial).items() if _echoable(k, v)}
        return self._reply(frame, {"t": response_mti(mti), "39": exc.response_code, **echo}, None)

    def _reply(
        self, frame: FrameParts, fields: Fields, sealed_tak: bytes | None, tid: str = ""
    ) -> bytes:
        self.stats.answered += 1
        rc = fields.get("39", "")
        self.stats.by_code[rc] = self.stats.by_code.get(rc, 0) + 1
        mac_fn = None
        if sealed_tak is not None:
            tak = sealed_tak

            def mac_fn(data: bytes) -> bytes:
                return self.hsm.generate_mac(tid, tak, self.profile.mac_algorithm, data)

        message = self.profile.codec.encode(fields, mac=mac_fn)
        return self.profile.framing.answer(frame, message)


async def _turn(answer: bytes | None) -> bytes | None:
    """``answer``, after letting the event loop turn once. A request refused before the MAC
    check is answered without waiting for anything; a peer sending thousands of such frames
    at once would otherwise keep the loop (and every other link, and new connections) to
    itself. Requests that reach the writer wait for it anyway."""
    await asyncio.sleep(0)
    return answer


_ECHO_DIGITS = {"3": 6, "4": 12, "11": 6}


def _echoable(key: str, value: str) -> bool:
    """A partially decoded field is echoed only if it is well formed on its own."""
    if key in _ECHO_DIGITS:
        return len(value) == _ECHO_DIGITS[key] and value.isdigit()
    return bool(value) and value.isascii() and value.isprintable()


def _echo(fields: Fields) -> Fields:
    return {k: fields[k] for k in ("3", "4", "11", "41", "42") if k in fields}
