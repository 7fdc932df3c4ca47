"""What the issuer and acquirer decide for each request, inside one database transaction.

Order of participants for a card request (DESIGN §3.3): de-duplicate → card → PIN → risk →
authorize → persist. Decode, terminal and MAC checks run before, in the server's event loop
(:mod:`smartpos.host.pipeline`).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select, update

from smartpos.cards import CardError, PanTokenizer, brand_of, expiry_passed, normalize_pan
from smartpos.cards.emv import CID_TC, arpc_tag91, read_icc_data, verify_arqc
from smartpos.cards.track import parse_track2
from smartpos.db.raw import Query, Raw
from smartpos.host import ledger
from smartpos.host.context import CardRead, Context, Decline, Unrecorded
from smartpos.host.tables import batches, cards, merchants, requests, terminals
from smartpos.keys.hsm import PinCheck, SoftHsm
from smartpos.protocol.codec import Fields, MessageError
from smartpos.protocol.messages import (
    COUNTER_MODULUS,
    ENTRY_CHIP,
    ENTRY_CONTACTLESS,
    ENTRY_SWIPE,
    F60,
    F61,
    NET_BATCH_UPLOAD,
    NET_BATCH_UPLOAD_END,
    NET_SIGN_ON,
    TYPE_NETWORK,
    TYPE_PURCHASE,
    TYPE_REFUND,
    SettlementTotals,
    SettleResult,
    TxnType,
    balance_f54,
    request_class,
    require,
    trace_after,
)
from smartpos.protocol.spec import SUPPORTED_FIELDS

PIN_TRIES_MAX = 3
# Test amounts (docs/test-cards.md): 9,000.00–9,000.99 force the response code in the cents.
FORCED_AMOUNT_BASE = 900_000
FORCED_CODES = {"05", "12", "13", "51", "61", "91", "96"}
FORCED_NO_ANSWER_CENTS = 98

log = logging.getLogger("smartpos.host")

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
_CARD_COLUMNS = (
    "token",
    "status",
    "expiry",
    "pin_required",
    "pvv",
    "pvki",
    "pin_tries",
    "account_id",
    "last_atc",
)
_SEL_CARD = Query(
    "SELECT token, status, expiry, pin_required, pvv, pvki, pin_tries, account_id, last_atc"
    " FROM cards WHERE token = ?",
    _CARD_COLUMNS,
)
_UPD_PIN_TRIES = Query("UPDATE cards SET pin_tries = ? WHERE token = ?")
_UPD_LAST_ATC = Query("UPDATE cards SET last_atc = ? WHERE token = ?")
_SEL_BATCH = Query("SELECT status FROM batches WHERE tid = ? AND batch_no = ?", ("status",))
_INS_BATCH = Query("INSERT INTO batches (tid, batch_no, status) VALUES (?, ?, ?)")
_INS_REQUEST = Query(
    "INSERT INTO requests (id, tid, msg_class, stan, date_mmdd, kind, fingerprint,"
    " response_code, status, rrn, auth_code, amount_minor, refunded_minor, pan_token,"
    " domestic, batch_no, transfer_id, original_id, settled, uploaded, response_json,"
    " created_at, atc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
    " ?, ?)"
)

_ECHO_FIELDS = ("3", "4", "11", "12", "13", "25", "41", "42", "49", "60")
# An advice names its transaction by RRN (a batch upload advice's trace is the original's,
# not unique within a batch): its answer says which one it answers. A void's or refund's 37
# is the original's and is not echoed: their answers carry their own RRN.
_ADVICES = (TxnType.BATCH_UPLOAD, TxnType.TC_ADVICE)


@dataclass(frozen=True)
class Limits:
    single_txn_max_minor: int = 5_000_000  # 50,000.00 per card transaction
    # Contactless purchases up to this amount may come without a PIN (QuickPass no-CVM),
    # whatever the card's PIN rule; the acquirer profile's limit, as the terminals have it.
    contactless_no_cvm_minor: int = 100_000
    currency_numeric: str = "156"


def _reverses(reversal: Fields, original: Any) -> bool:
    """Whether ``reversal`` is about the request ``original`` stored under its identity: the
    same processing code, amount, currency, transaction type and batch, and — when the
    reversal carries it — the same local time (field 12 is the original's, protocol.md
    §8.8). The original's fields are read from its stored answer, which echoes them."""
    stored = json.loads(original.response_json)["fields"]
    for name in ("3", "4", "12", "49"):
        if name in reversal and name in stored and reversal[name] != stored[name]:
            return False
    if "60" in reversal and "60" in stored:
        ours, theirs = F60.decode(reversal["60"]), F60.decode(stored["60"])
        if (ours.type_code, ours.batch_no) != (theirs.type_code, theirs.batch_no):
            return False
    return True


def _keyed_expiry_passed(expiry: str, today: date) -> bool:
    """The request's own expiry is past. It is field 14 (track 2's was checked when the
    track was parsed), so one that is not YYMM with month 01..12 is a format error (30)."""
    try:
        return expiry_passed(expiry, today)
    except CardError as exc:
        raise MessageError(str(exc), "14") from None


def fingerprint(tokenizer: PanTokenizer, fields: Fields) -> str:
    """What makes a request "the same request again" (a retry): its message class and every
    field but the MAC, as a keyed digest — the fields include the PAN, so a plain hash would
    let anyone holding the database test candidate PANs against it."""
    get = fields.get
    parts = [request_class(fields.get("t", "0000"))]
    for name in _FINGERPRINTED:
        value = get(name)
        if value is not None:
            parts.append(f"{name}={value};")
    return tokenizer.digest("request-fingerprint", "".join(parts))


def _is_upload_advice(ctx: Context) -> bool:
    """A batch upload advice (0320, 60.3 = 201): not the upload end, not a TC advice."""
    if ctx.kind != TxnType.BATCH_UPLOAD:
        return False
    return F60.decode(ctx.fields["60"]).net_code == NET_BATCH_UPLOAD


def _random_auth_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


class Processor:
    """Stateless between requests except for the RRN sequence, which the single writer owns.

    ``clock`` is the host's local time as its answers state it (fields 12, 13 and 15 where
    the host fills them, the RRN's year and month, card expiry); ``auth_code`` makes each
    approval's field 38. The defaults are the real clock and random codes; fixed ones
    reproduce answers byte for byte (the published protocol examples)."""

    def __init__(
        self,
        hsm: SoftHsm,
        tokenizer: PanTokenizer,
        sealed_pvk: bytes,
        limits: Limits | None = None,
        *,
        clock: Callable[[], datetime] = datetime.now,
        auth_code: Callable[[], str] = _random_auth_code,
    ) -> None:
        self.hsm = hsm
        self.tokenizer = tokenizer
        self.sealed_pvk = sealed_pvk
        self.limits = limits or Limits()
        self.clock = clock
        self.auth_code = auth_code
        self._next_id: int | None = None
        self._merchant_accounts: dict[str, int] = {}
        # (tid, batch_no) of batches read as open. Only settlement closes a batch, and it
        # forgets the terminal's entries; a batch row lost to a rolled-back transaction
        # means the same as an open one (a batch without a row is open).
        self._open_batches: set[tuple[str, str]] = set()

    # -- entry -----------------------------------------------------------------------------

    def prepare(self, ctx: Context) -> None:
        """The work on a request that needs no database — the request fingerprint and the
        card data (parse, Luhn, token) — done before the request joins the writer's queue,
        so the single writer spends its time only on what must be serialized."""
        if ctx.kind in (TxnType.ECHO, TxnType.SIGN_ON):
            return
        ctx.fingerprint = fingerprint(self.tokenizer, ctx.fields)
        ctx.card_read = self._read_card(ctx.fields)

    def _read_card(self, f: Fields) -> CardRead:
        expiry: str | None
        chip_card = False
        try:
            if f.get("35"):
                track = parse_track2(f["35"])
                pan, expiry = track.pan, track.expiry
                chip_card = track.service_code.chip_capable
            elif f.get("2"):
                pan, expiry = normalize_pan(f["2"]), f.get("14")
            else:
                return CardRead(None, None, None, None)
        except CardError as exc:
            return CardRead(None, None, None, str(exc))
        return CardRead(pan, expiry, self.tokenizer.token(pan), None, chip_card)

    def _card_read(self, ctx: Context) -> CardRead:
        if ctx.card_read is None:
            ctx.card_read = self._read_card(ctx.fields)
        return ctx.card_read

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
            ctx.fingerprint = fingerprint(self.tokenizer, ctx.fields)
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

    def _answer_only(self, ctx: Context, response_code: str) -> None:
        ctx.response = {}
        ctx.response_code = response_code
        ctx.status = "declined"
        ctx.transfer_id = None
        ctx.silent = False
        self._respond(ctx)

    # -- de-duplicate ----------------------------------------------------------------------

    def _identity(self, ctx: Context) -> tuple[str, str, str, str]:
        f = ctx.fields
        return (ctx.terminal.tid, request_class(f["t"]), f.get("11", ""), f.get("13", ""))

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

    # -- participants ----------------------------------------------------------------------

    def _card(self, conn: Connection, ctx: Context) -> None:
        read = self._card_read(ctx)
        if read.error is not None:
            raise Decline("14", read.error)
        if read.pan is None:
            raise Decline("30", "no card data")
        ctx.pan, expiry = read.pan, read.expiry
        if ctx.card_row is not None:
            card = ctx.card_row[0]
        else:
            card = Raw.of(conn).first(_SEL_CARD, (read.token,))
        if card is None:
            raise Decline("14", "unknown card")
        ctx.card = card
        status_codes = {"lost": "41", "stolen": "43", "restricted": "62", "do_not_honor": "05"}
        if card.status in status_codes:
            raise Decline(status_codes[card.status], card.status)
        if card.status == "no_answer":
            ctx.silent = True
            raise Decline("91", "issuer does not answer")
        today = self.clock().date()
        if expiry_passed(card.expiry, today) or (expiry and _keyed_expiry_passed(expiry, today)):
            raise Decline("54", "expired")
        entry = ctx.fields.get("22", "")[:2]
        if entry == ENTRY_SWIPE and read.chip_card:
            # A chip card's magnetic stripe is only for when its chip cannot be read, and the
            # terminal says so (entry mode 80, fallback).
            raise Decline("45", "chip card swiped without fallback")
        if entry in (ENTRY_CHIP, ENTRY_CONTACTLESS):
            self._chip(conn, ctx)

    def _chip(self, conn: Connection, ctx: Context) -> None:
        """Card authentication for chip entry: the ARQC in field 55 must be this card's, for
        this amount, at a transaction counter above every one seen before (no replays)."""
        f = ctx.fields
        if not f.get("55"):
            raise Decline("30", "chip entry without ICC data (field 55)")
        try:
            data = read_icc_data(f["55"])
        except CardError as exc:
            raise Decline("30", str(exc)) from None
        if "4" in f and data.amount_minor != int(f["4"]):
            raise Decline("05", "ICC amount differs from field 4")
        psn = f.get("23", "000")[-2:]
        assert ctx.pan is not None
        if not verify_arqc(data, ctx.pan, psn):
            raise Decline("05", "ARQC does not verify")
        card = ctx.card
        if data.atc <= (card.last_atc or 0):
            raise Decline("05", "ATC not above the last one seen (replayed cryptogram)")
        Raw.of(conn).defer(_UPD_LAST_ATC, (data.atc, card.token))
        ctx.chip = (data, psn)

    def _pin(self, conn: Connection, ctx: Context) -> None:
        card, f = ctx.card, ctx.fields
        if not f.get("52"):
            if card.pin_required and not self._no_cvm(ctx):
                raise Decline("55", "PIN required")
            return
        if card.pin_tries >= PIN_TRIES_MAX:
            raise Decline("75", "PIN tries exceeded")
        assert ctx.pan is not None and ctx.terminal.sealed_tpk is not None
        verdict = self.hsm.verify_pin(
            ctx.terminal.tid,
            ctx.terminal.sealed_tpk,
            bytes.fromhex(f["52"]),
            ctx.pan,
            self.sealed_pvk,
            card.pvv,
            card.pvki,
        )
        if verdict == PinCheck.FORMAT_ERROR:
            raise Decline("99", "PIN block format")
        tries = 0 if verdict == PinCheck.OK else card.pin_tries + 1
        if tries != card.pin_tries:
            Raw.of(conn).defer(_UPD_PIN_TRIES, (tries, card.token))
        if verdict == PinCheck.WRONG:
            raise Decline("75" if tries >= PIN_TRIES_MAX else "55", "wrong PIN")

    def _no_cvm(self, ctx: Context) -> bool:
        """A contactless purchase within the no-CVM limit: no PIN needed."""
        f = ctx.fields
        return (
            ctx.kind == TxnType.PURCHASE
            and f.get("22", "")[:2] == ENTRY_CONTACTLESS
            and int(f.get("4") or 0) <= self.limits.contactless_no_cvm_minor
        )

    def _risk(self, ctx: Context) -> None:
        f = ctx.fields
        if f.get("49", self.limits.currency_numeric) != self.limits.currency_numeric:
            raise Decline("13", "currency not accepted")
        amount = int(f.get("4", "0") or 0)
        if amount <= 0:
            raise Decline("13", "zero amount")
        if FORCED_AMOUNT_BASE <= amount < FORCED_AMOUNT_BASE + 100:
            cents = amount - FORCED_AMOUNT_BASE
            if cents == FORCED_NO_ANSWER_CENTS:
                ctx.silent = True
                raise Decline("98", "forced no answer")
            if f"{cents:02d}" in FORCED_CODES:
                raise Decline(f"{cents:02d}", "forced by test amount")
        if amount > self.limits.single_txn_max_minor:
            raise Decline("61", "above single transaction limit")

    def _open_batch(self, conn: Connection, ctx: Context) -> str:
        batch_no = F60.decode(ctx.fields["60"]).batch_no
        key = (ctx.terminal.tid, batch_no)
        if key in self._open_batches:
            return batch_no
        row = Raw.of(conn).first(_SEL_BATCH, key)
        if row is None:
            Raw.of(conn).defer(_INS_BATCH, (*key, "open"))
        elif row.status != "open":
            raise Decline("77", f"batch {batch_no} already settled")
        else:
            self._open_batches.add(key)
        return batch_no

    def _merchant_account(self, conn: Connection, ctx: Context) -> int:
        # A merchant's settlement account never changes once created: cached.
        mid = ctx.terminal.mid
        if mid not in self._merchant_accounts:
            self._merchant_accounts[mid] = int(
                conn.execute(
                    select(merchants.c.account_id).where(merchants.c.mid == mid)
                ).scalar_one()
            )
        return self._merchant_accounts[mid]

    def _transfer_id(self, ctx: Context, suffix: str) -> str:
        tid, cls, stan, mmdd = self._identity(ctx)
        return f"{tid}:{cls}:{mmdd}:{stan}:{suffix}"

    # -- transactions ----------------------------------------------------------------------

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

    def _find_original(self, conn: Connection, **where: Any) -> Any:
        clauses = [getattr(requests.c, k) == v for k, v in where.items()]
        return conn.execute(select(requests).where(and_(*clauses))).first()

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

    def _reject_if_reversed(self, conn: Connection, ctx: Context) -> None:
        """A reversal that arrived before its original leaves a tombstone: the late original
        must never post."""
        if "0400" in ctx.siblings:
            raise Decline("12", "already reversed by the terminal")

    def _reversal(self, conn: Connection, ctx: Context) -> None:
        require(ctx.fields, "3", "4", "41", "42", "60")
        tid, _, stan, mmdd = self._identity(ctx)
        original = conn.execute(
            select(requests).where(
                and_(
                    requests.c.tid == tid,
                    requests.c.stan == stan,
                    requests.c.date_mmdd == mmdd,
                    requests.c.msg_class.in_(("0200", "0220")),
                    requests.c.kind.in_(("purchase", "void", "refund")),
                )
            )
        ).first()
        if original is not None and not _reverses(ctx.fields, original):
            # The terminal's own request never took this identity (it was answered 94, or
            # 12 after a reversal): there is nothing of it to undo, and the request that
            # holds the identity is not this reversal's business.
            raise Unrecorded("25", "the request held under this trace is another one")
        ctx.status, ctx.response_code = "approved", "00"
        if original is None or original.response_code != "00" or original.status == "reversed":
            return  # nothing was posted (or it is already undone): acknowledge, remember
        ctx.original = original
        rid = self._transfer_id(ctx, "reversal")
        if original.kind == "purchase":
            self._undo_purchase(conn, ctx, original, rid)
        elif original.kind == "void":
            self._undo_void(conn, ctx, original, rid)
        elif original.kind == "refund":
            self._undo_refund(conn, ctx, original, rid)
        conn.execute(update(requests).where(requests.c.id == original.id).values(status="reversed"))

    def _undo_void(self, conn: Connection, ctx: Context, void: Any, transfer_id: str) -> None:
        """Take an approved void back: the sale stands again and the card pays it — held
        again while its batch is open, posted at once when the batch has settled (no
        settlement will capture a hold in it any more). A sale reversed since its void
        stays undone."""
        purchase = self._find_original(conn, id=void.original_id)
        if purchase.status != "voided":
            return
        card = self._card_account(conn, purchase.pan_token)
        merchant = self._merchant_account(conn, ctx)
        if purchase.settled:
            charge_id = transfer_id + ":charge"
            ledger.transfer(
                conn, charge_id, card, merchant, purchase.amount_minor, "purchase", force=True
            )
        else:
            charge_id = transfer_id + ":rehold"
            ledger.hold(
                conn, charge_id, card, merchant, purchase.amount_minor, "purchase", force=True
            )
        conn.execute(
            update(requests)
            .where(requests.c.id == purchase.id)
            .values(status="approved", transfer_id=charge_id)
        )

    def _undo_refund(self, conn: Connection, ctx: Context, refund: Any, transfer_id: str) -> None:
        """Take an approved refund back: card → merchant, and the purchase may be refunded
        again by that amount. When the purchase itself was reversed since, its reversal
        took its refunds back already: nothing moves."""
        purchase = self._find_original(conn, id=refund.original_id)
        if purchase.status == "reversed":
            return
        ledger.transfer(
            conn,
            transfer_id,
            self._card_account(conn, purchase.pan_token),
            self._merchant_account(conn, ctx),
            refund.amount_minor,
            "reversal",
            force=True,
        )
        conn.execute(
            update(requests)
            .where(requests.c.id == purchase.id)
            .values(refunded_minor=requests.c.refunded_minor - refund.amount_minor)
        )

    def _card_account(self, conn: Connection, token: str) -> int:
        return int(
            conn.execute(select(cards.c.account_id).where(cards.c.token == token)).scalar_one()
        )

    def _undo_purchase(
        self, conn: Connection, ctx: Context, purchase: Any, transfer_id: str
    ) -> None:
        """Take an approved sale back, with what was refunded of it: the card ends where it
        was before the sale, the merchant likewise, whether the sale was still held or
        already captured."""
        if purchase.status == "voided":
            return
        refunded = int(purchase.refunded_minor)
        if ledger.pending_open(conn, purchase.transfer_id):
            ledger.void_pending(conn, transfer_id, purchase.transfer_id)
            if refunded:  # the refunds of a sale that never stood go back to the merchant
                ledger.transfer(
                    conn,
                    transfer_id + ":refunds",
                    self._card_account(conn, purchase.pan_token),
                    self._merchant_account(conn, ctx),
                    refunded,
                    "reversal",
                    force=True,
                )
            return
        # Already captured at settlement (or charged by a void's reversal): a compensating
        # transfer of what the card has not had back by refunds.
        t = ledger.get_transfer(conn, purchase.transfer_id)
        assert t is not None
        if t.amount_minor - refunded > 0:
            ledger.transfer(
                conn,
                transfer_id,
                t.credit_account_id,
                t.debit_account_id,
                t.amount_minor - refunded,
                "reversal",
                force=True,
            )

    # -- settlement ------------------------------------------------------------------------

    def host_totals(self, conn: Connection, tid: str, batch_no: str) -> SettlementTotals:
        rows = conn.execute(
            select(requests.c.kind, requests.c.amount_minor, requests.c.domestic).where(
                and_(
                    requests.c.tid == tid,
                    requests.c.batch_no == batch_no,
                    requests.c.status == "approved",
                    requests.c.kind.in_(("purchase", "refund")),
                )
            )
        )
        return SettlementTotals.of(
            (bool(row.domestic), row.kind == "refund", row.amount_minor) for row in rows
        )

    def _settle_batch(self, conn: Connection, tid: str, batch_no: str, result: str) -> None:
        """Capture every hold of the batch's approved purchases, at most once each."""
        self._open_batches.discard((tid, batch_no))
        rows = conn.execute(
            select(requests.c.id, requests.c.transfer_id).where(
                and_(
                    requests.c.tid == tid,
                    requests.c.batch_no == batch_no,
                    requests.c.kind == "purchase",
                    requests.c.status == "approved",
                    requests.c.settled.is_(False),
                )
            )
        )
        for row in rows:
            if row.transfer_id and ledger.pending_open(conn, row.transfer_id):
                ledger.post_pending(conn, f"{row.transfer_id}:capture", row.transfer_id)
        conn.execute(
            update(requests)
            .where(and_(requests.c.tid == tid, requests.c.batch_no == batch_no))
            .values(settled=True)
        )
        values = {"status": "settled", "result": result, "settled_at": datetime.now(UTC)}
        exists = conn.execute(
            select(batches.c.status).where(
                and_(batches.c.tid == tid, batches.c.batch_no == batch_no)
            )
        ).first()
        if exists is None:
            conn.execute(batches.insert().values(tid=tid, batch_no=batch_no, **values))
        else:
            conn.execute(
                update(batches)
                .where(and_(batches.c.tid == tid, batches.c.batch_no == batch_no))
                .values(**values)
            )

    def _settlement(self, conn: Connection, ctx: Context) -> None:
        require(ctx.fields, "41", "42", "48", "60")
        batch_no = F60.decode(ctx.fields["60"]).batch_no
        terminal_totals, _ = SettlementTotals.decode(ctx.fields["48"])
        self._open_batches.discard((ctx.terminal.tid, batch_no))  # settled or uploading next
        closed = conn.execute(
            select(batches.c.status, batches.c.result).where(
                and_(batches.c.tid == ctx.terminal.tid, batches.c.batch_no == batch_no)
            )
        ).first()
        state = closed.status if closed is not None else None
        if closed is not None and state == "settled":
            # Settled before (its answer was lost, or the terminal's counters went back):
            # never again. The answer carries the totals it was settled with, so the
            # terminal can tell whether they are its own.
            settled_as = SettleResult(closed.result or SettleResult.BALANCED)
            ours = self.host_totals(conn, ctx.terminal.tid, batch_no)
            ctx.response["48"] = ours.encode(settled_as, saturate=True)
            raise Decline("77", "batch already settled")
        ours = self.host_totals(conn, ctx.terminal.tid, batch_no)
        if ours == terminal_totals:
            self._settle_batch(conn, ctx.terminal.tid, batch_no, SettleResult.BALANCED)
            result = SettleResult.BALANCED
        else:
            result = SettleResult.NOT_BALANCED
            if state is None:
                conn.execute(
                    batches.insert().values(
                        tid=ctx.terminal.tid, batch_no=batch_no, status="uploading"
                    )
                )
            else:
                conn.execute(
                    update(batches)
                    .where(and_(batches.c.tid == ctx.terminal.tid, batches.c.batch_no == batch_no))
                    .values(status="uploading")
                )
            conn.execute(
                update(requests)
                .where(and_(requests.c.tid == ctx.terminal.tid, requests.c.batch_no == batch_no))
                .values(uploaded=False)
            )
        ctx.response["48"] = ours.encode(result, saturate=True)
        ctx.status, ctx.response_code = "approved", "00"

    def _batch_upload(self, conn: Connection, ctx: Context) -> None:
        require(ctx.fields, "41", "42", "60")
        f60 = F60.decode(ctx.fields["60"])
        tid, batch_no = ctx.terminal.tid, f60.batch_no
        state = conn.execute(
            select(batches.c.status).where(
                and_(batches.c.tid == tid, batches.c.batch_no == batch_no)
            )
        ).scalar()
        if state != "uploading":
            raise Decline("12", "no batch upload in progress")
        if f60.net_code != NET_BATCH_UPLOAD_END:
            require(ctx.fields, "4", "37")
            kind = {TYPE_PURCHASE: "purchase", TYPE_REFUND: "refund"}.get(f60.type_code)
            row = self._find_original(conn, tid=tid, batch_no=batch_no, rrn=ctx.fields["37"])
            if (
                kind is None
                or row is None
                or row.kind != kind
                or row.amount_minor != int(ctx.fields["4"])
                # A purchase the host declined, or voided or reversed since, is not one the
                # terminal may claim: confirming it would report the batch balanced while
                # the terminal counts money the host never captures.
                or row.status != "approved"
            ):
                raise Decline("25", "uploaded transaction unknown to the host")
            conn.execute(update(requests).where(requests.c.id == row.id).values(uploaded=True))
            ctx.status, ctx.response_code = "approved", "00"
            return
        # Upload end: what the terminal does not hold as approved never happened for it.
        require(ctx.fields, "48")
        if not ctx.fields["48"].isdigit() or len(ctx.fields["48"]) > 6:
            raise MessageError("48 must hold the uploaded count", "48")
        stale = conn.execute(
            select(requests).where(
                and_(
                    requests.c.tid == tid,
                    requests.c.batch_no == batch_no,
                    requests.c.status == "approved",
                    requests.c.uploaded.is_(False),
                    requests.c.kind.in_(("purchase", "refund")),
                )
            )
        ).all()
        for row in stale:
            rid = f"{tid}:upload:{batch_no}:{row.id}:undo"
            if row.kind == "purchase":
                self._undo_purchase(conn, ctx, row, rid)
            else:
                self._undo_refund(conn, ctx, row, rid)
            conn.execute(update(requests).where(requests.c.id == row.id).values(status="reversed"))
        # The terminal says how many it uploaded; fewer confirmed means it holds approvals the
        # host never gave. The batch settles on the host's records either way; result 2 tells
        # the terminal (and the merchant) that its count was wrong.
        claimed = int(ctx.fields["48"])
        confirmed = conn.execute(
            select(func.count())
            .select_from(requests)
            .where(
                and_(
                    requests.c.tid == tid,
                    requests.c.batch_no == batch_no,
                    requests.c.uploaded.is_(True),
                    requests.c.kind.in_(("purchase", "refund")),
                )
            )
        ).scalar_one()
        result = SettleResult.BALANCED if claimed == confirmed else SettleResult.NOT_BALANCED
        totals = self.host_totals(conn, tid, batch_no)
        self._settle_batch(conn, tid, batch_no, result)
        ctx.response["48"] = totals.encode(result, saturate=True)
        ctx.status, ctx.response_code = "approved", "00"

    # -- TC advice -------------------------------------------------------------------------

    def _tc_advice(self, conn: Connection, ctx: Context) -> None:
        """The card's transaction certificate for an approved chip sale (protocol.md §8.11):
        kept on the sale once it verifies as that card's, for that amount and counter."""
        f = ctx.fields
        require(f, "2", "4", "37", "41", "42", "55", "60")
        read = self._card_read(ctx)
        if read.error is not None or read.pan is None:
            raise Decline("14", read.error or "no card number")
        original = self._find_original(conn, tid=ctx.terminal.tid, rrn=f["37"], kind="purchase")
        if original is None or original.status != "approved" or original.atc is None:
            raise Decline("25", "no approved chip sale with this reference")
        if read.token != original.pan_token:
            raise Decline("14", "card differs from the sale's")
        try:
            data = read_icc_data(f["55"])
        except CardError as exc:
            raise Decline("30", str(exc)) from None
        psn = f.get("23", "000")[-2:]
        if data.tags["9F27"] != CID_TC:
            raise Decline("05", "not a transaction certificate")
        if (data.amount_minor, data.atc) != (original.amount_minor, original.atc):
            raise Decline("05", "TC is for another amount or counter than the sale's")
        if not verify_arqc(data, read.pan, psn):
            raise Decline("05", "TC does not verify")
        if original.tc is not None and original.tc != f["55"]:
            raise Decline("05", "the sale already has another TC")
        conn.execute(update(requests).where(requests.c.id == original.id).values(tc=f["55"]))
        ctx.pan, ctx.original = read.pan, original
        ctx.status, ctx.response_code = "approved", "00"

    # -- sign-on ---------------------------------------------------------------------------

    def _sign_on(self, conn: Connection, ctx: Context) -> None:
        """New working keys for the terminal — unless this sign-on is not newer than the last
        one accepted: the same trace again (a resend) gets the current keys once more, an
        older trace is a replayed capture and is refused (94), so nobody can make the host
        rotate a terminal's keys by replaying its old sign-ons.

        Every answer tells the terminal where the host has it (protocol.md §8.2): 60.2 the
        batch it should be on, 61 the last trace the host holds from it — so a terminal
        whose counters went back (a restored database) moves them forward instead of
        colliding with its own earlier requests."""
        tid = ctx.terminal.tid
        stan = ctx.fields.get("11", "")
        row = conn.execute(select(terminals).where(terminals.c.tid == tid)).one()
        last = row.signon_stan
        self._tell_position(conn, ctx, last)
        if last is not None and stan == last and row.sealed_tpk and row.sealed_tak:
            f62 = self.hsm.rewrap_working_keys(tid, row.sealed_tmk, row.sealed_tpk, row.sealed_tak)
            ctx.response["62"] = f62.hex().upper()
            ctx.response_code = "00"
            return
        if last is not None and not trace_after(stan, last):
            ctx.response_code = "94"
            return
        sealed_tpk, sealed_tak, f62 = self.hsm.new_working_keys(tid, ctx.terminal.sealed_tmk)
        conn.execute(
            update(terminals)
            .where(terminals.c.tid == tid)
            .values(
                sealed_tpk=sealed_tpk,
                sealed_tak=sealed_tak,
                signed_on_at=datetime.now(UTC),
                signon_stan=stan,
            )
        )
        ctx.new_keys = (sealed_tpk, sealed_tak)
        ctx.response["62"] = f62.hex().upper()
        ctx.response_code = "00"

    def _tell_position(self, conn: Connection, ctx: Context, signon_stan: str | None) -> None:
        """60.2: the terminal's open batch at the host, or the one after its last settled
        batch; 61: that batch, the latest trace the host has seen from the terminal (its
        requests and its last accepted sign-on) and that trace's date."""
        tid = ctx.terminal.tid
        latest = conn.execute(
            select(requests.c.stan, requests.c.date_mmdd, requests.c.batch_no)
            .where(requests.c.tid == tid)
            .order_by(requests.c.id.desc())
            .limit(1)
        ).first()
        settled = conn.execute(
            select(func.max(batches.c.batch_no)).where(
                and_(batches.c.tid == tid, batches.c.status == "settled")
            )
        ).scalar()
        batch_no = latest.batch_no if latest is not None else "000001"
        if settled is not None and not trace_after(batch_no, settled):
            batch_no = f"{int(settled) % COUNTER_MODULUS + 1:06d}"
        trace, mmdd = (latest.stan, latest.date_mmdd) if latest is not None else ("000000", "0000")
        if signon_stan is not None and (latest is None or trace_after(signon_stan, trace)):
            trace, mmdd = signon_stan, "0000"
        ctx.response["60"] = F60(TYPE_NETWORK, batch_no, NET_SIGN_ON).encode()
        ctx.response["61"] = F61(batch_no, trace, mmdd).encode()

    # -- respond & persist -----------------------------------------------------------------

    def _allocate_id(self, conn: Connection) -> int:
        if self._next_id is None:
            current = conn.execute(select(func.max(requests.c.id))).scalar()
            self._next_id = int(current or 0) + 1
        value = self._next_id
        self._next_id += 1
        return value

    def _respond(self, ctx: Context) -> None:
        f = ctx.fields
        resp: Fields = {k: f[k] for k in _ECHO_FIELDS if k in f}
        if ctx.kind in _ADVICES and "37" in f:
            resp["37"] = f["37"]
        resp.update(ctx.response)
        now = self.clock()
        mmdd = f"{now.month:02d}{now.day:02d}"
        resp.setdefault("12", f"{now.hour:02d}{now.minute:02d}{now.second:02d}")
        resp.setdefault("13", mmdd)
        resp["39"] = ctx.response_code
        if ctx.chip is not None and ctx.pan is not None:
            # Issuer authentication data for the card: ARPC over its ARQC and the verdict.
            data, psn = ctx.chip
            tag91 = arpc_tag91(data, ctx.pan, psn, approved=ctx.response_code == "00")
            resp["55"] = tag91.hex().upper()
        resp["41"] = ctx.terminal.tid
        resp["42"] = ctx.terminal.mid
        if ctx.kind in (
            TxnType.PURCHASE,
            TxnType.VOID,
            TxnType.REFUND,
            TxnType.SETTLEMENT,
            TxnType.BALANCE,
        ):
            resp["15"] = mmdd
        ctx.response = resp

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
