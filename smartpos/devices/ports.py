"""The device ports: what the terminal asks of a card reader, a PIN pad, a printer, a scanner,
a cash drawer and a customer display — and the one family of errors they raise.

One port, many adapters (python-escpos's shape): each port is a small ``Protocol``; simulated
adapters (demo, training, tests) and real ones (keyboard-wedge readers and scanners, ESC/POS
printers and drawers, PC/SC chip readers) implement it. The terminal depends on the ports only.

Every failure a cashier can meet is a :class:`DeviceError` whose message says what happened
and what to do next ("swipe again", "insert the chip card"); it never quotes card data or a
PIN, and a failed read changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from smartpos.cards.emv import TerminalData
from smartpos.cards.reading import CardInput
from smartpos.receipts.model import Receipt

__all__ = [
    "CardReadError",
    "CardReader",
    "CashDrawer",
    "ChipDeclinedError",
    "ChipError",
    "CustomerDisplay",
    "DeviceError",
    "DeviceStateError",
    "DeviceUnavailableError",
    "DrawerError",
    "NoCardError",
    "NoChipError",
    "PinBlock",
    "PinEntryError",
    "PinPad",
    "PinPadKeyError",
    "Printer",
    "Scan",
    "ScanError",
    "Scanner",
    "UseChipError",
]


class DeviceError(Exception):
    """A device could not do what was asked. The message says what happened and what the
    cashier does next; it never holds card data or a PIN."""


class CardReadError(DeviceError):
    """The card was not read (a garbled or cut-off swipe, letters in a track, tracks that
    disagree): nothing was taken from it; swipe again."""


class UseChipError(CardReadError):
    """A chip card was swiped while its chip may still be read: insert or tap it."""


class NoCardError(DeviceError):
    """No card was presented in time."""


class ChipError(DeviceError):
    """The chip did not answer as an EMV card must (removed, refused, malformed answer)."""


class ChipDeclinedError(ChipError):
    """The chip declined the transaction itself (an AAC where an ARQC was asked for)."""


class NoChipError(DeviceError):
    """A chip operation was asked of a card that was not read by its chip (swiped, keyed, or
    tapped and gone): insert the chip card."""


class PinEntryError(DeviceError):
    """No usable PIN was entered (cancelled, timed out, too short or too long)."""


class PinPadKeyError(DeviceError):
    """The PIN pad holds no usable PIN key: sign on to load one."""


class ScanError(DeviceError):
    """A barcode was not read (cut off, wrong check digit): scan again."""


class DrawerError(DeviceError):
    """The cash drawer was not kicked open."""


class DeviceUnavailableError(DeviceError):
    """The device or its driver is not there (not connected, driver not installed)."""


class DeviceStateError(DeviceError):
    """A device adapter's own state file is unusable (damaged or not ours)."""


@dataclass(frozen=True, repr=False)
class PinBlock:
    """What a PIN pad gives the terminal: the encrypted PIN block, never the PIN.

    ``format`` is the ISO 9564 format (0: TDES, 4: AES); ``ksn`` is the DUKPT key serial
    number when the block is under a DUKPT key (field 53 tells the host which). The repr
    shows neither the block nor anything derived from the PIN."""

    encrypted: bytes
    format: int = 0
    ksn: bytes | None = None

    def __post_init__(self) -> None:
        if self.format not in (0, 1, 3, 4):
            raise ValueError(f"ISO 9564 PIN block format must be 0, 1, 3 or 4, not {self.format}")
        if len(self.encrypted) != (16 if self.format == 4 else 8):
            raise ValueError(f"a format {self.format} PIN block has the wrong length")

    def hex(self) -> str:
        """The block as ISO 8583 field 52 carries it (upper-case hex)."""
        return self.encrypted.hex().upper()

    def __repr__(self) -> str:
        ksn = f", ksn={self.ksn.hex().upper()}" if self.ksn is not None else ""
        return f"PinBlock(format={self.format}, <{len(self.encrypted)} bytes encrypted>{ksn})"


@dataclass(frozen=True)
class Scan:
    """A barcode the scanner read, prefix and suffix removed."""

    code: str


@runtime_checkable
class CardReader(Protocol):
    """Swipe, insert or tap: the card the customer presents.

    ``read_card`` waits for a card and returns what was read. A chip card that is swiped is
    refused (:class:`UseChipError`) unless ``fallback`` says the terminal already failed to
    read its chip; then the swipe's entry mode is fallback. For an inserted or tapped card,
    ``generate_ac`` (first GENERATE AC: an ARQC under the card's next transaction counter)
    and, for an inserted card still in the reader, ``complete`` (second GENERATE AC: TC or
    AAC) ask its chip; ``psn`` is its PAN sequence number (ISO 8583 field 23). ``release``
    forgets the card (it was removed or the sale is over)."""

    async def read_card(
        self, timeout_s: float | None = None, *, fallback: bool = False
    ) -> CardInput: ...

    @property
    def psn(self) -> str | None: ...

    async def generate_ac(self, terminal: TerminalData) -> dict[str, bytes]: ...

    async def complete(
        self, icc: dict[str, bytes], tag_91: bytes | None, approved: bool
    ) -> dict[str, bytes]: ...

    def release(self) -> None: ...


@runtime_checkable
class PinPad(Protocol):
    """The cardholder's PIN entry: gives back only the encrypted PIN block. The clear PIN
    never leaves the pad (no attribute, return value, log line or exception holds it)."""

    def load_key(self, tpk: bytes) -> None: ...

    async def pin_block(self, pan: str, *, timeout_s: float | None = None) -> PinBlock: ...


@runtime_checkable
class Printer(Protocol):
    """The receipt printer: prints whole receipts, in order."""

    def print_receipts(self, receipts: Sequence[Receipt]) -> None: ...


@runtime_checkable
class Scanner(Protocol):
    """The barcode scanner: the next barcode scanned."""

    async def read_scan(self, timeout_s: float | None = None) -> Scan: ...


@runtime_checkable
class CashDrawer(Protocol):
    """The cash drawer: kicked open for a cash sale, change or a count."""

    def open(self) -> None: ...


@runtime_checkable
class CustomerDisplay(Protocol):
    """The customer-facing display (pole display or second screen): a few short lines."""

    def show(self, lines: Sequence[str]) -> None: ...

    def clear(self) -> None: ...
