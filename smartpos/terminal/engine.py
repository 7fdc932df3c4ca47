"""The terminal's transaction state machine (DESIGN §3.2).

``idle → card read → amount → PIN → online request → approved / declined / no answer →
receipt → idle``. Before a money-moving request leaves, the journal row and an *armed*
reversal are committed. A valid answer disarms the reversal in the same commit that records
the outcome; a timeout, a lost link, a bad MAC or a crash leaves it pending, and it is sent
(0400, repeats 0401) before anything else until the host acknowledges it.

The rooms around it: ``journal`` (the database: counters, journal, reversals, batches),
``reversals`` (store and forward), ``settlement`` (end of day), ``results`` and ``errors``
(what callers get back). A caller-chosen order reference (``order_ref``) on a money-moving
call is the idempotency key: the same reference again returns the stored result and sends
nothing (``smartpos.services.terminal`` serializes calls per terminal).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from smartpos.cards import CardError, PanTokenizer, brand_of, mask_pan
from smartpos.cards.emv import CID_TC, sandbox_application
from smartpos.cards.reading import CardInput
from smartpos.cards.tlv import encode_tlv
from smartpos.db.lock import ProcessLock
from smartpos.devices.ports import CardReader, PinBlock, PinPad
from smartpos.keys.dukpt import AesDukptRegister, TdesDukptRegister
from smartpos.keys.hsm import PinScheme
from smartpos.keys.mac import compute_mac, verify_mac
from smartpos.keys.vault import Vault
from smartpos.money import Money
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
    F60,
    F61,
    NET_ECHO,
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
    parse_f54,
    response_mti,
)
from smartpos.protocol.profiles import AcquirerProfile
from smartpos.terminal import chip, orders, requests, settlement
from smartpos.terminal import reversals as store_and_forward
from smartpos.terminal import signon as signing_on
from smartpos.terminal.errors import Refusal, TerminalError
from smartpos.terminal.journal import STAN_MAX, DuplicateOrder, Journal
from smartpos.terminal.link import Link, LinkError
from smartpos.terminal.requests import dukpt_aad, pin_key_aad
from smartpos.terminal.results import Kind, Outcome, SettleOutcome, SettleReport, TxnResult
from smartpos.terminal.tables import terminal_config

__all__ = [
    "STAN_MAX",
    "CardInput",
    "Kind",
    "Outcome",
    "Refusal",
    "SettleReport",
    "Terminal",
    "TerminalError",
    "TxnResult",
    "card_or_error",
]

OPERATOR = settlement.OPERATOR
_RRN = re.compile(r"[0-9A-Za-z]{12}")  # field 37, an12
_ICC_ON_SLIP = (("AID", "84"), ("ARQC", "9F26"), ("ATC", "9F36"), ("TVR", "95"))


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
        reader: CardReader | None = None,
        home: Path | None = None,
    ) -> None:
        self._lock = lock  # held for this terminal by its opener, released by close()
        self.engine = engine
        self.journal = Journal(engine)
        self.vault = vault
        self.profile = profile
        self.link = link
        self.currency = currency
        self.clock = clock
        self.unpredictable = unpredictable  # the chip's 9F37 for each GENERATE AC
        # The card reader the chip operations go to; None: a simulated reader beside the
        # terminal's database, made when a chip card first comes (the sandbox's cards).
        self.reader = reader
        self._counters_carried = False
        # A PIN pad that makes the PIN blocks itself under this terminal's TPK (reloaded at
        # every sign-on): then the clear PIN never reaches the terminal.
        self.pin_pad: PinPad | None = None
        self._home = home  # the data directory: where a simulated reader keeps its state
        with engine.connect() as conn:
            cfg = conn.execute(select(terminal_config).where(terminal_config.c.id == 1)).first()
        if cfg is None:
            raise TerminalError(Refusal.NOT_PROVISIONED)
        self.tid, self.mid, self.merchant_name = cfg.tid, cfg.mid, cfg.merchant_name
        self._token_key = vault.unseal(cfg.sealed_token_key, b"token_key")
        self.tokenizer = PanTokenizer(self._token_key)
        self._tmk = vault.unseal(cfg.sealed_tmk, b"tmk:" + cfg.tid.encode())
        self._tpk = vault.unseal(cfg.sealed_tpk, b"tpk") if cfg.sealed_tpk else None
        self._tak = vault.unseal(cfg.sealed_tak, b"tak") if cfg.sealed_tak else None
        # The PIN key of a scheme other than the sign-on TPK's (docs/pin-security.md): the
        # AES PIN key, or the DUKPT register (advanced and stored before each PIN block).
        scheme = profile.pin_scheme
        self._pin_key: bytes | None = None
        self._dukpt: TdesDukptRegister | AesDukptRegister | None = None
        if scheme is PinScheme.AES_ISO4 and cfg.sealed_pin_key:
            self._pin_key = vault.unseal(cfg.sealed_pin_key, pin_key_aad(cfg.tid))
        elif scheme in (PinScheme.TDES_DUKPT_ISO0, PinScheme.AES_DUKPT_ISO4) and cfg.sealed_dukpt:
            register = (
                TdesDukptRegister if scheme is PinScheme.TDES_DUKPT_ISO0 else AesDukptRegister
            )
            self._dukpt = register.from_bytes(vault.unseal(cfg.sealed_dukpt, dukpt_aad(cfg.tid)))

    def attach_pin_pad(self, pad: PinPad) -> None:
        """Load this terminal's PIN key into ``pad`` now and after every sign-on; the
        pad's ``PinBlock`` then goes to :meth:`sale` / :meth:`balance` instead of a PIN."""
        if self._tpk is None:
            raise TerminalError(Refusal.NOT_SIGNED_ON, key="PIN")
        pad.load_key(self._tpk)
        self.pin_pad = pad

    async def close(self) -> None:
        """Close the link and let the next command have the terminal."""
        await self.link.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- counters & state ------------------------------------------------------------------

    _cfg = staticmethod(Journal.config)

    def batch_no(self) -> str:
        return self.journal.batch_no()

    def base(self, mti: str, stan: str, now: datetime) -> Fields:
        return {
            "t": mti,
            "11": stan,
            "12": now.strftime("%H%M%S"),
            "13": now.strftime("%m%d"),
            "41": self.tid,
            "42": self.mid,
        }

    def ccy(self) -> str:
        return Money.of(0, self.currency).currency.numeric

    # -- messages --------------------------------------------------------------------------

    def _mac(self, data: bytes) -> bytes:
        if self._tak is None:
            raise TerminalError(Refusal.NOT_SIGNED_ON, key="MAC")
        return compute_mac(self.profile.mac_algorithm, self._tak, data)

    def _encode(self, fields: Fields, maced: bool) -> bytes:
        return self.profile.codec.encode(
            fields, mac=self._mac if maced and self.profile.mac_required else None
        )

    def _check_response(self, request: Fields, raw: bytes, maced: bool) -> Fields:
        """Decode and match an answer. Raises MessageError (with response_code A0 for a bad
        MAC) when it cannot be trusted."""
        resp = self.profile.codec.decode(raw)
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
                data, mac = self.profile.codec.mac_input(raw)
                if not verify_mac(self.profile.mac_algorithm, self._tak, data, mac):
                    raise MessageError(
                        "answer MAC does not verify", "64", response_code=REVERSAL_MAC_ERROR
                    )
            elif resp.get("39") == "00":
                raise MessageError("approval without a MAC", "64", response_code=REVERSAL_MAC_ERROR)
        return resp

    async def ask(self, req: Fields, *, maced: bool) -> Fields:
        """Send ``req`` (MACed if ``maced`` and the profile uses MACs) and return the
        matched, trusted answer. Raises LinkError or MessageError."""
        return self._check_response(req, await self.link.exchange(self._encode(req, maced)), maced)

    # -- network management ----------------------------------------------------------------

    async def sign_on(self, *, _caught_up: bool = False) -> TxnResult:
        return await signing_on.sign_on(self, _caught_up=_caught_up)

    def _catch_up(self, resp: Fields) -> tuple[bool, bool]:
        return signing_on.catch_up(self, resp)

    async def echo(self) -> TxnResult:
        stan = self.journal.take_stan()
        req = self.base("0820", stan, self.clock())
        req["60"] = F60(TYPE_NETWORK, self.batch_no(), NET_ECHO).encode()
        try:
            resp = await self.ask(req, maced=False)
        except (LinkError, MessageError) as exc:
            return TxnResult(Outcome.ERROR, "", f"echo failed: {exc}", Kind.ECHO, stan=stan)
        rc = resp.get("39", "")
        return TxnResult(
            Outcome.APPROVED if rc == "00" else Outcome.DECLINED,
            rc,
            describe(rc).en,
            Kind.ECHO,
            stan=stan,
        )

    # -- card transactions -----------------------------------------------------------------

    def _card_fields(self, card: CardInput, pin: str | PinBlock | None) -> Fields:
        return requests.card_fields(self, card, pin)

    def _pin_fields(self, pin: str, pan: str) -> Fields:
        return requests.pin_fields(self, pin, pan)

    async def sale(
        self,
        amount_minor: int,
        card: CardInput,
        pin: str | PinBlock | None = None,
        *,
        order_ref: str | None = None,
    ) -> TxnResult:
        if order_ref is not None and (done := self.repeated(order_ref, "sale", amount_minor)):
            return done
        if amount_minor <= 0:
            raise TerminalError(Refusal.AMOUNT_NOT_POSITIVE)
        Money.of(amount_minor, self.currency)
        if card.entry == ENTRY_CONTACTLESS:
            limit = self.profile.contactless_no_cvm_limit_minor
            if amount_minor <= limit:
                pin = None  # QuickPass small amount: no PIN asked, no signature
            elif pin is None:
                raise TerminalError(Refusal.PIN_REQUIRED, limit=Money.of(limit, self.currency))
        fields = self._card_fields(card, pin)
        fields.update({"3": PROC_PURCHASE, "4": f"{amount_minor:012d}"})
        icc = await self._add_arqc(fields, card, amount_minor) if card.reads_chip else None
        return await self._money_txn(
            "sale",
            "0200",
            TYPE_PURCHASE,
            fields,
            amount_minor,
            card,
            pin is not None,
            icc=icc,
            order_ref=order_ref,
        )

    async def _add_arqc(
        self, fields: Fields, card: CardInput, amount_minor: int, txn_type: str = "00"
    ) -> dict[str, bytes]:
        return await chip.add_arqc(self, fields, card, amount_minor, txn_type)

    async def _reader_with(self, card: CardInput) -> CardReader:
        return await chip.reader_with(self, card)

    def _simulated_state(self) -> Path:
        return chip.simulated_state(self)

    async def void(
        self,
        *,
        stan: str | None = None,
        invoice_no: str | None = None,
        order_ref: str | None = None,
    ) -> TxnResult:
        if order_ref is not None and (done := self.repeated(order_ref, "void", None)):
            return done
        orig = (
            self.journal.find_sale(stan=stan)
            if stan
            else self.journal.find_sale(invoice_no=invoice_no)
        )
        if orig is None:
            raise TerminalError(Refusal.NO_SUCH_SALE)
        if orig.status != "approved":
            raise TerminalError(Refusal.SALE_NOT_VOIDABLE, status=orig.status)
        if orig.settled or orig.batch_no != self.batch_no():
            raise TerminalError(Refusal.SALE_SETTLED)
        if orig.refunded_minor:
            raise TerminalError(Refusal.SALE_PARTLY_REFUNDED)
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
            "void",
            "0200",
            TYPE_VOID,
            fields,
            orig.amount_minor,
            None,
            False,
            original=orig,
            order_ref=order_ref,
        )

    async def refund(
        self, amount_minor: int, card: CardInput, *, rrn: str, order_ref: str | None = None
    ) -> TxnResult:
        if order_ref is not None and (done := self.repeated(order_ref, "refund", amount_minor)):
            return done
        if amount_minor <= 0:
            raise TerminalError(Refusal.AMOUNT_NOT_POSITIVE)
        if not _RRN.fullmatch(rrn):
            raise TerminalError(Refusal.NOT_A_REFERENCE, rrn=rrn)
        orig = self.journal.find_sale(rrn=rrn)
        if orig is not None:
            if orig.status != "approved":
                raise TerminalError(Refusal.NOTHING_TO_REFUND, status=orig.status)
            left = orig.amount_minor - orig.refunded_minor
            if amount_minor > left:
                raise TerminalError(
                    Refusal.OVER_REFUND,
                    amount=Money.of(amount_minor, self.currency).format(),
                    left=Money.of(left, self.currency).format(),
                )
            if orig.pan_token and self.tokenizer.token(card.pan) != orig.pan_token:
                raise TerminalError(Refusal.OTHER_CARD)
        fields = self._card_fields(card, None)
        fields.update({"3": PROC_REFUND, "4": f"{amount_minor:012d}", "37": rrn})
        if orig is not None:
            fields["61"] = F61(orig.batch_no, orig.stan, orig.date_mmdd).encode()
        return await self._money_txn(
            "refund",
            "0220",
            TYPE_REFUND,
            fields,
            amount_minor,
            card,
            False,
            original=orig,
            order_ref=order_ref,
        )

    async def balance(self, card: CardInput, pin: str | PinBlock | None) -> TxnResult:
        await self.require_no_pending_reversal()
        fields = self._card_fields(card, pin)
        fields["3"] = PROC_BALANCE
        if card.reads_chip:
            # The card authenticates itself online for an inquiry too (amount 0, type 31).
            await self._add_arqc(fields, card, 0, txn_type="31")
        stan = self.journal.take_stan()
        req = {
            **self.base("0200", stan, self.clock()),
            **fields,
            "49": self.ccy(),
            "60": F60(TYPE_BALANCE, self.batch_no()).encode(),
        }
        base = TxnResult(
            Outcome.ERROR,
            "",
            "",
            Kind.BALANCE,
            stan=stan,
            pan_masked=mask_pan(card.pan),
            brand=brand_of(card.pan).value,
            entry_mode=ENTRY_NAMES[card.entry],
        )
        try:
            resp = await self.ask(req, maced=True)
        except (LinkError, MessageError) as exc:
            base.message = f"balance inquiry failed: {exc}"
            return base
        rc = resp.get("39", "")
        base.response_code, base.message = rc, _decline_text(rc, pin is not None)
        base.result = Outcome.APPROVED if rc == "00" else Outcome.DECLINED
        base.pin_verified = pin is not None and rc == "00"
        if rc == REVERSAL_MAC_ERROR:
            await self._sign_on_again(base)
        if rc == "00" and "54" in resp:
            base.balance_minor = parse_f54(resp["54"])
        return base

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
        order_ref: str | None = None,
    ) -> TxnResult:
        await self.require_no_pending_reversal()
        if self._tak is None and self.profile.mac_required:
            raise TerminalError(Refusal.NOT_SIGNED_ON, key="MAC")
        brand = brand_of(card.pan).value if card else (original.brand if original else "")
        settled_first = await self._make_room(kind, amount_minor, brand)
        try:
            result = await self._send_money_txn(
                kind,
                mti,
                type_code,
                fields,
                amount_minor,
                card,
                pin_entered,
                original,
                icc,
                order_ref,
            )
        except DuplicateOrder:
            # Another call took this reference between our look and our insert.
            stored = self.repeated(order_ref or "", kind, None)
            assert stored is not None
            return stored
        if settled_first is not None:
            result.message += f" ({settled_first})"
        if result.journal_id is not None and order_ref is not None:
            self.journal.store_result(result.journal_id, result.to_dict())
        return result

    def repeated(self, order_ref: str, kind: str, amount_minor: int | None) -> TxnResult | None:
        return orders.repeated(self, order_ref, kind, amount_minor)

    def _result_of_row(self, row: Any) -> dict[str, Any]:
        return orders.result_of_row(self, row)

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
                Refusal.BATCH_FULL, batch_no=batch_no, count=count, reason=str(exc)
            ) from None
        return f"batch {batch_no} was full and has been settled: {report.result}"

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
        order_ref: str | None = None,
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
            stan = self.journal.next_stan(conn)
            invoice = self.journal.next_invoice(conn)
            req = {
                **self.base(mti, stan, now),
                **fields,
                "49": self.ccy(),
                "60": F60(type_code, batch_no).encode(),
            }
            try:
                message = self._encode(req, True)
            except MessageError as exc:
                raise TerminalError(Refusal.CANNOT_ENCODE, reason=str(exc)) from None
            entry_row = {
                "kind": kind,
                "stan": stan,
                "date_mmdd": now.strftime("%m%d"),
                "local_time": now.strftime("%H%M%S"),
                "invoice_no": invoice,
                "batch_no": batch_no,
                "amount_minor": amount_minor,
                "currency": self.currency,
                "pan_token": self.tokenizer.token(card.pan)
                if card
                else (original.pan_token if original else None),
                "pan_masked": pan_masked,
                "brand": brand,
                "entry_mode": entry,
                "pin_verified": pin_entered,
                "original_id": original.id if original is not None else None,
                "order_ref": order_ref,
            }
            reversal = {
                "proc_code": fields["3"],
                "type_code": type_code,
                "entry_mode": fields.get("22", "000"),
            }
            jid = self.journal.open_request(conn, entry_row, reversal)
        result = TxnResult(
            Outcome.ERROR,
            "",
            "",
            Kind(kind),
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
            order_ref=order_ref,
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
                self.journal.finish(jid, "error", "", str(exc))
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
            second = await self._second_generate_ac(icc, card, resp)
            if second["9F27"] != CID_TC:
                return await self._after_failure(
                    result, jid, REVERSAL_OTHER, "the card refused the issuer's answer"
                )
            result.icc["TC"] = second["9F26"].hex().upper()
            tc = (
                encode_tlv(second).hex().upper(),
                self.vault.seal(card.pan.encode(), settlement.TC_PAN_CONTEXT),
            )
        # 4. A trusted answer: record it and disarm the reversal in one commit.
        result.response_code, result.message = rc, _decline_text(rc, pin_entered)
        result.pin_verified = pin_entered and rc == "00"
        result.auth_code, result.rrn = resp.get("38", ""), resp.get("37", "")
        if rc == "00":
            result.result = Outcome.APPROVED
            self.journal.finish(
                jid,
                "approved",
                rc,
                result.message,
                auth_code=result.auth_code,
                rrn=result.rrn,
                original=original,
                kind=kind,
                amount_minor=amount_minor,
                tc=tc,
            )
        else:
            result.result = Outcome.DECLINED
            self.journal.finish(jid, "declined", rc, result.message, rrn=result.rrn)
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

    async def _second_generate_ac(
        self, icc: dict[str, bytes], card: CardInput, resp: Fields
    ) -> dict[str, bytes]:
        return await chip.second_generate_ac(self, icc, card, resp)

    async def _sign_on_again(
        self, result: TxnResult, what: str = "signed on again with new keys"
    ) -> None:
        await signing_on.sign_on_again(self, result, what)

    async def _catch_up_settled_batch(self, result: TxnResult) -> None:
        """77: the host already closed this batch (its settlement answer never reached us,
        or this terminal's counters went back). Close it here too — by settling it when it
        holds transactions (the host answers 77 with its totals), directly when it holds
        none — so the next transaction goes into a new batch."""
        batch_no = self.batch_no()
        with self.engine.connect() as conn:
            empty = not Journal.batch_has_transactions(conn, batch_no)
            ours = Journal.totals(conn, batch_no)
        if empty:
            self.journal.close_batch(batch_no, SettleOutcome.ALREADY_SETTLED, ours, None, 0)
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

    def _finish(self, jid: int, *args: Any, **kwargs: Any) -> None:
        self.journal.finish(jid, *args, **kwargs)

    async def _after_failure(
        self, result: TxnResult, jid: int, reason: str, error: str
    ) -> TxnResult:
        self.journal.make_pending(jid, reason, error)
        await self.flush_reversals()
        status = self.journal.status(jid)
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
        return self.journal.recover()

    def pending_reversals(self) -> int:
        return len(self.journal.pending_reversals())

    async def require_no_pending_reversal(self) -> None:
        self.recover()
        if await self.flush_reversals():
            raise TerminalError(Refusal.REVERSAL_PENDING)

    async def flush_reversals(self) -> int:
        """Send every pending reversal, with back-off, at most ``reversal_attempts_max``
        tries each per call. Returns how many are still pending."""
        return await store_and_forward.flush_reversals(self)

    # -- settlement ------------------------------------------------------------------------

    def totals(self, conn: Any, batch_no: str) -> SettlementTotals:
        return Journal.totals(conn, batch_no)

    async def settle(self) -> SettleReport:
        """End of day (smartpos.terminal.settlement)."""
        return await settlement.settle(self)


def _decline_text(rc: str, pin_entered: bool) -> str:
    """The answer in words. 55 means "incorrect PIN" — or, to a request that carried no
    PIN, that the card needs one."""
    if rc == "55" and not pin_entered:
        return "PIN required: this card needs the cardholder's PIN"
    return describe(rc).en


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
        raise TerminalError(Refusal.CARD_NOT_ACCEPTED, reason=str(exc)) from None
