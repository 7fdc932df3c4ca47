"""Participants for a card request (DESIGN §3.3): the card (status, expiry, entry rules),
its chip cryptogram, the PIN (soft HSM) and the risk rules — each raises ``Decline`` with
the response code, or lets the request through."""

from __future__ import annotations

import re

from sqlalchemy import Connection

from smartpos.cards import CardError, expiry_passed
from smartpos.cards.emv import read_icc_data, verify_arqc
from smartpos.db.raw import Query, Raw
from smartpos.host.context import Context, Decline
from smartpos.host.steps import (
    _SEL_CARD,
    _UPD_LAST_ATC,
    _UPD_PIN_TRIES,
    FORCED_AMOUNT_BASE,
    FORCED_CODES,
    FORCED_NO_ANSWER_CENTS,
    PIN_TRIES_MAX,
    Steps,
    _keyed_expiry_passed,
)
from smartpos.keys import dukpt
from smartpos.keys.hsm import PinCheck, PinScheme
from smartpos.protocol.messages import (
    ENTRY_CHIP,
    ENTRY_CONTACTLESS,
    ENTRY_SWIPE,
    TxnType,
)

_HEX = re.compile(r"[0-9A-Fa-f]+")
_SEL_PIN_KEY = Query("SELECT sealed_pin_key FROM terminals WHERE tid = ?", ("sealed_pin_key",))
_SEL_DUKPT = Query(
    "SELECT initial_ksn, dukpt_counter FROM terminals WHERE tid = ?",
    ("initial_ksn", "dukpt_counter"),
)
_UPD_DUKPT = Query("UPDATE terminals SET dukpt_counter = ? WHERE tid = ?")


class CardSteps(Steps):
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
        if self.pin_not_tpk:
            verdict = self._pin_under_scheme(conn, ctx)
        else:
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

    def _pin_under_scheme(self, conn: Connection, ctx: Context) -> PinCheck:
        """The verdict on a PIN block under the profile's scheme when it is not format 0
        under the TPK: format 4 under the terminal's AES PIN key, or DUKPT with the KSN of
        the request's KSN field. A KSN that is missing or not hex, like a block that does
        not decode, is FORMAT_ERROR (99)."""
        card, f = ctx.card, ctx.fields
        assert ctx.pan is not None
        if self.pin_scheme is PinScheme.AES_ISO4:
            sealed_key = self._aes_pin_key(conn, ctx)
            if sealed_key is None:
                return PinCheck.FORMAT_ERROR  # no AES PIN key was loaded for this terminal
            ksn = None
        else:
            assert self.sealed_bdk is not None and self.ksn_field is not None
            sealed_key = self.sealed_bdk
            text = f.get(self.ksn_field, "")
            if not text or len(text) % 2 or not _HEX.fullmatch(text):
                return PinCheck.FORMAT_ERROR
            ksn = bytes.fromhex(text)
            if not self._fresh_ksn(conn, ctx, ksn):
                return PinCheck.FORMAT_ERROR
        return self.hsm.verify_pin_under(
            self.pin_scheme,
            sealed_key,
            bytes.fromhex(f["52"]),
            ctx.pan,
            self.sealed_pvk,
            card.pvv,
            card.pvki,
            tid=ctx.terminal.tid,
            ksn=ksn,
        )

    def _fresh_ksn(self, conn: Connection, ctx: Context, ksn: bytes) -> bool:
        """Whether ``ksn`` is one of the request's terminal's (its initial KSN or key ID) with
        a counter above every one accepted from it before, which it then becomes. A KSN of
        another terminal, or a counter used already (a replayed PIN block), is not."""
        row = Raw.of(conn).first(_SEL_DUKPT, (ctx.terminal.tid,))
        if row is None or row.initial_ksn is None:
            return False
        initial = bytes(row.initial_ksn)
        if self.pin_scheme is PinScheme.TDES_DUKPT_ISO0:
            if len(ksn) != dukpt.TDES_KSN_LEN:
                return False
            counter = dukpt.tdes_counter(ksn)
            ours = int.from_bytes(ksn, "big") - counter == int.from_bytes(initial, "big")
        else:
            if len(ksn) != dukpt.AES_KSN_LEN:
                return False
            counter = dukpt.aes_counter(ksn)
            ours = ksn[: dukpt.AES_IKID_LEN] == initial
        if not ours or counter <= (row.dukpt_counter or 0):
            return False
        Raw.of(conn).defer(_UPD_DUKPT, (counter, ctx.terminal.tid))
        return True

    def _aes_pin_key(self, conn: Connection, ctx: Context) -> bytes | None:
        """The sealed AES PIN key the host holds for the request's terminal (None: none)."""
        tid, sealed_tmk = ctx.terminal.tid, bytes(ctx.terminal.sealed_tmk)
        cached = self._aes_pin_keys.get(tid)
        if cached is None or cached[0] != sealed_tmk:
            row = Raw.of(conn).first(_SEL_PIN_KEY, (tid,))
            key = None if row is None or row.sealed_pin_key is None else bytes(row.sealed_pin_key)
            cached = self._aes_pin_keys[tid] = (sealed_tmk, key)
        return cached[1]

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
