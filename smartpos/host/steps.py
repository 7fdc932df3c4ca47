"""The host processor's shared ground: its state between requests and the small steps
every kind of request uses (the card read, the request identity, the open batch, the
merchant's account, the answer). The steps of each kind of request live beside it:
``cardsteps`` (card, chip, PIN, risk), ``reversal``, ``settlement``, ``signon``, and
``processor`` (de-duplicate, the money-moving transactions, persist).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select

from smartpos.cards import CardError, PanTokenizer, expiry_passed, normalize_pan
from smartpos.cards.emv import arpc_tag91
from smartpos.cards.track import parse_track2
from smartpos.db.raw import Query, Raw
from smartpos.host.context import CardRead, Context, Decline
from smartpos.host.tables import cards, merchants, requests
from smartpos.keys.hsm import PinScheme, SoftHsm
from smartpos.protocol.codec import Fields, MessageError
from smartpos.protocol.messages import (
    F60,
    TxnType,
    request_class,
)
from smartpos.protocol.spec import SUPPORTED_FIELDS

# The CUP dialect's fields but the MAC (smartpos.host.processor.fingerprinted).
_DEFAULT_FINGERPRINTED = tuple(sorted((k for k in SUPPORTED_FIELDS if k != "64"), key=int))

PIN_TRIES_MAX = 3
# Test amounts (docs/test-cards.md): 9,000.00–9,000.99 force the response code in the cents.
FORCED_AMOUNT_BASE = 900_000
FORCED_CODES = {"05", "12", "13", "51", "61", "91", "96"}
FORCED_NO_ANSWER_CENTS = 98

log = logging.getLogger("smartpos.host")

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


def _random_auth_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


class Steps:
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
        fingerprinted: tuple[str, ...] | None = None,
        pin_scheme: PinScheme = PinScheme.TPK_ISO0,
        ksn_field: int | None = None,
        sealed_bdk: bytes | None = None,
        keys_at_signon: bool = True,
    ) -> None:
        self.hsm = hsm
        # Whether a sign-on hands out new working keys (field 62), or the profile's keys were
        # loaded at provisioning (or there are none) and a sign-on only says where the host
        # has the terminal.
        self.keys_at_signon = keys_at_signon
        # How the profile's terminals protect PINs (docs/pin-security.md): the field that
        # carries a DUKPT request's KSN, and the BDK (sealed) its keys derive from.
        self.pin_scheme = PinScheme(pin_scheme)
        dukpt = self.pin_scheme in (PinScheme.TDES_DUKPT_ISO0, PinScheme.AES_DUKPT_ISO4)
        if dukpt and (ksn_field is None or sealed_bdk is None):
            raise ValueError(f"{self.pin_scheme} needs the KSN field and the BDK")
        self.ksn_field = str(ksn_field) if dukpt else None
        self.sealed_bdk = sealed_bdk if dukpt else None
        self.pin_not_tpk = self.pin_scheme is not PinScheme.TPK_ISO0  # one test per PIN
        # aes-iso4: tid -> (sealed TMK, sealed AES PIN key), read on a terminal's first PIN.
        # The TMK is new at every provisioning, so a re-provisioned terminal is read again.
        self._aes_pin_keys: dict[str, tuple[bytes, bytes | None]] = {}
        # The fields that make two requests the same request (the dialect's, but the MAC).
        self.fingerprinted = fingerprinted or _DEFAULT_FINGERPRINTED
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

    def _answer_only(self, ctx: Context, response_code: str) -> None:
        ctx.response = {}
        ctx.response_code = response_code
        ctx.status = "declined"
        ctx.transfer_id = None
        ctx.silent = False
        self._respond(ctx)

    def _identity(self, ctx: Context) -> tuple[str, str, str, str]:
        f = ctx.fields
        return (ctx.terminal.tid, request_class(f["t"]), f.get("11", ""), f.get("13", ""))

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

    def _find_original(self, conn: Connection, **where: Any) -> Any:
        clauses = [getattr(requests.c, k) == v for k, v in where.items()]
        return conn.execute(select(requests).where(and_(*clauses))).first()

    def _card_account(self, conn: Connection, token: str) -> int:
        return int(
            conn.execute(select(cards.c.account_id).where(cards.c.token == token)).scalar_one()
        )

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
