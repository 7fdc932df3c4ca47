"""The receipt printer port: one python-escpos ``Escpos`` object, chosen by settings.

python-escpos already is "one port, many adapters" (its abstract printer needs only ``_raw``);
this module picks the adapter from ``Settings.printer``, opens it eagerly so a dead printer is
noticed before the receipt is due, and turns every failure into a ``PrinterError`` whose
message tells the cashier what to check — never a traceback.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from escpos.escpos import Escpos
from escpos.exceptions import DeviceNotFoundError
from escpos.exceptions import Error as EscposError
from escpos.printer import Dummy, File, Network

from smartpos.config import Settings
from smartpos.devices.ports import DeviceError
from smartpos.files import UnsafeFileError, make_private_dirs, open_private
from smartpos.receipts.escpos import receipt_bytes
from smartpos.receipts.model import Receipt

log = logging.getLogger(__name__)

# A LAN printer answers a TCP connect in milliseconds; waiting longer only holds up the queue.
NETWORK_TIMEOUT_S = 5.0
_NEXT_STEP = "check power/cable/paper, then reprint"


class PrinterError(DeviceError, RuntimeError):
    """The receipt could not be printed; the message says where and what to do next.

    A :class:`~smartpos.devices.ports.DeviceError` like every device failure, and still the
    ``RuntimeError`` it always was."""


class AppendingFile(File):  # type: ignore[misc]  # python-escpos ships no type hints
    """A file "printer" that appends and creates its directory.

    python-escpos's ``File`` opens with ``"wb"``, which would wipe earlier receipts every time
    the printer is opened; for a receipt log (and for a device node) appending is right.
    """

    def open(self, raise_not_found: bool = True) -> None:
        """Open for appending; always raises ``DeviceNotFoundError`` on failure.

        ``raise_not_found`` is ignored on purpose: a slip silently not printed is worse.
        """
        if self._device:
            self.close()
        path = Path(self.devfile)
        try:
            make_private_dirs(path.parent)
            # A receipt log is private (0600); a device node is opened as it is.
            if path.is_char_device():
                handle = open(path, "ab")  # noqa: SIM115 - closed by close()
            else:
                handle = os.fdopen(open_private(path), "ab")
        except (OSError, UnsafeFileError) as exc:
            self.device = None
            why = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise DeviceNotFoundError(f"cannot open {self.devfile}: {why}") from exc
        self.device = handle


def _where(settings: Settings) -> str:
    match settings.printer:
        case "file":
            return str(_file_path(settings))
        case "network":
            return f"{settings.printer_host}:{settings.printer_port}"
        case "usb":
            return f"USB {settings.printer_usb_vendor:04x}:{settings.printer_usb_product:04x}"
        case other:
            return other


def _oneline(exc: BaseException) -> str:
    # python-escpos messages span lines; the cashier's status line has one.
    return " ".join(str(exc).split())


def _file_path(settings: Settings) -> Path:
    return settings.printer_path or settings.home / "printer.out"


def _make(settings: Settings) -> Escpos:
    match settings.printer:
        case "dummy":
            return Dummy()
        case "file":
            return AppendingFile(devfile=str(_file_path(settings)))
        case "network":
            return Network(
                host=settings.printer_host, port=settings.printer_port, timeout=NETWORK_TIMEOUT_S
            )
        case "usb":
            # Imported here: pyusb is optional and only USB printers need it.
            from escpos.printer import usb as escpos_usb

            if not escpos_usb.is_usable():
                raise PrinterError(
                    "USB printer configured but pyusb is not installed — "
                    "install it (pip install pyusb) or choose another printer"
                )
            return escpos_usb.Usb(settings.printer_usb_vendor, settings.printer_usb_product)
        case _:
            raise PrinterError("no printer configured — set SMARTPOS_PRINTER to print receipts")


def open_printer(settings: Settings) -> Escpos:
    """Open the printer ``settings.printer`` names and return it, connected.

    ``"dummy"`` collects bytes in memory; ``"file"`` appends to ``settings.printer_path``
    (default ``<home>/printer.out``, directory created); ``"network"`` connects over TCP
    (raw port 9100 style); ``"usb"`` needs pyusb. Raises ``PrinterError`` if the printer
    cannot be reached or none is configured.
    """
    printer = _make(settings)
    try:
        printer.open()
    except (OSError, EscposError, RuntimeError) as exc:
        # RuntimeError: python-escpos raises it for a missing USB backend.
        raise PrinterError(
            f"printer not reachable at {_where(settings)} — {_NEXT_STEP} ({_oneline(exc)})"
        ) from exc
    return printer


def print_receipts(settings: Settings, receipts: Sequence[Receipt]) -> None:
    """Print ``receipts`` in order on the configured printer, then close it.

    Each receipt is rendered completely before any byte goes out, so a rendering fault never
    leaves half a slip on paper. Any printer failure raises ``PrinterError``.
    """
    width = settings.printer_width_chars
    print_jobs(
        settings,
        [receipt_bytes(r, width=width, codepage=settings.printer_codepage) for r in receipts],
    )


def print_jobs(settings: Settings, jobs: Sequence[bytes]) -> None:
    """Send pre-rendered ESC/POS ``jobs`` in order to the configured printer, then close it.

    For any receipt rendered at ``settings.printer_width_chars`` and
    ``settings.printer_codepage`` — e.g. ``sale_receipt_bytes`` for the store's sale receipt.
    Nothing is opened for no jobs. Any printer failure raises ``PrinterError``.
    """
    if not jobs:
        return
    printer = open_printer(settings)
    try:
        for job in jobs:
            printer._raw(job)
    except (OSError, EscposError) as exc:
        raise PrinterError(
            f"printing failed at {_where(settings)} — {_NEXT_STEP} ({_oneline(exc)})"
        ) from exc
    finally:
        try:
            printer.close()
        except (OSError, EscposError) as exc:
            # Closing after a failure must not hide that failure; after success it is harmless.
            log.warning("closing printer at %s failed: %s", _where(settings), exc)


class ReceiptPrinter:
    """The :class:`~smartpos.devices.ports.Printer` port on the printer ``settings`` name:
    each call opens it, prints every receipt and closes it (:func:`print_receipts`)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def __repr__(self) -> str:
        return f"ReceiptPrinter({_where(self._settings)})"

    def print_receipts(self, receipts: Sequence[Receipt]) -> None:
        """Print ``receipts`` in order; PrinterError if the printer fails."""
        print_receipts(self._settings, receipts)

    def print_jobs(self, jobs: Sequence[bytes]) -> None:
        """Send pre-rendered ESC/POS ``jobs`` in order (:func:`print_jobs`)."""
        print_jobs(self._settings, jobs)

    def check(self) -> None:
        """The power-on self-test: open the printer and close it. PrinterError if it cannot
        be reached."""
        printer = open_printer(self._settings)
        try:
            printer.close()
        except (OSError, EscposError) as exc:
            log.warning("closing printer at %s failed: %s", _where(self._settings), exc)


class SimulatedPrinter:
    """A printer for the demo, training and tests: keeps each receipt printed and the exact
    ESC/POS bytes a real printer would have received."""

    def __init__(self, width: int = 32, codepage: str = "gb18030") -> None:
        self.width = width
        self.codepage = codepage
        self.printed: list[Receipt] = []
        self._output = Dummy()

    def print_receipts(self, receipts: Sequence[Receipt]) -> None:
        jobs = [receipt_bytes(r, width=self.width, codepage=self.codepage) for r in receipts]
        for receipt, job in zip(receipts, jobs, strict=True):
            self._output._raw(job)
            self.printed.append(receipt)

    def print_jobs(self, jobs: Sequence[bytes]) -> None:
        """Keep pre-rendered ESC/POS ``jobs`` (e.g. sale receipts) with the other output."""
        for job in jobs:
            self._output._raw(job)

    @property
    def output(self) -> bytes:
        """Every byte sent so far."""
        data: bytes = self._output.output
        return data
