"""The printer and customer display ports, and the one error family every port raises."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from smartpos.config import Settings
from smartpos.devices.display import SimulatedCustomerDisplay
from smartpos.devices.ports import CustomerDisplay, DeviceError, Printer
from smartpos.devices.printer import PrinterError, ReceiptPrinter, SimulatedPrinter
from smartpos.receipts.escpos import receipt_bytes
from smartpos.receipts.model import Copy
from tests.receipts.test_model import make_receipt

MERCHANT = make_receipt(copy=Copy.MERCHANT)
CUSTOMER = make_receipt(copy=Copy.CUSTOMER)


def test_the_receipt_printer_port_prints_through_the_configured_printer(tmp_path: Path) -> None:
    out = tmp_path / "printer.out"
    printer = ReceiptPrinter(
        Settings(home=tmp_path / "home", printer="file", printer_path=out, printer_width_chars=48)
    )
    printer.check()
    printer.print_receipts([MERCHANT, CUSTOMER])
    assert out.read_bytes() == receipt_bytes(MERCHANT, width=48) + receipt_bytes(CUSTOMER, width=48)
    assert isinstance(printer, Printer)


def test_an_unreachable_printer_fails_its_self_test_with_a_device_error(tmp_path: Path) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    printer = ReceiptPrinter(Settings(home=tmp_path / "home", printer="network", printer_port=port))
    with pytest.raises(PrinterError, match="not reachable") as caught:
        printer.check()
    # Still the RuntimeError it always was, and a device error like every port's.
    assert isinstance(caught.value, DeviceError) and isinstance(caught.value, RuntimeError)
    assert f"127.0.0.1:{port}" in repr(printer)


def test_the_simulated_printer_keeps_receipts_and_their_bytes() -> None:
    printer = SimulatedPrinter(width=32, codepage="ascii")
    printer.print_receipts([MERCHANT])
    printer.print_receipts([CUSTOMER])
    assert printer.printed == [MERCHANT, CUSTOMER]
    expected = receipt_bytes(MERCHANT, codepage="ascii") + receipt_bytes(CUSTOMER, codepage="ascii")
    assert printer.output == expected
    assert isinstance(printer, Printer)


def test_the_simulated_customer_display_shows_what_fits() -> None:
    display = SimulatedCustomerDisplay()
    display.show(["TOTAL           CNY 12.34", "x" * 60, "3", "4", "5"])
    assert display.lines == ("TOTAL           CNY 12.34", "x" * 40, "3", "4")
    display.clear()
    assert not display.lines
    assert isinstance(display, CustomerDisplay)
