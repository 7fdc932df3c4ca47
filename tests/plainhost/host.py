"""A small ISO 8583:1987 host: pyiso8583 with spec87, a ledger in dicts, loopback TCP.

It speaks plain 1987 in ASCII (spec87.py) over a 2-byte big-endian length prefix, with no
TPDU, no header and no MAC: what smartpos's ``iso87-plain`` profile sends. It knows nothing
of CUP conventions (field 60 and 61 are opaque to it) and reads each request by its 1987
meaning, as smartpos's terminal sends it (docs/protocol.md §8, smartpos/terminal/engine.py):

==============================  =========================================================
request                         1987 meaning taken, and what the host does
==============================  =========================================================
0800 (sign-on), 0820 (echo)     network management request / advice: 0810 / 0830, ``00``.
0200, F3 ``00xxxx``             financial request, goods and services: a purchase. Holds
                                the amount on the card (F2, or the PAN of track 2 in F35);
                                ``51`` beyond what is available, ``55`` for a card told to
                                fail its PIN when F52 is present. Approved: F37 a new RRN,
                                F38 an authorization code.
0200, F3 ``20xxxx`` (or ``02``)  financial request, returns (debit adjustment) naming an
                                approved sale of the same terminal by its RRN in F37: a
                                void. Releases the sale's hold; ``25`` for an unknown RRN,
                                ``64`` for another amount, ``12`` for a sale already voided,
                                refunded or reversed.
0220, F3 ``20xxxx``             financial advice, returns, naming a sale by F37: a refund.
                                Credits the card, at most what is left of the sale (``64``).
0400 / 0401 (repeat)            reversal advice naming its original by what the terminal
                                sends: terminal (F41), trace (F11) and date (F13) of the
                                original, with its F3 and F4. Undoes it: a sale's hold is
                                released, a void's sale held again, a refund's credit taken
                                back. ``25`` when F3 or F4 differ from the original's; an
                                unknown original is acknowledged (``00``) and remembered,
                                so the original arriving late is declined (``12``).
anything else (0500, 0320, a    ``12``, invalid transaction: settlement, advices, balance
balance inquiry F3 ``31``)      inquiries and chip data (F55 is opaque) are not served.
==============================  =========================================================

A request seen before — same terminal, trace, date and message class (a repeat, 0401 or
0221, counts as its first) — gets the stored answer if it is the same request, ``94`` if it
is not; it never moves money twice. Undecodable requests are answered ``30`` (echoing F11
and F41 when they decoded); what is not even a request (no MTI, a length out of range)
closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import iso8583

from tests.plainhost.spec87 import NUMERIC, SPEC87

Doc = dict[str, str]

FRAME_MIN_BYTES = 20  # MTI (4) and bitmap (16)
FRAME_MAX_BYTES = 8192
ECHOED = ("3", "4", "7", "11", "12", "13", "25", "37", "41", "42", "49")


@dataclass
class Decided:
    """A financial request the host decided, kept to match voids, refunds and reversals."""

    kind: str  # "sale", "void" or "refund"
    tid: str
    mid: str
    stan: str
    date: str
    proc: str
    amount_minor: int
    pan: str
    rrn: str
    response_code: str
    original_rrn: str = ""  # a void's or refund's sale
    refunded_minor: int = 0  # a sale's refunds
    voided: bool = False
    reversed: bool = False


@dataclass
class Ledger:
    """Posted balances and holds per card; ``moves`` lists every change, in order."""

    posted: dict[str, int] = field(default_factory=dict)
    holds: dict[str, tuple[str, int]] = field(default_factory=dict)  # rrn -> (pan, amount)
    moves: list[tuple[str, str, int]] = field(default_factory=list)  # (what, pan, amount)

    def held(self, pan: str) -> int:
        return sum(amount for p, amount in self.holds.values() if p == pan)

    def available(self, pan: str) -> int:
        return self.posted[pan] - self.held(pan)

    def hold(self, rrn: str, pan: str, amount: int) -> None:
        assert rrn not in self.holds
        self.holds[rrn] = (pan, amount)
        self.moves.append(("hold", pan, amount))

    def release(self, rrn: str) -> None:
        pan, amount = self.holds.pop(rrn)
        self.moves.append(("release", pan, amount))

    def credit(self, pan: str, amount: int) -> None:
        self.posted[pan] += amount
        self.moves.append(("credit", pan, amount))

    def debit(self, pan: str, amount: int) -> None:
        self.posted[pan] -= amount
        self.moves.append(("debit", pan, amount))


class PlainHost:
    """The host. ``async with PlainHost() as host:`` listens on 127.0.0.1, ``host.port``.

    ``balances`` opens card accounts (PAN → minor units); any other card gets
    ``default_balance_minor`` on first use, or is refused (``14``) when that is None. Cards
    in ``wrong_pin`` are declined ``55`` whenever a PIN block comes with them."""

    def __init__(
        self,
        balances: Mapping[str, int] | None = None,
        *,
        default_balance_minor: int | None = 1_000_000,
        wrong_pin: frozenset[str] = frozenset(),
    ) -> None:
        self.ledger = Ledger(posted=dict(balances or {}))
        self.default_balance_minor = default_balance_minor
        self.wrong_pin = wrong_pin
        self.decided: list[Decided] = []
        self.exchanges: list[tuple[Doc | None, Doc | None]] = []  # (request, answer)
        self.dropped = 0
        self._seen: dict[tuple[str, str, str, str], tuple[Doc, Doc]] = {}
        self._reversed_unseen: set[tuple[str, str, str]] = set()
        self._sequence = 0
        self._server: asyncio.Server | None = None
        self.port = 0

    # -- the server --------------------------------------------------------------------------

    async def __aenter__(self) -> PlainHost:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    length = int.from_bytes(await reader.readexactly(2), "big")
                    if not FRAME_MIN_BYTES <= length <= FRAME_MAX_BYTES:
                        self.dropped += 1
                        return
                    message = await reader.readexactly(length)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                answer = self.answer(message)
                if answer is None:
                    self.dropped += 1
                    return
                writer.write(len(answer).to_bytes(2, "big") + answer)
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # -- one message -------------------------------------------------------------------------

    def answer(self, message: bytes) -> bytes | None:
        """The encoded answer to one message (no length prefix), or None: close the link."""
        try:
            request = dict(iso8583.decode(bytearray(message), SPEC87)[0])
        except iso8583.DecodeError as exc:
            partial = {k: v for k, v in exc.doc_dec.items() if k != exc.field}
            return self._format_error(message, partial)
        except (ValueError, KeyError, IndexError, TypeError):
            return self._format_error(message, {})
        mti = request["t"]
        if not _is_request(mti):
            self.exchanges.append((request, None))
            return None
        if any(k in NUMERIC and not (v.isascii() and v.isdigit()) for k, v in request.items()):
            return self._encode(request, _reply(request, "30"))
        reply = self._decide(request)
        return self._encode(request, reply)

    def _format_error(self, message: bytes, partial: Doc) -> bytes | None:
        mti = message[:4].decode("latin-1")
        if not _is_request(mti):
            self.exchanges.append((None, None))
            return None
        echo: Doc = {k: partial[k] for k in ("11", "41") if k in partial}
        return self._encode(None, {"t": _answer_mti(mti), **echo, "39": "30"})

    def _encode(self, request: Doc | None, reply: Doc) -> bytes | None:
        self.exchanges.append((request, reply))
        try:
            return bytes(iso8583.encode(dict(reply), SPEC87)[0])
        except iso8583.EncodeError:  # an echoed value this host cannot send back
            return None

    def _decide(self, req: Doc) -> Doc:
        mti = req["t"]
        if "11" not in req or "41" not in req:
            return _reply(req, "30")
        if mti in ("0800", "0820"):
            return _reply(req, "00")
        klass = {
            "0200": "020",
            "0201": "020",
            "0220": "022",
            "0221": "022",
            "0400": "040",
            "0401": "040",
        }.get(mti)
        if klass is None:
            return _reply(req, "12")
        if "3" not in req or "4" not in req:
            return _reply(req, "30")
        key = (klass, req["41"], req["11"], req.get("13", ""))
        same = {k: v for k, v in req.items() if k not in ("t", "p")}
        if key in self._seen:
            before, answer = self._seen[key]
            if before != same:
                return _reply(req, "94")
            return {**answer, "t": _answer_mti(mti)}
        answer = self._reversal(req) if klass == "040" else self._financial(req, klass)
        self._seen[key] = (same, answer)
        return answer

    def _financial(self, req: Doc, klass: str) -> Doc:
        proc = req["3"][:2]
        amount = int(req["4"])
        if klass == "020" and proc == "00":
            return self._sale(req, amount)
        if klass == "020" and proc in ("20", "02") and "37" in req:
            return self._void(req, amount)
        if klass == "022" and proc == "20" and "37" in req:
            return self._refund(req, amount)
        return _reply(req, "12")

    def _sale(self, req: Doc, amount: int) -> Doc:
        pan = _pan(req)
        if pan is None:
            return _reply(req, "30")
        if amount <= 0:
            return _reply(req, "13")
        if (req["41"], req["11"], req.get("13", "")) in self._reversed_unseen:
            return _reply(req, "12")  # reversed before it arrived: never posts
        if pan not in self.ledger.posted:
            if self.default_balance_minor is None:
                return _reply(req, "14")
            self.ledger.posted[pan] = self.default_balance_minor
        rrn = self._next_rrn()
        if "52" in req and pan in self.wrong_pin:
            return self._record(req, "sale", pan, amount, rrn, "55")
        if self.ledger.available(pan) < amount:
            return self._record(req, "sale", pan, amount, rrn, "51")
        self.ledger.hold(rrn, pan, amount)
        return self._record(req, "sale", pan, amount, rrn, "00")

    def _void(self, req: Doc, amount: int) -> Doc:
        sale = self._sale_by_rrn(req["37"])
        if sale is None or sale.tid != req["41"]:
            return _reply(req, "25")
        if sale.voided or sale.reversed or sale.refunded_minor:
            return _reply(req, "12")
        if amount != sale.amount_minor:
            return _reply(req, "64")
        self.ledger.release(sale.rrn)
        sale.voided = True
        return self._record(req, "void", sale.pan, amount, self._next_rrn(), "00", sale.rrn)

    def _refund(self, req: Doc, amount: int) -> Doc:
        sale = self._sale_by_rrn(req["37"])
        if sale is None or sale.mid != req.get("42"):
            return _reply(req, "25")
        if sale.voided or sale.reversed:
            return _reply(req, "12")
        pan = _pan(req)
        if pan is not None and pan != sale.pan:
            return _reply(req, "12")
        if not 0 < amount <= sale.amount_minor - sale.refunded_minor:
            return _reply(req, "64")
        self.ledger.credit(sale.pan, amount)
        sale.refunded_minor += amount
        return self._record(req, "refund", sale.pan, amount, self._next_rrn(), "00", sale.rrn)

    def _reversal(self, req: Doc) -> Doc:
        tid, stan, date = req["41"], req["11"], req.get("13", "")
        original = next(
            (d for d in self.decided if (d.tid, d.stan, d.date) == (tid, stan, date)), None
        )
        if original is None:
            self._reversed_unseen.add((tid, stan, date))
            return _reply(req, "00")
        if original.proc != req["3"] or original.amount_minor != int(req["4"]):
            return _reply(req, "25")
        if original.response_code != "00" or original.reversed:
            original.reversed = True
            return _reply(req, "00")
        original.reversed = True
        if original.kind == "sale" and original.rrn in self.ledger.holds:
            self.ledger.release(original.rrn)
        elif original.kind == "void":
            sale = self._sale_by_rrn(original.original_rrn)
            assert sale is not None
            sale.voided = False
            self.ledger.hold(sale.rrn, sale.pan, sale.amount_minor)
        elif original.kind == "refund":
            sale = self._sale_by_rrn(original.original_rrn)
            assert sale is not None
            sale.refunded_minor -= original.amount_minor
            self.ledger.debit(original.pan, original.amount_minor)
        return _reply(req, "00")

    def _record(
        self, req: Doc, kind: str, pan: str, amount: int, rrn: str, rc: str, original: str = ""
    ) -> Doc:
        self.decided.append(
            Decided(
                kind,
                req["41"],
                req.get("42", ""),
                req["11"],
                req.get("13", ""),
                req["3"],
                amount,
                pan,
                rrn,
                rc,
                original_rrn=original,
            )
        )
        reply = _reply(req, rc)
        reply["37"] = rrn
        if rc == "00":
            reply["38"] = f"{self._sequence % 1_000_000:06d}"
        return reply

    def _sale_by_rrn(self, rrn: str) -> Decided | None:
        return next(
            (
                d
                for d in self.decided
                if d.kind == "sale" and d.rrn == rrn and d.response_code == "00"
            ),
            None,
        )

    def _next_rrn(self) -> str:
        self._sequence += 1
        return f"{self._sequence:012d}"


def _is_request(mti: str) -> bool:
    """A request or advice (0x00, 0x20, 0x01 repeat, 0x21): it has an answer."""
    return len(mti) == 4 and mti.isascii() and mti.isdigit() and mti[2] in "02" and mti[3] in "01"


def _answer_mti(mti: str) -> str:
    return mti[:2] + str(int(mti[2]) + 1) + "0"


def _reply(req: Doc, rc: str) -> Doc:
    out: dict[str, Any] = {"t": _answer_mti(req["t"])}
    out.update({k: req[k] for k in ECHOED if k in req})
    out["39"] = rc
    return out


def _pan(req: Doc) -> str | None:
    if "2" in req:
        return req["2"]
    if "35" in req:
        return req["35"].split("=")[0].split("D")[0]
    return None
