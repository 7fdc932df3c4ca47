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

import asyncio
import os
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update

from smartpos.cards import CardError, PanTokenizer, brand_of, mask_pan
from smartpos.cards.emv import CID_TC, TerminalData, sandbox_application
from smartpos.cards.reading import CardInput
from smartpos.cards.tlv import decode_tlv, encode_tlv
from smartpos.db.lock import ProcessLock
from smartpos.devices.ports import CardReader, DeviceError
from smartpos.keys.dukpt import AesDukptRegister, DukptError, TdesDukptRegister
from smartpos.keys.hsm import PinScheme
from smartpos.keys.keys import KeyCheckError, signon_mac_key, unpack_f62
from smartpos.keys.mac import compute_mac, verify_mac
from smartpos.keys.pinblock import encrypt_pin_block, encrypt_pin_block_iso4
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
    ENTRY_SWIPE,
    F60,
    F61,
    NET_ECHO,
    NET_SIGN_ON,
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
    entry_mode,
    parse_f54,
    response_mti,
    trace_after,
)
from smartpos.protocol.profiles import AcquirerProfile, KeyDelivery
from smartpos.terminal import reversals as store_and_forward
from smartpos.terminal import settlement
from smartpos.terminal.errors import Refusal, TerminalError
from smartpos.terminal.journal import STAN_MAX, DuplicateOrder, Journal
from smartpos.terminal.link import Link, LinkError
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
CHIP_PSN = settlement.CHIP_PSN
_RRN = re.compile(r"[0-9A-Za-z]{12}")  # field 37, an12
_ICC_ON_SLIP = (("AID", "84"), ("ARQC", "9F26"), ("ATC", "9F36"), ("TVR", "95"))


# Field 53 (security control) beside the PIN block: format 0 under a double-length TDES key
# (CUP's "26"); format 4 under AES ("47", a smartpos convention: docs/pin-security.md).
_F53_FORMAT0 = "2600000000000000"
_F53_FORMAT4 = "4700000000000000"


def pin_key_aad(tid: str) -> bytes:
    """The vault's associated data of the terminal's AES PIN key (aes-iso4)."""
    return b"pin-aes:" + tid.encode()


def dukpt_aad(tid: str) -> bytes:
    """The vault's associated data of the terminal's DUKPT register state."""
    return b"dukpt:" + tid.encode()


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
        """Sign on (0800/0810): new working keys, and the counters caught up with what the
        host holds from this terminal (protocol.md §8.2). A sign-on refused as older than
        the last one accepted (94: the terminal's trace went back) is repeated once from
        the host's latest trace."""
        stan = self.journal.take_stan()
        now = self.clock()
        req = self.base("0800", stan, now)
        req["60"] = F60(TYPE_NETWORK, self.batch_no(), NET_SIGN_ON).encode()
        req["63"] = OPERATOR
        # MACed under the TMK's sign-on variant: proves to the host that this terminal holds
        # the TMK before it hands out new working keys.
        signon_key = signon_mac_key(self._tmk)
        alg = self.profile.mac_algorithm
        message = self.profile.codec.encode(
            req,
            mac=(lambda d: compute_mac(alg, signon_key, d)) if self.profile.mac_required else None,
        )
        try:
            resp = self._check_response(req, await self.link.exchange(message), False)
        except (LinkError, MessageError) as exc:
            return TxnResult(Outcome.ERROR, "", f"sign-on failed: {exc}", Kind.SIGN_ON, stan=stan)
        rc = resp.get("39", "")
        moved, behind = self._catch_up(resp)
        if rc == "94" and moved and not _caught_up:
            return await self.sign_on(_caught_up=True)
        if rc != "00":
            return TxnResult(Outcome.DECLINED, rc, describe(rc).en, Kind.SIGN_ON, stan=stan)
        if "62" not in resp and self.profile.key_delivery != KeyDelivery.SIGNON_F62:
            # This acquirer delivers no keys at sign-on (they were loaded at provisioning,
            # or there are none): the sign-on only tells the host the terminal is there.
            self._catch_up(resp)
            return TxnResult(
                Outcome.APPROVED,
                rc,
                "signed on (no working keys from this acquirer)",
                Kind.SIGN_ON,
                stan=stan,
            )
        if "62" not in resp:
            return TxnResult(
                Outcome.ERROR,
                rc,
                "the host approved the sign-on but sent no keys",
                Kind.SIGN_ON,
                stan=stan,
            )
        try:
            keys = unpack_f62(self._tmk, bytes.fromhex(resp["62"]))
        except (ValueError, KeyCheckError) as exc:
            return TxnResult(
                Outcome.ERROR, rc, f"sign-on keys refused: {exc}", Kind.SIGN_ON, stan=stan
            )
        self.journal.store_working_keys(
            self.vault.seal(keys.tpk, b"tpk"), self.vault.seal(keys.tak, b"tak")
        )
        self._tpk, self._tak = keys.tpk, keys.tak
        result = TxnResult(
            Outcome.APPROVED, rc, "signed on: new PIN and MAC keys loaded", Kind.SIGN_ON, stan=stan
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
        with self.engine.connect() as conn:
            cfg = Journal.config(conn)
            if host is not None and trace_after(host.stan, f"{cfg.stan:06d}"):
                moved["stan"] = int(host.stan)
            own_batch = f"{cfg.batch_no:06d}"
            if host_batch is not None and trace_after(host_batch, own_batch):
                if Journal.batch_has_transactions(conn, own_batch):
                    behind = True
                else:
                    moved["batch_no"] = int(host_batch)
        if moved:
            self.journal.move_counters(**moved)
        return bool(moved), behind

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

    def _card_fields(self, card: CardInput, pin: str | None) -> Fields:
        if card.entry == ENTRY_SWIPE and card.chip_card:
            raise TerminalError(Refusal.CHIP_CARD_SWIPED)
        f: Fields = {"22": entry_mode(card.entry, pin is not None), "25": "00"}
        if card.track2:
            f["35"] = card.track2.replace("=", "D")
        else:
            f["2"] = card.pan
            if card.expiry:
                f["14"] = card.expiry
        if pin is not None:
            if self.profile.pin_scheme is not PinScheme.TPK_ISO0:
                f["26"] = "12"
                f.update(self._pin_fields(pin, card.pan))
                return f
            if self._tpk is None:
                raise TerminalError(Refusal.NOT_SIGNED_ON, key="PIN")
            f["26"] = "12"
            f["52"] = encrypt_pin_block(self._tpk, pin, card.pan).hex().upper()
            f["53"] = _F53_FORMAT0
        return f

    def _pin_fields(self, pin: str, pan: str) -> Fields:
        """Field 52 (and 53, and the KSN's field) under the profile's PIN scheme when it is
        not format 0 under the TPK. A DUKPT register is advanced and its new state committed
        here, before anything carrying the block can leave: a counter is never used twice
        (one skipped, when the request is then refused, is harmless)."""
        profile = self.profile
        f: Fields = {}
        if profile.pin_scheme is PinScheme.AES_ISO4:
            if self._pin_key is None:
                raise TerminalError(Refusal.NO_PIN_KEY, what="AES PIN key")
            f["52"] = encrypt_pin_block_iso4(self._pin_key, pin, pan).hex().upper()
        else:
            register = self._dukpt
            if register is None or register.exhausted:
                what = "DUKPT key (the register is exhausted)" if register else "DUKPT key"
                raise TerminalError(Refusal.NO_PIN_KEY, what=what)
            try:
                txn = register.next_transaction()
            except DukptError as exc:
                raise TerminalError(Refusal.CANNOT_ENCODE, reason=str(exc)) from None
            sealed = self.vault.seal(register.to_bytes(), dukpt_aad(self.tid))
            with self.engine.begin() as conn:
                conn.execute(
                    update(terminal_config)
                    .where(terminal_config.c.id == 1)
                    .values(sealed_dukpt=sealed)
                )
            f["52"] = txn.encrypt_pin(pin, pan).hex().upper()
            assert profile.ksn_field is not None  # the profile's own check
            f[str(profile.ksn_field)] = txn.ksn.hex().upper()
        if "53" in profile.dialect.fields and profile.ksn_field != 53:
            tdes = profile.pin_scheme is PinScheme.TDES_DUKPT_ISO0
            f["53"] = _F53_FORMAT0 if tdes else _F53_FORMAT4
        return f

    async def sale(
        self,
        amount_minor: int,
        card: CardInput,
        pin: str | None = None,
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
        """First GENERATE AC on the card in the reader: its next transaction counter (the
        card's own, kept by the reader), an ARQC over this terminal's data for this amount;
        its data objects go into field 55 (and the PAN sequence number into 23) and are
        returned."""
        reader = await self._reader_with(card)
        terminal_data = TerminalData(
            amount_minor,
            currency=self.ccy(),
            date=self.clock().strftime("%y%m%d"),
            txn_type=txn_type,
            unpredictable=self.unpredictable(),
        )
        try:
            icc = await reader.generate_ac(terminal_data)
        except DeviceError as exc:
            raise TerminalError(Refusal.CARD_NOT_ACCEPTED, reason=str(exc)) from None
        fields["23"] = f"0{reader.psn or CHIP_PSN}"
        fields["55"] = encode_tlv(icc).hex().upper()
        return icc

    async def _reader_with(self, card: CardInput) -> CardReader:
        """The reader holding ``card`` by its chip. A simulated reader is handed the card
        here when the caller read it elsewhere (the command line's prompt, a test)."""
        # Imported here: a terminal that never reads a chip card never loads the reader.
        from smartpos.devices.cardreader import SimulatedCardReader

        reader = self.reader
        if reader is None:
            reader = self.reader = SimulatedCardReader(
                self._simulated_state(), token_key=self._token_key
            )
        if isinstance(reader, SimulatedCardReader) and not self._counters_carried:
            # Counters an earlier version kept in the terminal's database move to the
            # reader's cards (never backwards), then leave the database.
            old = self.journal.chip_counters()
            if old:
                await asyncio.to_thread(reader.counters.import_counters, old)
                self.journal.forget_chip_counters(old)
            self._counters_carried = True
        if isinstance(reader, SimulatedCardReader) and reader.card != card:
            present = reader.tap if card.entry == ENTRY_CONTACTLESS else reader.insert
            present(card.track2 or card.pan)
            try:
                await reader.read_card(timeout_s=1)
            except DeviceError as exc:
                raise TerminalError(Refusal.CARD_NOT_ACCEPTED, reason=str(exc)) from None
        return reader

    def _simulated_state(self) -> Path:
        """Where a simulated reader built by the terminal keeps its cards' counters: in the
        data directory, else beside the terminal's SQLite database."""
        from smartpos.devices.cardreader import default_state_path

        if self._home is not None:
            return default_state_path(self._home)
        database = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        if not database or database == ":memory:":
            raise TerminalError(
                Refusal.CARD_NOT_ACCEPTED, reason="no card reader is attached for chip cards"
            )
        return default_state_path(Path(database).parent)

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

    async def balance(self, card: CardInput, pin: str | None) -> TxnResult:
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
        """The result stored for ``order_ref`` (None: the reference is new). Refused when
        the reference was used for another kind of request or another amount."""
        row = self.journal.by_order_ref(order_ref)
        if row is None:
            return None
        if row.kind != kind or amount_minor not in (None, row.amount_minor):
            was = f"{row.kind} of {Money.of(row.amount_minor, row.currency).format()}"
            raise TerminalError(Refusal.KEY_REUSED, key=order_ref, was=was)
        stored = Journal.stored_result(row)
        if stored is None:  # interrupted before the result was kept: say what the row says
            stored = self._result_of_row(row)
        result = TxnResult.from_dict(stored)
        if result.reversal == "queued" and row.status == "reversed":
            result.reversal = "sent"
            result.message = result.message.replace(
                "reversal queued, it is sent before the next transaction",
                "the transaction was reversed",
            )
        result.repeated = True
        return result

    def _result_of_row(self, row: Any) -> dict[str, Any]:
        outcome = {"approved": "approved", "voided": "approved", "declined": "declined"}
        result = TxnResult(
            Outcome(outcome.get(row.status, "error")),
            row.response_code or "",
            row.message or "",
            Kind(row.kind),
            row.amount_minor,
            row.currency,
            row.stan,
            row.invoice_no,
            row.batch_no,
            auth_code=row.auth_code or "",
            rrn=row.rrn or "",
            pan_masked=row.pan_masked or "",
            brand=row.brand or "",
            entry_mode=row.entry_mode or "",
            journal_id=row.id,
            pin_verified=bool(row.pin_verified) and row.status in ("approved", "voided"),
            order_ref=row.order_ref,
        )
        if row.status in ("reversed", "reversal_pending"):
            result.reversal = "sent" if row.status == "reversed" else "queued"
        return result.to_dict()

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
        """The card's verdict on an approval: TC if tag 91 is its issuer's answer, else AAC
        (a card that cannot give one — pulled out — refuses: AAC)."""
        try:
            tag91: bytes | None = decode_tlv(bytes.fromhex(resp.get("55", "")))["91"]
        except (ValueError, KeyError, CardError):
            tag91 = None
        reader = await self._reader_with(card)
        try:
            return await reader.complete(icc, tag91, approved=True)
        except DeviceError:
            return {**icc, "9F27": b"\x00"}

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
