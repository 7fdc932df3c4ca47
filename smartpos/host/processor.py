"""What the issuer and acquirer decide for each request, inside one database transaction.

Order of participants for a card request (DESIGN §3.3): de-duplicate → card → PIN → risk →
authorize → persist. Decode, terminal and MAC checks run before, in the server's event loop
(:mod:`smartpos.host.pipeline`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, update

from smartpos.cards import PanTokenizer, brand_of
from smartpos.db.raw import Query, Raw
from smartpos.host import ledger
from smartpos.host.cardsteps import CardSteps
from smartpos.host.context import Context, Decline, Unrecorded
from smartpos.host.settlement import SettlementSteps
from smartpos.host.signon import SignOnSteps
from smartpos.host.steps import _SEL_CARD, log
from smartpos.host.tables import cards, requests, terminals
from smartpos.protocol.codec import Fields, MessageError
from smartpos.protocol.messages import (
    F60,
    F61,
    NET_BATCH_UPLOAD,
    TxnType,
    balance_f54,
    request_class,
    require,
)
from smartpos.protocol.spec import SUPPORTED_FIELDS

# A retransmission is the same request sent again, so every field counts towards "the same
# request" except the MAC (a resend after a sign-on carries a MAC under the new key). Fields
# that differ between two distinct transactions — above all the local time (12) and the
# PIN block (52) — must count: otherwise a different sale under a reused trace number
# (a terminal whose counters were reset) gets the stored answer of an earlier one. In field
# number order, once: a decoded request holds no field outside the spec.
_FINGERPRINTED = tuple(sorted((k for k in SUPPORTED_FIELDS if k != "64"), key=int))

# The purchase path's statements: fixed SQL on the driver's cursor (see smartpos.db.raw).
_SEL_IDENTITY = Query(
    "SELECT msg_class, fingerprint, response_json FROM requests"
    " WHERE tid = ? AND stan = ? AND date_mmdd = ?",
    ("msg_class", "fingerprint", "response_json"),
)
_INS_REQUEST = Query(
    "INSERT INTO requests (id, tid, msg_class, stan, date_mmdd, kind, fingerprint,"
    " response_code, status, rrn, auth_code, amount_minor, refunded_minor, pan_token,"
    " domestic, batch_no, transfer_id, original_id, settled, uploaded, response_json,"
    " created_at, atc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
    " ?, ?)"
)


def fingerprinted(supported: frozenset[str]) -> tuple[str, ...]:
    """The fields a dialect's requests are fingerprinted by: all it supports but the MAC."""
    return tuple(sorted((k for k in supported if k not in ("64", "128")), key=int))


def fingerprint(
    tokenizer: PanTokenizer, fields: Fields, names: tuple[str, ...] = _FINGERPRINTED
) -> str:
    """What makes a request "the same request again" (a retry): its message class and every
    field but the MAC (``names``: the dialect's fields), as a keyed digest — the fields
    include the PAN, so a plain hash would let anyone holding the database test candidate
    PANs against it."""
    get = fields.get
    parts = [request_class(fields.get("t", "0000"))]
    for name in names:
        value = get(name)
        if value is not None:
            parts.append(f"{name}={value};")
    return tokenizer.digest("request-fingerprint", "".join(parts))


def _is_upload_advice(ctx: Context) -> bool:
    """A batch upload advice (0320, 60.3 = 201): not the upload end, not a TC advice."""
    if ctx.kind != TxnType.BATCH_UPLOAD:
        return False
    return F60.decode(ctx.fields["60"]).net_code == NET_BATCH_UPLOAD


class Processor(CardSteps, SettlementSteps, SignOnSteps):
    """Decides each request: the participants of its kind (card, PIN, risk, ledger), in one
    transaction. The steps live in the modules of :class:`~smartpos.host.steps.Steps`."""

    def prepare(self, ctx: Context) -> None:
        """The work on a request that needs no database — the request fingerprint and the
        card data (parse, Luhn, token) — done before the request joins the writer's queue,
        so the single writer spends its time only on what must be serialized."""
        if ctx.kind in (TxnType.ECHO, TxnType.SIGN_ON):
            return
        ctx.fingerprint = fingerprint(self.tokenizer, ctx.fields, self.fingerprinted)
        ctx.card_read = self._read_card(ctx.fields)

    def process(self, conn: Connection, ctx: Context) -> None:
        """Decide and persist one request. Afterwards ``ctx.response`` holds the answer."""
        if ctx.kind == TxnType.ECHO:
            ctx.response_code = "00"
            self._respond(ctx)
            return
        if ctx.kind == TxnType.SIGN_ON:
            self._sign_on(conn, ctx)
            self._respond(ctx)
            return
        if not ctx.fingerprint:
            ctx.fingerprint = fingerprint(self.tokenizer, ctx.fields, self.fingerprinted)
        # Each request's changes sit behind a savepoint in the batch transaction: a request
        # that fails half-way is undone on its own, whatever it had written, and the others
        # in the batch keep theirs.
        raw = Raw.of(conn)
        raw.savepoint()
        try:
            self._decide(conn, ctx)
            raw.release()  # on PostgreSQL this also sends the writes held back (Raw.defer)
        except (MessageError, Unrecorded) as exc:
            # A malformed request (30 format error), or one that must not take its identity:
            # answered, nothing of it kept or recorded.
            raw.rollback_to_savepoint()
            self._answer_only(ctx, exc.response_code)
            return
        except Exception:
            log.exception("request failed; answered 96, nothing of it kept")
            raw.rollback_to_savepoint()  # if even this fails, the whole batch rolls back
            self._answer_only(ctx, "96")
            return

    def _decide(self, conn: Connection, ctx: Context) -> None:
        # A batch upload advice names its transaction by that transaction's own trace, so
        # the advice of a second upload (a settlement tried again the same day) is the same
        # request as the first one's: answered from the store, it would confirm nothing, and
        # the upload end would undo every sale and refund of the batch. An advice changes
        # nothing but the upload mark, so it is answered from the batch's state each time,
        # and not stored.
        stored = not _is_upload_advice(ctx)
        try:
            if stored and self._replay(conn, ctx):
                return
            handler = _HANDLERS[ctx.kind]
            handler(self, conn, ctx)
        except Unrecorded:
            raise
        except Decline as d:
            # A decline keeps what was written before it (a wrong PIN's try counter).
            ctx.response_code = d.response_code
            if ctx.status == "approved":
                ctx.status = "declined"
        self._respond(ctx)
        if stored:
            self._persist(conn, ctx)

    def _replay(self, conn: Connection, ctx: Context) -> bool:
        require(ctx.fields, "11", "13")
        tid, cls, stan, mmdd = self._identity(ctx)
        raw, read = Raw.of(conn), ctx.card_read
        if ctx.kind in (TxnType.PURCHASE, TxnType.BALANCE) and read and read.token:
            # The card row too, in the same round trip (the purchase path reads it next).
            rows, card = raw.all_and_first(
                _SEL_IDENTITY, (tid, stan, mmdd), _SEL_CARD, (read.token,)
            )
            ctx.card_row = (card,)
        else:
            rows = raw.all(_SEL_IDENTITY, (tid, stan, mmdd))
        ctx.siblings = {r.msg_class: r for r in rows}
        row = ctx.siblings.get(cls)
        if row is None:
            return False
        ctx.replayed = True
        if row.fingerprint == ctx.fingerprint:
            stored = json.loads(row.response_json)
            ctx.response = stored["fields"]
            ctx.silent = stored.get("silent", False)
            ctx.response_code = ctx.response.get("39", "96")
        else:
            ctx.response_code = "94"
            self._respond(ctx)
        return True

    def _purchase(self, conn: Connection, ctx: Context) -> None:
        require(ctx.fields, "3", "4", "22", "41", "42", "60")
        self._reject_if_reversed(conn, ctx)
        self._open_batch(conn, ctx)
        self._card(conn, ctx)
        self._pin(conn, ctx)
        self._risk(ctx)
        tid = self._transfer_id(ctx, "hold")
        try:
            ledger.hold(
                conn,
                tid,
                ctx.card.account_id,
                self._merchant_account(conn, ctx),
                int(ctx.fields["4"]),
                "purchase",
                fresh=True,  # _replay found no request with this identity
            )
        except ledger.InsufficientFunds:
            raise Decline("51", "insufficient funds") from None
        ctx.transfer_id = tid
        ctx.status = "approved"
        ctx.response_code = "00"

    def _balance(self, conn: Connection, ctx: Context) -> None:
        require(ctx.fields, "3", "22", "41", "42")
        self._card(conn, ctx)
        self._pin(conn, ctx)
        ctx.response["54"] = balance_f54(
            ledger.available(conn, ctx.card.account_id), self.limits.currency_numeric
        )
        ctx.status = "approved"
        ctx.response_code = "00"

    def _void(self, conn: Connection, ctx: Context) -> None:
        require(ctx.fields, "3", "4", "41", "42", "60", "61")
        self._reject_if_reversed(conn, ctx)
        batch_no = self._open_batch(conn, ctx)
        orig_ref = F61.decode(ctx.fields["61"])
        original = self._find_original(
            conn,
            tid=ctx.terminal.tid,
            kind="purchase",
            stan=orig_ref.stan,
            batch_no=orig_ref.batch_no,
        )
        if original is None or original.response_code != "00":
            raise Decline("25", "original purchase not found")
        if original.batch_no != batch_no or original.settled:
            raise Decline("12", "void only within the open batch")
        if original.status != "approved":
            raise Decline("12", f"original is {original.status}")
        if original.refunded_minor:
            raise Decline("12", "original already partly refunded")
        if int(ctx.fields["4"]) != original.amount_minor:
            raise Decline("64", "amount differs from the original")
        if ctx.fields.get("37") and ctx.fields["37"] != original.rrn:
            raise Decline("25", "RRN does not match the original")
        self._check_same_card(ctx, original)
        tid = self._transfer_id(ctx, "void")
        ledger.void_pending(conn, tid, original.transfer_id)
        conn.execute(update(requests).where(requests.c.id == original.id).values(status="voided"))
        ctx.original, ctx.transfer_id = original, tid
        ctx.status, ctx.response_code = "approved", "00"

    def _check_same_card(self, ctx: Context, original: Any) -> None:
        read = self._card_read(ctx)
        if read.error is not None:
            raise Decline("14", "bad card data")
        if read.pan is None:
            return
        ctx.pan = read.pan
        if read.token != original.pan_token:
            raise Decline("14", "card differs from the original")

    def _refund(self, conn: Connection, ctx: Context) -> None:
        require(ctx.fields, "3", "4", "37", "41", "42", "60")
        self._reject_if_reversed(conn, ctx)
        self._open_batch(conn, ctx)
        original = self._find_original(conn, rrn=ctx.fields["37"], kind="purchase")
        if original is None or original.response_code != "00":
            raise Decline("25", "original purchase not found")
        mid = conn.execute(
            select(terminals.c.mid).where(terminals.c.tid == original.tid)
        ).scalar_one()
        if mid != ctx.terminal.mid:
            raise Decline("25", "original belongs to another merchant")
        if original.status not in ("approved",):
            raise Decline("12", f"original is {original.status}")
        if not (ctx.fields.get("2") or ctx.fields.get("35")):
            raise Decline("30", "refund needs the card")
        self._check_same_card(ctx, original)
        amount = int(ctx.fields["4"])
        if amount <= 0:
            raise Decline("13", "zero amount")
        if original.refunded_minor + amount > original.amount_minor:
            raise Decline("64", "refund exceeds what is left of the original")
        card_account = conn.execute(
            select(cards.c.account_id).where(cards.c.token == original.pan_token)
        ).scalar_one()
        tid = self._transfer_id(ctx, "refund")
        ledger.transfer(
            conn, tid, self._merchant_account(conn, ctx), card_account, amount, "refund", force=True
        )
        conn.execute(
            update(requests)
            .where(requests.c.id == original.id)
            .values(refunded_minor=requests.c.refunded_minor + amount)
        )
        ctx.original, ctx.transfer_id = original, tid
        ctx.status, ctx.response_code = "approved", "00"

    def _persist(self, conn: Connection, ctx: Context) -> None:
        row_id = self._allocate_id(conn)
        approved = ctx.response_code == "00"
        # Only card transactions get an RRN of their own (an advice's answer quotes its
        # sale's, which is not this request's).
        rrn: str | None = None
        if ctx.kind in (TxnType.PURCHASE, TxnType.VOID, TxnType.REFUND, TxnType.BALANCE):
            rrn = f"{self.clock():%y%m}{row_id % 10**8:08d}"
            ctx.response["37"] = rrn
            if approved and ctx.kind != TxnType.BALANCE:
                ctx.response["38"] = self.auth_code()
        f = ctx.fields
        batch_no = F60.decode(f["60"]).batch_no if "60" in f else "000000"
        domestic = True
        token = None
        if ctx.pan is not None:
            token = self._card_read(ctx).token or self.tokenizer.token(ctx.pan)
            domestic = brand_of(ctx.pan).is_domestic
        elif ctx.original is not None:
            token, domestic = ctx.original.pan_token, ctx.original.domestic
        stored = {"fields": ctx.response, "silent": ctx.silent}
        raw = Raw.of(conn)
        raw.defer(
            _INS_REQUEST,
            (
                row_id,
                ctx.terminal.tid,
                request_class(f["t"]),
                f.get("11", ""),
                f.get("13", ""),
                ctx.kind.value,
                ctx.fingerprint,
                ctx.response_code,
                ctx.status if approved else "declined",
                rrn,
                ctx.response.get("38"),
                int(f.get("4") or 0),
                0,
                token,
                domestic,
                batch_no,
                ctx.transfer_id,
                ctx.original.id if ctx.original is not None else None,
                False,
                False,
                json.dumps(stored),
                raw.stamp(datetime.now(UTC)),
                ctx.chip[0].atc if ctx.chip is not None else None,
            ),
        )


_HANDLERS = {
    TxnType.PURCHASE: Processor._purchase,
    TxnType.BALANCE: Processor._balance,
    TxnType.VOID: Processor._void,
    TxnType.REFUND: Processor._refund,
    TxnType.REVERSAL: Processor._reversal,
    TxnType.SETTLEMENT: Processor._settlement,
    TxnType.BATCH_UPLOAD: Processor._batch_upload,
    TxnType.TC_ADVICE: Processor._tc_advice,
}
