"""The PIN pad: the cardholder keys the PIN, the terminal gets only the encrypted PIN block.

The clear PIN exists inside :meth:`SimulatedPinPad.pin_block` only, between the keypad and
the encryptor: no attribute holds it, no return value, repr or log line carries it, and no
exception raised out of the pad refers to it — not in its message, its arguments, its
cause or context, nor in the local variables of the frames its traceback keeps (a crash
report that prints locals would otherwise show it).

Keys: :meth:`~SimulatedPinPad.load_key` loads the TPK the sign-on delivered (ISO 9564 format
0 under TDES, the default). Other formats and key schemes — format 4 under an AES key, DUKPT
with a key serial number — plug in through the hook :meth:`~SimulatedPinPad.load_encryptor`,
which takes any :class:`PinEncryptor`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from smartpos.devices.ports import DeviceError, PinBlock, PinEntryError, PinPadKeyError
from smartpos.keys.keys import KeyCheckError, require_key
from smartpos.keys.pinblock import PinError, encrypt_pin_block, is_valid_pan, is_valid_pin

__all__ = ["Keypad", "PinEncryptor", "SimulatedPinPad", "TpkFormat0"]

Keypad = Callable[[], str | Awaitable[str | None] | None]
"""Where the PIN comes from: the digits keyed, or None when the cardholder cancelled."""

log = logging.getLogger(__name__)
_AGAIN = "ask the cardholder to enter the PIN again"


class PinEncryptor(Protocol):
    """The PIN pad's key: turns a PIN and the card's PAN into an encrypted PIN block.

    This is the hook for other PIN block formats and key schemes: an ISO 9564 format 4 (AES)
    encryptor, or a DUKPT one that takes the next transaction key of its register and gives
    the KSN with the block, implements ``encrypt`` and is loaded with
    :meth:`SimulatedPinPad.load_encryptor`. It raises ``PinError`` for a PIN or PAN it cannot
    take and ``KeyCheckError`` for an unusable key, with messages that never contain them."""

    def encrypt(self, pin: str, pan: str) -> PinBlock: ...


class TpkFormat0:
    """ISO 9564 format 0 under the terminal PIN key (double-length TDES), the default."""

    __slots__ = ("_tpk",)

    def __init__(self, tpk: bytes) -> None:
        require_key(tpk, "TPK")
        self._tpk = bytes(tpk)

    def __repr__(self) -> str:
        return "TpkFormat0(tpk=<hidden>)"

    def encrypt(self, pin: str, pan: str) -> PinBlock:
        return PinBlock(encrypt_pin_block(self._tpk, pin, pan), format=0)


class SimulatedPinPad:
    """A PIN pad whose keys are ``keypad``: a callable (sync or async) returning the digits
    entered, or None for cancel — a test, the demo's on-screen keypad, a hidden prompt."""

    def __init__(self, keypad: Keypad) -> None:
        self._keypad = keypad
        self._encryptor: PinEncryptor | None = None

    def __repr__(self) -> str:
        loaded = type(self._encryptor).__name__ if self._encryptor is not None else "no key"
        return f"SimulatedPinPad({loaded})"

    @property
    def key_loaded(self) -> bool:
        return self._encryptor is not None

    def load_key(self, tpk: bytes) -> None:
        """Load the TPK (16 bytes): PIN blocks are then ISO 9564 format 0 under it. Raises
        PinPadKeyError for a key of the wrong length, keeping the key loaded before."""
        try:
            encryptor = TpkFormat0(tpk)
        except KeyCheckError:
            raise PinPadKeyError(
                "the PIN key is not a double-length TDES key: sign on again to load a new one"
            ) from None
        self._encryptor = encryptor

    def load_encryptor(self, encryptor: PinEncryptor) -> None:
        """Load another PIN block scheme (format 4 / AES, DUKPT): see :class:`PinEncryptor`."""
        self._encryptor = encryptor

    async def pin_block(self, pan: str, *, timeout_s: float | None = None) -> PinBlock:
        """Ask for the PIN of the card ``pan`` and return it encrypted under the loaded key.

        Raises PinPadKeyError if no key is loaded (before the cardholder is asked), and
        PinEntryError if the entry is cancelled, not done in ``timeout_s``, or not 4 to 12
        digits — the cardholder is then asked again by the caller."""
        encryptor = self._encryptor
        if encryptor is None:
            raise PinPadKeyError("no PIN key in the PIN pad: sign on first to load it")
        if not is_valid_pan(pan):
            raise PinEntryError("this card number cannot carry a PIN (13 to 19 digits needed)")
        # The PIN is a local of this frame only. Every failure is decided first and raised
        # once the PIN is gone and outside any handler, so no exception can keep it (nor a
        # keypad's half-typed digits, through the context of a timeout or a keypad error).
        failure: Callable[[], DeviceError] | None = None
        block: PinBlock | None = None
        pin: object = None
        try:
            pin = await asyncio.wait_for(self._read_keypad(), timeout_s)
        except TimeoutError:
            failure = _timed_out
        except Exception:  # the keypad's own failure (a closed terminal, a broken screen)
            failure = _keypad_failed
        if failure is None:
            if pin is None:
                failure = _cancelled
            elif not isinstance(pin, str) or not is_valid_pin(pin):
                failure = _malformed
            else:
                try:
                    block = encryptor.encrypt(pin, pan)
                except PinError:
                    failure = _malformed
                except Exception as exc:  # KeyCheckError, an exhausted DUKPT register, a bug
                    # Only the type: whatever the message says stays with the exception.
                    log.error(
                        "PIN encryptor %s failed: %s", type(encryptor).__name__, type(exc).__name__
                    )
                    failure = _bad_key
        del pin
        if block is None:
            raise (failure or _bad_key)()
        return block

    async def _read_keypad(self) -> str | None:
        entered = self._keypad()
        if inspect.isawaitable(entered):
            entered = await entered
        return entered


def _timed_out() -> DeviceError:
    return PinEntryError(f"no PIN was entered in time: {_AGAIN}")


def _keypad_failed() -> DeviceError:
    return PinEntryError(f"the PIN pad's keypad stopped answering: {_AGAIN}")


def _cancelled() -> DeviceError:
    return PinEntryError(f"PIN entry was cancelled: {_AGAIN}, or cancel the sale")


def _malformed() -> DeviceError:
    return PinEntryError(f"a PIN has 4 to 12 digits: {_AGAIN}")


def _bad_key() -> DeviceError:
    return PinPadKeyError("the PIN pad's key cannot encrypt: sign on again to load a new one")
