"""The card's part of a request: how it was read (22, 35 or 2 and 14) and the PIN block
under the profile's PIN scheme (52, 53 and the DUKPT key serial number's field)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import update

from smartpos.cards.reading import CardInput
from smartpos.devices.ports import PinBlock
from smartpos.keys.dukpt import DukptError
from smartpos.keys.hsm import PinScheme
from smartpos.keys.pinblock import encrypt_pin_block, encrypt_pin_block_iso4
from smartpos.protocol.codec import Fields
from smartpos.protocol.messages import (
    ENTRY_SWIPE,
    entry_mode,
)
from smartpos.terminal.errors import Refusal, TerminalError
from smartpos.terminal.tables import terminal_config

if TYPE_CHECKING:
    from smartpos.terminal.engine import Terminal


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


def card_fields(t: Terminal, card: CardInput, pin: str | PinBlock | None) -> Fields:
    """``pin``: the PIN (the terminal makes its block under the profile's scheme), or the
    block a PIN pad made under the terminal's TPK (the clear PIN never left the pad)."""
    if card.entry == ENTRY_SWIPE and card.chip_card:
        raise TerminalError(Refusal.CHIP_CARD_SWIPED)
    f: Fields = {"22": entry_mode(card.entry, pin is not None), "25": "00"}
    if card.track2:
        f["35"] = card.track2.replace("=", "D")
    else:
        f["2"] = card.pan
        if card.expiry:
            f["14"] = card.expiry
    if isinstance(pin, PinBlock):
        # From the PIN pad, loaded with this terminal's TPK (Terminal.attach_pin_pad).
        if t.profile.pin_scheme is not PinScheme.TPK_ISO0 or pin.format != 0 or pin.ksn:
            raise TerminalError(
                Refusal.CANNOT_ENCODE,
                reason=f"a format {pin.format} PIN block from the PIN pad does not fit this"
                f" acquirer's PIN scheme ({t.profile.pin_scheme})",
            )
        f["26"] = "12"
        f["52"] = pin.hex()
        f["53"] = _F53_FORMAT0
        return f
    if pin is not None:
        if t.profile.pin_scheme is not PinScheme.TPK_ISO0:
            f["26"] = "12"
            f.update(t._pin_fields(pin, card.pan))
            return f
        if t._tpk is None:
            raise TerminalError(Refusal.NOT_SIGNED_ON, key="PIN")
        f["26"] = "12"
        f["52"] = encrypt_pin_block(t._tpk, pin, card.pan).hex().upper()
        f["53"] = _F53_FORMAT0
    return f


def pin_fields(t: Terminal, pin: str, pan: str) -> Fields:
    """Field 52 (and 53, and the KSN's field) under the profile's PIN scheme when it is
    not format 0 under the TPK. A DUKPT register is advanced and its new state committed
    here, before anything carrying the block can leave: a counter is never used twice
    (one skipped, when the request is then refused, is harmless)."""
    profile = t.profile
    f: Fields = {}
    if profile.pin_scheme is PinScheme.AES_ISO4:
        if t._pin_key is None:
            raise TerminalError(Refusal.NO_PIN_KEY, what="AES PIN key")
        f["52"] = encrypt_pin_block_iso4(t._pin_key, pin, pan).hex().upper()
    else:
        register = t._dukpt
        if register is None or register.exhausted:
            what = "DUKPT key (the register is exhausted)" if register else "DUKPT key"
            raise TerminalError(Refusal.NO_PIN_KEY, what=what)
        try:
            txn = register.next_transaction()
        except DukptError as exc:
            raise TerminalError(Refusal.CANNOT_ENCODE, reason=str(exc)) from None
        sealed = t.vault.seal(register.to_bytes(), dukpt_aad(t.tid))
        with t.engine.begin() as conn:
            conn.execute(
                update(terminal_config).where(terminal_config.c.id == 1).values(sealed_dukpt=sealed)
            )
        f["52"] = txn.encrypt_pin(pin, pan).hex().upper()
        assert profile.ksn_field is not None  # the profile's own check
        f[str(profile.ksn_field)] = txn.ksn.hex().upper()
    if "53" in profile.dialect.fields and profile.ksn_field != 53:
        tdes = profile.pin_scheme is PinScheme.TDES_DUKPT_ISO0
        f["53"] = _F53_FORMAT0 if tdes else _F53_FORMAT4
    return f
