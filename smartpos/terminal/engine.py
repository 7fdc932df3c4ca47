"""The terminal's transaction state machine (DESIGN §3.2).

``idle → card read → amount → PIN → online request → approved / declined / no answer →
receipt → idle``. Before a money-moving request leaves, the journal row and an *armed*
reversal are committed. A valid answer disarms the reversal in the same commit that records
the outcome; a timeout, a lost link, a bad MAC or a crash leaves it pending, and it is sent
(0400, repeats 0401) before anything else until the host acknowledges it.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, select, update

from smartpos.cards import CardError, PanTokenizer, brand_of, mask_pan
from smartpos.cards.emv import CID_TC, SimulatedChip, TerminalData, sandbox_application
from smartpos.cards.reading import CardInput
from smartpos.cards.tlv import decode_tlv, encode_tlv
from smartpos.db.lock import ProcessLock
from smartpos.keys.keys import KeyCheckError, signon_mac_key, unpack_f62
from smartpos.keys.mac import compute_mac, verify_mac
from smartpos.keys.pinblock import encrypt_pin_block
from smartpos.keys.vault import Vault
from smartpos.money import Money
from smartpos.protocol import codec
from smartpos.protocol.codec import Fields, MessageError
from smartpos.protocol.codes import (
    REVERSAL_MAC_ERROR,
    REVERSAL_NO_RESPONSE,
    REVERSAL_OTHER,
    describe,
)
from smartpos.protocol.messages import (
    ENTRY_CHIP,
    ENTRY_CONTACTLESS,
    ENTRY_NAMES,
    ENTRY_SWIPE,
    F60,
    F61,
    NET_BATCH_UPLOAD,
    NET_BATCH_UPLOAD_END,
    NET_ECHO,
    NET_SETTLE,
    NET_SIGN_ON,
    NET_TC_ADVICE,
    PROC_BALANCE,
    PROC_PURCHASE,
    PROC_REFUND,
    PROC_VOID,
    TOTALS_AMOUNT_MAX_MINOR,
    TYPE_BALANCE,
    TYPE_NETWORK,
    TYPE_PURCHASE,
    TYPE_REFUND,
    TYPE_VOID,
    SettlementTotals,
    SettleResult,
    TotalsGroup,
    entry_mode,
    parse_f54,
    response_mti,
    trace_after,
)
from smartpos.protocol.profiles import AcquirerProfile
from smartpos.terminal.link import Link, LinkError
from smartpos.terminal.tables import (
    chip_counters,
    journal,
    reversals,
    settlements,
    terminal_config,
)

OPERATOR = "01 "
STAN_MAX = 999_999


class TerminalError(Exception):
    """A request the terminal refuses before anything is sent (clear message, no change)."""


CHIP_PSN = "01"  # PAN sequence number of the sandbox's simulated chip cards
_TC_PAN = b"tc-advice-pan"  # vault context of a PAN kept sealed for its TC advice
_RRN = re.compile(r"[0-9A-Za-z]{12}")  # field 37, an12
# Answers to a reversal saying the host holds no request of ours under its trace (25: another
# request holds it; 94: another reversal does): nothing of ours was posted (protocol.md §9.3).
_NOT_HELD = ("25", "94")
_ICC_ON_SLIP = (("AID", "84"), ("ARQC", "9F26"), ("ATC", "9F36"), ("TVR", "95"))


@dataclass
class TxnResult:
    result: str  # approved | declined | error
    response_code: str
    message: str
    kind: str
    amount_minor: int = 0
    currency: str = "CNY"
    stan: str = ""
    invoice_no: str = ""
    batch_no: str = ""
    auth_code: str = ""
    rrn: str = ""
    pan_masked: str = ""
    brand: str = ""
    entry_mode: str = ""
    reversal: str | None = None  # None | "sent" | "queued"
    balance_minor: int | None = None
    journal_id: int | None = None
    pin_verified: bool = False
    icc: dict[str, str] = field(default_factory=dict)  # chip sale: AID, ARQC, ATC, TVR, TC (hex)
    app_label: str = ""  # chip sale: the card application's label

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> datetime:
    return datetime.now(UTC)


def _unpredictable_number() -> bytes:
    """EMV tag 9F37: four random bytes the terminal gives the card for its cryptogram."""
    return os.urandom(4)


class Terminal:
    def __init__(
        self,
        engine: Engine,
        vault: Vault,
        profile: AcquirerProfile,
        link: Link,
        *,
        currency: str = "CNY",
        clock: Callable[[], datetime] = datetime.now,
        lock: ProcessLock | None = None,
        unpredictable: Callable[[], bytes] = _unpredictable_number,
    ) -> None:
        self._lock = lock  # held for this terminal by its opener, released by close()
        self.engine = engine
        self.vault = vault
        self.profile = profile
        self.link = link
        self.currency = currency
        self.clock = clock
        self.unpredictable = unpredictable  # the chip's 9F37 for each GENERATE AC
        with engine.connect() as conn:
            cfg = conn.execute(select(terminal_config).where(terminal_config.c.id == 1)).first()
        if cfg is None:
            raise TerminalError("terminal is not provisioned: run `smartpos terminal provision`")
        self.tid, self.mid, self.merchant_name = cfg.tid, cfg.mid, cfg.merchant_name
        self.tokenizer = PanTokenizer(vault.unseal(cfg.sealed_token_key, b"token_key"))
        self._tmk = vault.unseal(cfg.sealed_tmk, b"tmk:" + cfg.tid.encode())
        self._tpk = vault.unseal(cfg.sealed_tpk, b"tpk") if cfg.sealed_tpk else None
        self._tak = vault.unseal(cfg.sealed_tak, b"tak") if cfg.sealed_tak else None

    async def close(self) -> None:
        """Close the link and let the next command have the terminal."""
        await self.link.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- counters & state ------------------------------------------------------------------

    def _cfg(self, conn: Connection) -> Any:
        return conn.execute(select(terminal_config).where(terminal_config.c.id == 1)).one()

    def batch_no(self) -> str:
        with self.engine.connect() as conn:
            return f"{self._cfg(conn).batch_no:06d}"

    def _next_stan(self, conn: Connection) -> str:
        cfg = self._cfg(conn)
        stan = cfg.stan % STAN_MAX + 1
        conn.execute(update(terminal_config).where(terminal_config.c.id == 1).values(stan=stan))
        return f"{stan:06d}"

    def _next_invoice(self, conn: Connection) -> str:
        cfg = self._cfg(conn)
        inv = cfg.invoice_no % STAN_MAX + 1
        conn.execute(
            update(terminal_config).where(terminal_config.c.id == 1).values(invoice_no=inv)
        )
        return f"{inv:06d}"

    def _base(self, mti: str, stan: str, now: datetime) -> Fields:
        return {
            "t": mti,
            "11": stan,
            "12": now.strftime("%H%M%S"),
            "13": now.strftime("%m%d"),
            "41": self.tid,
            "42": self.mid,
        }

    # -- messages --------------------------------------------------------------------------

    def _mac(self, data: bytes) -> bytes:
        if self._tak is None:
            raise TerminalError("no MAC key: sign on first (`smartpos terminal signon`)")
        return compute_mac(self.profile.mac_algorithm, self._tak, data)

    def _encode(self, fields: Fields, maced: bool) -> bytes:
        return codec.encode(fields, mac=self._mac if maced and self.profile.mac_required else None)

    def _check_response(self, request: Fields, raw: bytes, maced: bool) -> Fields:
        """Decode and match an answer. Raises MessageError (with response_code A0 for a bad
        MAC) when it cannot be trusted."""
        resp = codec.decode(raw)
        if (
            resp["t"] != response_mti(request["t"])
            or resp.get("11") != request.get("11")
            or resp.get("41") != self.tid
        ):
            raise MessageError("answer does not match the request", "11")
        if "4" in request and resp.get("4", request["4"]) != request["4"]:
            raise MessageError("answer carries another amount", "4")
        if maced and self.profile.mac_required:
            if "64" in resp:
                assert self._tak is not None
                data, mac = codec.mac_input(raw)
                if not verify_mac(self.profile.mac_algorithm, self._tak, data, mac):
                    raise MessageError(
                        "answer MAC does not verify", "64", response_code=REVERSAL_MAC_ERROR
                    )
            elif resp.get("39") == "00":
                raise MessageError("approval without a MAC", "64", response_code=REVERSAL_MAC_ERROR)
        return resp

    # -- network management ----------------------------------------------------------------

    async def sign_on(self, *, _caught_up: bool = False) -> TxnResult:
        """Sign on (0800/0810): new working keys, and the counters caught up with what the
        host holds from this terminal (protocol.md §8.2). A sign-on refused as older than
        the last one accepted (94: the terminal's trace went back) is repeated once from
        the host's latest trace."""
        with self.engine.begin() as conn:
            stan = self._next_stan(conn)
        now = self.clock()
        req = self._base("0800", stan, now)
        req["60"] = F60(TYPE_NETWORK, self.batch_no(), NET_SIGN_ON).encode()
        req["63"] = OPERATOR
        # MACed under the TMK's sign-on variant: proves to the host that this terminal holds
        # the TMK before it hands out new working keys.
        signon_key = signon_mac_key(self._tmk)
        alg = self.profile.mac_algorithm
        message = codec.encode(
            req,
            mac=(lambda d: compute_mac(alg, signon_key, d)) if self.profile.mac_required else None,
        )
        try:
            resp = self._check_response(req, await self.link.exchange(message), False)
        except (LinkError, MessageError) as exc:
            return TxnResult("error", "", f"sign-on failed: {exc}", "sign_on", stan=stan)
        rc = resp.get("39", "")
        moved, behind = self._catch_up(resp)
        if rc == "94" and moved and not _caught_up:
            return await self.sign_on(_caught_up=True)
        if rc != "00":
            return TxnResult("declined", rc, describe(rc).en, "sign_on", stan=stan)
        if "62" not in resp:
            return TxnResult(
                "error", rc, "the host approved the sign-on but sent no keys", "sign_on", stan=stan
            )
        try:
            keys = unpack_f62(self._tmk, bytes.fromhex(resp["62"]))
        except (ValueError, KeyCheckError) as exc:
            return TxnResult("error", rc, f"sign-on keys refused: {exc}", "sign_on", stan=stan)
        with self.engine.begin() as conn:
            conn.execute(
                update(terminal_config)
                .where(terminal_config.c.id == 1)
                .values(
                    sealed_tpk=self.vault.seal(keys.tpk, b"tpk"),
                    sealed_tak=self.vault.seal(keys.tak, b"tak"),
                    signed_on_at=_now(),
                )
            )
        self._tpk, self._tak = keys.tpk, keys.tak
        result = TxnResult(
            "approved", rc, "signed on: new PIN and MAC keys loaded", "sign_on", stan=stan
        )
        if behind:
            # This terminal's open batch is one the host has closed since (a restored
            # database): close it here too, then move on to the host's batch.
            await self._catch_up_settled_batch(result)
            self._catch_up(resp)
        return result

    def _catch_up(self, resp: Fields) -> tuple[bool, bool]:
        """Move the counters forward to where the host has this terminal (a sign-on answer's
        60.2 and 61): the trace past the latest the host holds, the batch to the host's if
        it is ahead and this terminal's own batch holds nothing. Never backwards. Returns
        (whether anything moved, whether the terminal's own batch is behind the host's and
        holds transactions — a batch the host has closed)."""
        try:
            host = F61.decode(resp["61"]) if "61" in resp else None
            host_batch = F60.decode(resp["60"]).batch_no if "60" in resp else None
        except MessageError:
            return False, False
        moved: dict[str, int] = {}
        behind = False
        with self.engine.begin() as conn:
            cfg = self._cfg(conn)
            if host is not None and trace_after(host.stan, f"{cfg.stan:06d}"):
                moved["stan"] = int(host.stan)
            own_batch = f"{cfg.batch_no:06d}"
            if host_batch is not None and trace_after(host_batch, own_batch):
                if self._batch_has_transactions(conn, own_batch):
                    behind = True
                else:
                    moved["batch_no"] = int(host_batch)
            if moved:
                conn.execute(
                    update(terminal_config).where(terminal_config.c.id == 1).values(**moved)
                )
        return bool(moved), behind

    @staticmethod
    def _batch_has_transactions(conn: Connection, batch_no: str) -> bool:
        """Whether the batch holds anything to settle: an approved (or since voided) sale,
        refund or void not settled yet."""
        return (
            conn.execute(
                select(journal.c.id)
                .where(
                    and_(
                        journal.c.batch_no == batch_no,
                        journal.c.status.in_(("approved", "voided")),
                        journal.c.settled.is_(False),
                    )
                )
                .limit(1)
            ).first()
            is not None
        )

    async def echo(self) -> TxnResult:
        with self.engine.begin() as conn:
            stan = self._next_stan(conn)
        req = self._base("0820", stan, self.clock())
        req["60"] = F60(TYPE_NETWORK, self.batch_no(), NET_ECHO).encode()
        try:
            resp = self._check_response(
                req, await self.link.exchange(self._encode(req, False)), False
            )
        except (LinkError, MessageError) as exc:
            return TxnResult("error", "", f"echo failed: {exc}", "echo", stan=stan)
        rc = resp.get("39", "")
        return TxnResult(
            "approved" if rc == "00" else "declined", rc, describe(rc).en, "echo", stan=stan
        )

    # -- card transactions -----------------------------------------------------------------

    def _card_fields(self, card: CardInput, pin: str | None) -> Fields:
        if card.entry == ENTRY_SWIPE and card.chip_card:
            raise TerminalError(
                "chip card: insert or tap it (swipe it only when its chip cannot be read:"
                " --fallback)"
            )
        f: Fields = {"22": entry_mode(card.entry, pin is not None), "25": "00"}
        if card.track2:
            f["35"] = card.track2.replace("=", "D")
        else:
            f["2"] = card.pan
            if card.expiry:
                f["14"] = card.expiry
        if pin is not None:
            if self._tpk is None:
                raise TerminalError("no PIN key: sign on first (`smartpos terminal signon`)")
            f["26"] = "12"
            f["52"] = encrypt_pin_block(self._tpk, pin, card.pan).hex().upper()
            f["53"] = "2600000000000000"
        return f

    async def sale(self, amount_minor: int, card: CardInput, pin: str | None = None) -> TxnResult:
        if amount_minor <= 0:
            raise TerminalError("amount must be above zero")
        Money.of(amount_minor, self.currency)
        if card.entry == ENTRY_CONTACTLESS:
            limit = self.profile.contactless_no_cvm_limit_minor
            if amount_minor <= limit:
                pin = None  # QuickPass small amount: no PIN asked, no signature
            elif pin is None:
                raise TerminalError(
                    "PIN required: contactless sales above "
                    f"{Money.of(limit, self.currency)} need the cardholder's PIN (--pin)"
                )
        fields = self._card_fields(card, pin)
        fields.update({"3": PROC_PURCHASE, "4": f"{amount_minor:012d}"})
        icc = self._add_arqc(fields, card, amount_minor) if card.reads_chip else None
        return await self._money_txn(
            "sale", "0200", TYPE_PURCHASE, fields, amount_minor, card, pin is not None, icc=icc
        )

    def _add_arqc(
        self, fields: Fields, card: CardInput, amount_minor: int, txn_type: str = "00"
    ) -> dict[str, bytes]:
        """GENERATE AC on the (simulated) chip: the next transaction counter, an ARQC over
        this terminal's data for this amount; its data objects go into field 55 (and the
        PAN sequence number into 23) and are returned."""
        token = self.tokenizer.token(card.pan)
        with self.engine.begin() as conn:
            atc = conn.execute(
                select(chip_counters.c.atc).where(chip_counters.c.pan_token == token)
            ).scalar()
            if atc is None:
                atc = 1
                conn.execute(chip_counters.insert().values(pan_token=token, atc=atc))
            else:
                atc += 1
                conn.execute(
                    update(chip_counters).where(chip_counters.c.pan_token == token).values(atc=atc)
                )
        if atc > 0xFFFF:
            raise TerminalError("the card's transaction counter is exhausted")
        terminal_data = TerminalData(
            amount_minor,
            currency=self._ccy(),
            date=self.clock().strftime("%y%m%d"),
            txn_type=txn_type,
            unpredictable=self.unpredictable(),
        )
        icc = SimulatedChip(card.pan, CHIP_PSN).generate_arqc(terminal_data, atc)
        fields["23"] = f"0{CHIP_PSN}"
        fields["55"] = encode_tlv(icc).hex().upper()
        return icc

    async def void(self, *, stan: str | None = None, invoice_no: str | None = None) -> TxnResult:
        with self.engine.connect() as conn:
            where = (journal.c.stan == stan) if stan else (journal.c.invoice_no == invoice_no)
            orig = conn.execute(
                select(journal)
                .where(and_(where, journal.c.kind == "sale"))
                .order_by(journal.c.id.desc())
            ).first()
        if orig is None:
            raise TerminalError("no such sale in this terminal's journal")
        if orig.status != "approved":
            raise TerminalError(f"the sale is {orig.status}; only approved sales can be voided")
        if orig.settled or orig.batch_no != self.batch_no():
            raise TerminalError("the sale is in a settled batch: refund it instead")
        if orig.refunded_minor:
            raise TerminalError("the sale was partly refunded: refund the rest instead")
        fields: Fields = {
            "3": PROC_VOID,
            "4": f"{orig.amount_minor:012d}",
            "25": "00",
            "37": orig.rrn,
            "61": F61(orig.batch_no, orig.stan, orig.date_mmdd).encode(),
        }
        if orig.auth_code:
            fields["38"] = orig.auth_code
        return await self._money_txn(
            "void", "0200", TYPE_VOID, fields, orig.amount_minor, None, False, original=orig
        )

    async def refund(self, amount_minor: int, card: CardInput, *, rrn: str) -> TxnResult:
        if amount_minor <= 0:
            raise TerminalError("amount must be above zero")
        if not _RRN.fullmatch(rrn):
            raise TerminalError(
                f"{rrn!r} is not a reference number: an RRN is the 12 letters and digits "
                "printed on the sale's slip"
            )
        with self.engine.connect() as conn:
            orig = conn.execute(
                select(journal).where(and_(journal.c.rrn == rrn, journal.c.kind == "sale"))
            ).first()
        if orig is not None:
            if orig.status != "approved":
                raise TerminalError(f"the original sale is {orig.status}: nothing to refund")
            left = orig.amount_minor - orig.refunded_minor
            if amount_minor > left:
                raise TerminalError(
                    f"refund {Money.of(amount_minor, self.currency).format()} exceeds what is "
                    f"left of the sale ({Money.of(left, self.currency).format()})"
                )
            if orig.pan_token and self.tokenizer.token(card.pan) != orig.pan_token:
                raise TerminalError("this is not the card the sale was paid with")
        fields = self._card_fields(card, None)
        fields.update({"3": PROC_REFUND, "4": f"{amount_minor:012d}", "37": rrn})
        if orig is not None:
            fields["61"] = F61(orig.batch_no, orig.stan, orig.date_mmdd).encode()
        return await self._money_txn(
            "refund", "0220", TYPE_REFUND, fields, amount_minor, card, False, original=orig
        )

    async def balance(self, card: CardInput, pin: str | None) -> TxnResult:
        await self._require_no_pending_reversal()
        fields = self._card_fields(card, pin)
        fields["3"] = PROC_BALANCE
        if card.reads_chip:
            # The card authenticates itself online for an inquiry too (amount 0, type 31).
            self._add_arqc(fields, card, 0, txn_type="31")
        with self.engine.begin() as conn:
            stan = self._next_stan(conn)
        req = {
            **self._base("0200", stan, self.clock()),
            **fields,
            "49": self._ccy(),
            "60": F60(TYPE_BALANCE, self.batch_no()).encode(),
        }
        base = TxnResult(
            "error",
            "",
            "",
            "balance",
            stan=stan,
            pan_masked=mask_pan(card.pan),
            brand=brand_of(card.pan).value,
            entry_mode=ENTRY_NAMES[card.entry],
        )
        try:
            resp = self._check_response(
                req, await self.link.exchange(self._encode(req, True)), True
            )
        except (LinkError, MessageError) as exc:
            base.message = f"balance inquiry failed: {exc}"
            return base
        rc = resp.get("39", "")
        base.response_code, base.message = rc, _decline_text(rc, pin is not None)
        base.result = "approved" if rc == "00" else "declined"
        base.pin_verified = pin is not None and rc == "00"
        if rc == REVERSAL_MAC_ERROR:
            await self._sign_on_again(base)
        if rc == "00" and "54" in resp:
            base.balance_minor = parse_f54(resp["54"])
        return base

    def _ccy(self) -> str:
        return Money.of(0, self.currency).currency.numeric

    async def _money_txn(
        self,
        kind: str,
        mti: str,
        type_code: str,
        fields: Fields,
        amount_minor: int,
        card: CardInput | None,
        pin_entered: bool,
        original: Any = None,
        icc: dict[str, bytes] | None = None,
    ) -> TxnResult:
        await self._require_no_pending_reversal()
        if self._tak is None and self.profile.mac_required:
            raise TerminalError("no MAC key: sign on first (`smartpos terminal signon`)")
        brand = brand_of(card.pan).value if card else (original.brand if original else "")
        settled_first = await self._make_room(kind, amount_minor, brand)
        result = await self._send_money_txn(
            kind, mti, type_code, fields, amount_minor, card, pin_entered, original, icc
        )
        if settled_first is not None:
            result.message += f" ({settled_first})"
        return result

    async def _make_room(self, kind: str, amount_minor: int, brand: str) -> str | None:
        """Settle the open batch first if this sale or refund would not fit in it: at most
        the profile's ``batch_max_transactions`` sales and refunds, and no card group's
        sales or refunds beyond what field 48's n12 amounts hold (§6.5) — a batch that
        could not be settled would keep every hold in it on the cardholders' funds. As real
        terminals do, the terminal closes a full batch by itself. Returns what it did."""
        if kind not in ("sale", "refund"):
            return None  # voids are not counted in the totals
        batch_no = self.batch_no()
        with self.engine.connect() as conn:
            totals = self.totals(conn, batch_no)
        group = totals.domestic if brand == "unionpay" else totals.foreign
        count = sum(g.debit_count + g.credit_count for g in (totals.domestic, totals.foreign))
        so_far = group.debit_amount_minor if kind == "sale" else group.credit_amount_minor
        if (
            count < self.profile.batch_max_transactions
            and so_far + amount_minor <= TOTALS_AMOUNT_MAX_MINOR
        ):
            return None
        try:
            report = await self.settle()
        except TerminalError as exc:
            raise TerminalError(
                f"batch {batch_no} is full ({count} transactions): settling it first "
                f"failed ({exc}); settle, then retry"
            ) from None
        return f"batch {batch_no} was full and has been settled: {report['result']}"

    async def _send_money_txn(
        self,
        kind: str,
        mti: str,
        type_code: str,
        fields: Fields,
        amount_minor: int,
        card: CardInput | None,
        pin_entered: bool,
        original: Any,
        icc: dict[str, bytes] | None,
    ) -> TxnResult:
        pan_masked = mask_pan(card.pan) if card else (original.pan_masked if original else "")
        brand = brand_of(card.pan).value if card else (original.brand if original else "")
        entry = (
            ENTRY_NAMES.get(card.entry, "") if card else (original.entry_mode if original else "")
        )
        now = self.clock()
        batch_no = self.batch_no()
        # 1. Journal the request and arm its reversal, durably, before anything is sent —
        # and only once it is known to encode: a request the terminal cannot even write
        # (a malformed reference, say) is refused here, its trace not used, nothing armed.
        with self.engine.begin() as conn:
            stan = self._next_stan(conn)
            invoice = self._next_invoice(conn)
            req = {
                **self._base(mti, stan, now),
                **fields,
                "49": self._ccy(),
                "60": F60(type_code, batch_no).encode(),
            }
            try:
                message = self._encode(req, True)
            except MessageError as exc:
                raise TerminalError(f"the request cannot be sent: {exc}") from None
            jid = conn.execute(
                journal.insert().values(
                    kind=kind,
                    stan=stan,
                    date_mmdd=now.strftime("%m%d"),
                    local_time=now.strftime("%H%M%S"),
                    invoice_no=invoice,
                    batch_no=batch_no,
                    amount_minor=amount_minor,
                    currency=self.currency,
                    pan_token=self.tokenizer.token(card.pan)
                    if card
                    else (original.pan_token if original else None),
                    pan_masked=pan_masked,
                    brand=brand,
                    entry_mode=entry,
                    pin_verified=pin_entered,
                    status="pending",
                    original_id=original.id if original is not None else None,
                    refunded_minor=0,
                    settled=False,
                    created_at=_now(),
                    updated_at=_now(),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            conn.execute(
                reversals.insert().values(
                    journal_id=jid,
                    status="armed",
                    reason=REVERSAL_NO_RESPONSE,
                    proc_code=fields["3"],
                    type_code=type_code,
                    entry_mode=fields.get("22", "000"),
                    attempts=0,
                    created_at=_now(),
                    updated_at=_now(),
                )
            )
        result = TxnResult(
            "error",
            "",
            "",
            kind,
            amount_minor,
            self.currency,
            stan,
            invoice,
            batch_no,
            pan_masked=pan_masked,
            brand=brand,
            entry_mode=entry,
            journal_id=jid,
            pin_verified=False,  # set once the host approved it
        )
        if icc is not None:
            result.icc = {name: icc[tag].hex().upper() for name, tag in _ICC_ON_SLIP}
            assert card is not None
            result.app_label = sandbox_application(card.pan)[1]
        # 2. Online request.
        try:
            raw = await self.link.exchange(message)
            resp = self._check_response(req, raw, True)
        except LinkError as exc:
            if not exc.sent:
                self._finish(jid, "error", "", str(exc), disarm=True)
                result.message = f"{exc}; nothing was charged"
                return result
            return await self._after_failure(result, jid, REVERSAL_NO_RESPONSE, str(exc))
        except MessageError as exc:
            reason = exc.response_code if exc.response_code == REVERSAL_MAC_ERROR else "06"
            return await self._after_failure(result, jid, reason, str(exc))
        # 3. An inserted chip card checks the issuer's answer (tag 91) in its second GENERATE
        # AC: a TC accepts the approval, an AAC refuses it — then the host's approval must
        # be undone like an unanswered request. (A tapped card has left the field by now:
        # contactless ends online.)
        rc = resp.get("39", "")
        chip_inserted = card is not None and card.entry == ENTRY_CHIP
        tc: tuple[str, bytes] | None = None
        if icc is not None and chip_inserted and rc == "00":
            assert card is not None
            second = self._second_generate_ac(icc, card, resp)
            if second["9F27"] != CID_TC:
                return await self._after_failure(
                    result, jid, REVERSAL_OTHER, "the card refused the issuer's answer"
                )
            result.icc["TC"] = second["9F26"].hex().upper()
            tc = (encode_tlv(second).hex().upper(), self.vault.seal(card.pan.encode(), _TC_PAN))
        # 4. A trusted answer: record it and disarm the reversal in one commit.
        result.response_code, result.message = rc, _decline_text(rc, pin_entered)
        result.pin_verified = pin_entered and rc == "00"
        result.auth_code, result.rrn = resp.get("38", ""), resp.get("37", "")
        if rc == "00":
            result.result = "approved"
            self._finish(
                jid,
                "approved",
                rc,
                result.message,
                disarm=True,
                auth_code=result.auth_code,
                rrn=result.rrn,
                original=original,
                kind=kind,
                amount_minor=amount_minor,
                tc=tc,
            )
        else:
            result.result = "declined"
            self._finish(jid, "declined", rc, result.message, disarm=True, rrn=result.rrn)
            if rc == "77":
                await self._catch_up_settled_batch(result)
            elif rc == REVERSAL_MAC_ERROR:
                await self._sign_on_again(result)
            elif rc == "94":
                # The host holds another request under this trace: this terminal's counter
                # went back (a restored database). The sign-on answer says where the host
                # has it, and the counters move past that.
                await self._sign_on_again(result, "counters caught up with the host")
        return result

    @staticmethod
    def _second_generate_ac(
        icc: dict[str, bytes], card: CardInput, resp: Fields
    ) -> dict[str, bytes]:
        """The card's verdict on an approval: TC if tag 91 is its issuer's answer, else AAC."""
        try:
            tag91: bytes | None = decode_tlv(bytes.fromhex(resp.get("55", "")))["91"]
        except (ValueError, KeyError, CardError):
            tag91 = None
        return SimulatedChip(card.pan, CHIP_PSN).complete(icc, tag91, approved=True)

    async def _sign_on_again(
        self, result: TxnResult, what: str = "signed on again with new keys"
    ) -> None:
        """A0: the host no longer accepts our MAC key (it was rotated, or the host lost it);
        94: the host holds another request under our trace. Nothing was done, so sign on
        now — the next transaction uses the new keys and counters. The declined one is not
        retried: its PIN block is under the old PIN key, and only the cardholder can enter
        the PIN again."""
        signed = await self.sign_on()
        if signed.result == "approved":
            result.message += f"; {what}: try the transaction again"
        else:
            result.message += f"; signing on again failed ({signed.message}): sign on"

    async def _catch_up_settled_batch(self, result: TxnResult) -> None:
        """77: the host already closed this batch (its settlement answer never reached us,
        or this terminal's counters went back). Close it here too — by settling it when it
        holds transactions (the host answers 77 with its totals), directly when it holds
        none — so the next transaction goes into a new batch."""
        batch_no = self.batch_no()
        with self.engine.connect() as conn:
            empty = not self._batch_has_transactions(conn, batch_no)
            ours = self.totals(conn, batch_no)
        if empty:
            self._close_batch(batch_no, "already_settled", ours, None, 0)
        else:
            try:
                await self.settle()
            except TerminalError as exc:
                result.message += f"; the host already settled this batch, settle again ({exc})"
                return
        result.message += (
            f"; the host had already settled batch {batch_no}: "
            f"now on batch {self.batch_no()}, retry the transaction"
        )

    def _finish(
        self,
        jid: int,
        status: str,
        rc: str,
        message: str,
        *,
        disarm: bool,
        auth_code: str = "",
        rrn: str = "",
        original: Any = None,
        kind: str = "",
        amount_minor: int = 0,
        tc: tuple[str, bytes] | None = None,
    ) -> None:
        extra: dict[str, Any] = {}
        if tc is not None:  # (TC data as hex TLV, sealed PAN) for the TC advice
            extra = {"tc": tc[0], "tc_state": "pending", "tc_pan_sealed": tc[1]}
        with self.engine.begin() as conn:
            conn.execute(
                update(journal)
                .where(journal.c.id == jid)
                .values(
                    status=status,
                    response_code=rc or None,
                    message=message,
                    auth_code=auth_code or None,
                    rrn=rrn or None,
                    updated_at=_now(),
                    **extra,
                )
            )
            if disarm:
                conn.execute(
                    update(reversals)
                    .where(reversals.c.journal_id == jid)
                    .values(status="done", updated_at=_now())
                )
            if status == "approved" and original is not None:
                if kind == "void":
                    conn.execute(
                        update(journal)
                        .where(journal.c.id == original.id)
                        .values(status="voided", updated_at=_now())
                    )
                elif kind == "refund":
                    conn.execute(
                        update(journal)
                        .where(journal.c.id == original.id)
                        .values(
                            refunded_minor=journal.c.refunded_minor + amount_minor,
                            updated_at=_now(),
                        )
                    )

    async def _after_failure(
        self, result: TxnResult, jid: int, reason: str, error: str
    ) -> TxnResult:
        with self.engine.begin() as conn:
            conn.execute(
                update(journal)
                .where(journal.c.id == jid)
                .values(status="reversal_pending", message=error, updated_at=_now())
            )
            conn.execute(
                update(reversals)
                .where(reversals.c.journal_id == jid)
                .values(status="pending", reason=reason, last_error=error, updated_at=_now())
            )
        await self.flush_reversals()
        with self.engine.connect() as conn:
            status = conn.execute(select(journal.c.status).where(journal.c.id == jid)).scalar()
        result.reversal = "sent" if status == "reversed" else "queued"
        result.message = (
            f"{error}; the transaction was reversed"
            if status == "reversed"
            else f"{error}; reversal queued, it is sent before the next transaction"
        )
        return result

    # -- reversals (store and forward) ------------------------------------------------------

    def recover(self) -> int:
        """After a crash: every request still armed may have reached the host. Make its
        reversal pending. Returns how many."""
        with self.engine.begin() as conn:
            armed = (
                conn.execute(select(reversals.c.journal_id).where(reversals.c.status == "armed"))
                .scalars()
                .all()
            )
            for jid in armed:
                conn.execute(
                    update(reversals)
                    .where(reversals.c.journal_id == jid)
                    .values(status="pending", reason=REVERSAL_NO_RESPONSE, updated_at=_now())
                )
                conn.execute(
                    update(journal)
                    .where(journal.c.id == jid)
                    .values(
                        status="reversal_pending",
                        message="interrupted; reversal pending",
                        updated_at=_now(),
                    )
                )
        return len(armed)

    def pending_reversals(self) -> int:
        with self.engine.connect() as conn:
            return len(
                conn.execute(select(reversals.c.id).where(reversals.c.status == "pending")).all()
            )

    async def _require_no_pending_reversal(self) -> None:
        self.recover()
        if await self.flush_reversals():
            raise TerminalError(
                "a reversal is still waiting for the host: check the link and "
                "retry (nothing new is sent before it is acknowledged)"
            )

    async def flush_reversals(self) -> int:
        """Send every pending reversal, with back-off, at most ``reversal_attempts_max``
        tries each per call. Returns how many are still pending."""
        with self.engine.connect() as conn:
            pending = conn.execute(
                select(reversals, journal)
                .join(journal, journal.c.id == reversals.c.journal_id)
                .where(reversals.c.status == "pending")
                .order_by(reversals.c.id)
            ).all()
        left = 0
        for row in pending:
            if not await self._send_reversal(row):
                left += 1
        return left

    async def _send_reversal(self, row: Any) -> bool:
        delay_ms = self.profile.reversal_backoff_ms
        for _ in range(self.profile.reversal_attempts_max):
            with self.engine.begin() as conn:
                attempts = conn.execute(
                    select(reversals.c.attempts).where(reversals.c.journal_id == row.journal_id)
                ).scalar_one()
                conn.execute(
                    update(reversals)
                    .where(reversals.c.journal_id == row.journal_id)
                    .values(attempts=attempts + 1, updated_at=_now())
                )
            mti = "0400" if attempts == 0 else "0401"
            req: Fields = {
                "t": mti,
                "3": row.proc_code,
                "4": f"{row.amount_minor:012d}",
                "11": row.stan,
                "13": row.date_mmdd,
                "22": row.entry_mode,
                "25": "00",
                "39": row.reason,
                "41": self.tid,
                "42": self.mid,
                "49": self._ccy(),
                "60": F60(row.type_code, row.batch_no).encode(),
            }
            if row.local_time:  # the original's time: names the request being reversed
                req["12"] = row.local_time
            try:
                resp = self._check_response(
                    req, await self.link.exchange(self._encode(req, True)), True
                )
            except (LinkError, MessageError) as exc:
                with self.engine.begin() as conn:
                    conn.execute(
                        update(reversals)
                        .where(reversals.c.journal_id == row.journal_id)
                        .values(last_error=str(exc))
                    )
                await asyncio.sleep(delay_ms / 1000)
                delay_ms *= 2
                continue
            rc = resp.get("39", "")
            if rc == "00":
                self._reversed(row)
                return True
            if rc in _NOT_HELD and (not self.profile.mac_required or "64" in resp):
                # The host holds another request under this trace (ours reused it after a
                # reset): ours was answered 94 or 12 and never posted, so nothing is left to
                # undo. Only a MACed answer may say so.
                self._reversed(row)
                return True
            with self.engine.begin() as conn:
                conn.execute(
                    update(reversals)
                    .where(reversals.c.journal_id == row.journal_id)
                    .values(last_error=f"host answered {resp.get('39')}")
                )
            await asyncio.sleep(delay_ms / 1000)
            delay_ms *= 2
        return False

    def _reversed(self, row: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(reversals)
                .where(reversals.c.journal_id == row.journal_id)
                .values(status="done", updated_at=_now())
            )
            conn.execute(
                update(journal)
                .where(journal.c.id == row.journal_id)
                .values(status="reversed", updated_at=_now())
            )

    # -- settlement ------------------------------------------------------------------------

    def totals(self, conn: Connection, batch_no: str) -> SettlementTotals:
        acc = {True: [0, 0, 0, 0], False: [0, 0, 0, 0]}
        rows = conn.execute(
            select(journal).where(
                and_(
                    journal.c.batch_no == batch_no,
                    journal.c.kind.in_(("sale", "refund")),
                    journal.c.status == "approved",
                )
            )
        )
        for row in rows:
            group = acc[row.brand == "unionpay"]
            if row.kind == "sale":
                group[0] += row.amount_minor
                group[1] += 1
            else:
                group[2] += row.amount_minor
                group[3] += 1
        return SettlementTotals(TotalsGroup(*acc[True]), TotalsGroup(*acc[False]))

    async def settle(self) -> dict[str, Any]:
        """End of day: flush reversals, send totals; batch-upload when they disagree; close
        the batch and open the next. A batch with nothing in it is not settled (refused,
        nothing changes); a batch the host has already settled (77) is closed as
        ``already_settled``, never reported as balanced."""
        await self._require_no_pending_reversal()
        batch_no = self.batch_no()
        with self.engine.connect() as conn:
            if not self._batch_has_transactions(conn, batch_no):
                raise TerminalError(f"batch {batch_no} has no transactions: nothing to settle")
        tc_advices = await self._send_tc_advices(batch_no)
        with self.engine.begin() as conn:
            ours = self.totals(conn, batch_no)
            stan = self._next_stan(conn)
        req = {
            **self._base("0500", stan, self.clock()),
            "48": ours.encode(),
            "49": self._ccy(),
            "60": F60(TYPE_NETWORK, batch_no, NET_SETTLE).encode(),
            "63": OPERATOR,
        }
        try:
            resp = self._check_response(
                req, await self.link.exchange(self._encode(req, True)), True
            )
        except (LinkError, MessageError) as exc:
            raise TerminalError(f"settlement failed: {exc}; nothing closed, try again") from None
        rc = resp.get("39", "")
        uploaded, refused = 0, 0
        host_totals = resp.get("48")
        if rc == "77":
            label = "already_settled"
        elif rc != "00" or not host_totals:
            raise TerminalError(f"settlement refused: {rc} {describe(rc).en}")
        else:
            label = "balanced"
            first = _settle_result(host_totals)
            if first not in (SettleResult.BALANCED, SettleResult.NOT_BALANCED):
                # 3 (error), or not a result at all: the host has not closed the batch.
                raise TerminalError(
                    f"the host could not settle batch {batch_no} (result {first or 'missing'});"
                    " the batch stays open, settle again"
                )
            if first == SettleResult.NOT_BALANCED:
                uploaded, host_totals, refused = await self._batch_upload(batch_no)
                if not host_totals:
                    raise TerminalError("batch upload failed; the batch stays open, settle again")
                result = _settle_result(host_totals)
                if result not in (SettleResult.BALANCED, SettleResult.NOT_BALANCED):
                    raise TerminalError("batch upload failed; the batch stays open, settle again")
                # uploaded: totals agreed after the upload; not_balanced: the host did not
                # know some approvals this terminal holds (settled on the host's records).
                label = "uploaded" if result == SettleResult.BALANCED else "not_balanced"
        self._close_batch(batch_no, label, ours, host_totals, uploaded)
        return {
            "batch_no": batch_no,
            "result": label,
            # Whether the host's totals for the batch equal this terminal's (for
            # already_settled: as the host settled it; None when it sent none).
            "host_totals_agree": _agree(ours, host_totals),
            "uploaded": uploaded,
            "upload_refused": refused,
            "tc_advices": tc_advices,
            "sales_count": ours.domestic.debit_count + ours.foreign.debit_count,
            "sales_minor": ours.domestic.debit_amount_minor + ours.foreign.debit_amount_minor,
            "refunds_count": ours.domestic.credit_count + ours.foreign.credit_count,
            "refunds_minor": ours.domestic.credit_amount_minor + ours.foreign.credit_amount_minor,
            "next_batch_no": self.batch_no(),
        }

    def _close_batch(
        self,
        batch_no: str,
        label: str,
        ours: SettlementTotals,
        host_totals: str | None,
        uploaded: int,
    ) -> None:
        """Mark the batch settled, record how, and open the next one — in one commit."""
        with self.engine.begin() as conn:
            conn.execute(
                update(journal)
                .where(journal.c.batch_no == batch_no)
                .values(settled=True, tc_pan_sealed=None)  # no PAN kept past the batch
            )
            conn.execute(  # TCs not delivered by now (voided sales, a link down) are dropped
                update(journal)
                .where(and_(journal.c.batch_no == batch_no, journal.c.tc_state == "pending"))
                .values(tc_state="dropped")
            )
            conn.execute(
                settlements.insert().values(
                    batch_no=batch_no,
                    result=label,
                    totals=ours.encode(),
                    host_totals=host_totals,
                    uploaded=uploaded,
                    created_at=_now(),
                )
            )
            cfg = self._cfg(conn)
            if f"{cfg.batch_no:06d}" == batch_no:
                conn.execute(
                    update(terminal_config)
                    .where(terminal_config.c.id == 1)
                    .values(batch_no=cfg.batch_no % STAN_MAX + 1)
                )

    async def _send_tc_advices(self, batch_no: str) -> dict[str, int]:
        """Send the host the TC of each approved chip sale of the batch not sent yet (0320,
        60.3 = 203; protocol.md §8.11). An answer settles the advice either way (00 sent,
        else refused) and drops its sealed PAN; a link failure leaves the rest pending for
        the next attempt — the settlement goes on regardless (no money moves here)."""
        counts = {"sent": 0, "refused": 0, "pending": 0}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(journal).where(
                    and_(
                        journal.c.batch_no == batch_no,
                        journal.c.tc_state == "pending",
                        journal.c.status == "approved",
                    )
                )
            ).all()
        for n, row in enumerate(rows):
            with self.engine.begin() as conn:
                stan = self._next_stan(conn)
            req: Fields = {
                **self._base("0320", stan, self.clock()),
                "2": self.vault.unseal(row.tc_pan_sealed, _TC_PAN).decode(),
                "4": f"{row.amount_minor:012d}",
                "23": f"0{CHIP_PSN}",
                "37": row.rrn or "",
                "55": row.tc,
                "60": F60(TYPE_PURCHASE, batch_no, NET_TC_ADVICE).encode(),
            }
            try:
                answer = self._check_response(
                    req, await self.link.exchange(self._encode(req, True)), True
                )
            except (LinkError, MessageError):
                counts["pending"] = len(rows) - n
                break
            state = "sent" if answer.get("39") == "00" else "refused"
            counts[state] += 1
            with self.engine.begin() as conn:
                conn.execute(
                    update(journal)
                    .where(journal.c.id == row.id)
                    .values(tc_state=state, tc_pan_sealed=None, updated_at=_now())
                )
        return counts

    async def _batch_upload(self, batch_no: str) -> tuple[int, str | None, int]:
        """Send every approved sale/refund of the batch (0320), then the closing 0320 with the
        count. Returns (uploaded, the host's final field 48 or None on failure, refused)."""
        refused = 0
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(journal).where(
                    and_(
                        journal.c.batch_no == batch_no,
                        journal.c.kind.in_(("sale", "refund")),
                        journal.c.status == "approved",
                    )
                )
            ).all()
        for row in rows:
            type_code = TYPE_PURCHASE if row.kind == "sale" else TYPE_REFUND
            req: Fields = {
                "t": "0320",
                "4": f"{row.amount_minor:012d}",
                "11": row.stan,
                "13": row.date_mmdd,
                "37": row.rrn or "",
                "41": self.tid,
                "42": self.mid,
                "60": F60(type_code, batch_no, NET_BATCH_UPLOAD).encode(),
            }
            try:
                answer = self._check_response(
                    req, await self.link.exchange(self._encode(req, True)), True
                )
            except (LinkError, MessageError):
                return len(rows), None, refused
            if answer.get("39") != "00":
                refused += 1
        with self.engine.begin() as conn:
            stan = self._next_stan(conn)
        end = {
            **self._base("0320", stan, self.clock()),
            "48": f"{len(rows):04d}",
            "60": F60(TYPE_NETWORK, batch_no, NET_BATCH_UPLOAD_END).encode(),
        }
        try:
            resp = self._check_response(
                end, await self.link.exchange(self._encode(end, True)), True
            )
        except (LinkError, MessageError):
            return len(rows), None, refused
        return len(rows), resp.get("48"), refused


def _decline_text(rc: str, pin_entered: bool) -> str:
    """The answer in words. 55 means "incorrect PIN" — or, to a request that carried no
    PIN, that the card needs one."""
    if rc == "55" and not pin_entered:
        return "PIN required: this card needs the cardholder's PIN"
    return describe(rc).en


def _settle_result(host_totals: str) -> SettleResult | None:
    """The result digit of the host's field 48 (None if it is not valid totals)."""
    try:
        return SettlementTotals.decode(host_totals)[1]
    except MessageError:
        return None


def _agree(ours: SettlementTotals, host_totals: str | None) -> bool | None:
    if not host_totals:
        return None
    try:
        return SettlementTotals.decode(host_totals)[0] == ours
    except MessageError:
        return False


def card_or_error(
    text: str,
    expiry: str | None,
    *,
    chip: bool = False,
    tap: bool = False,
    fallback: bool = False,
) -> CardInput:
    try:
        return CardInput.parse(text, expiry, chip=chip, tap=tap, fallback=fallback)
    except CardError as exc:
        raise TerminalError(f"card not accepted: {exc}") from None
