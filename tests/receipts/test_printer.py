"""The printer port: file, network, dummy and misconfigured adapters."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from escpos.printer import Dummy

from smartpos.config import Settings
from smartpos.devices.printer import PrinterError, open_printer, print_receipts
from smartpos.receipts.escpos import receipt_bytes
from smartpos.receipts.model import Copy
from tests.receipts.test_model import make_receipt

MERCHANT = make_receipt(copy=Copy.MERCHANT)
CUSTOMER = make_receipt(copy=Copy.CUSTOMER, pin_verified=True)


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(home=tmp_path / "home", **overrides)


def expected(*receipts: Any, width: int = 32, codepage: str = "gb18030") -> bytes:
    return b"".join(receipt_bytes(r, width=width, codepage=codepage) for r in receipts)


def test_file_printer_appends_and_creates_directory(tmp_path: Path) -> None:
    out = tmp_path / "spool" / "deep" / "printer.out"
    settings = settings_for(tmp_path, printer="file", printer_path=out)
    print_receipts(settings, [MERCHANT, CUSTOMER])
    assert out.read_bytes() == expected(MERCHANT, CUSTOMER)
    print_receipts(settings, [CUSTOMER])
    assert out.read_bytes() == expected(MERCHANT, CUSTOMER, CUSTOMER)


def test_file_printer_defaults_to_home_and_honours_width_and_codepage(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path, printer="file", printer_width_chars=48, printer_codepage="ascii"
    )
    (settings.home).mkdir()
    (settings.home / "printer.out").write_bytes(b"EARLIER")
    print_receipts(settings, [MERCHANT])
    data = (settings.home / "printer.out").read_bytes()
    assert data == b"EARLIER" + expected(MERCHANT, width=48, codepage="ascii")


def test_unwritable_file_is_a_printer_error(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, printer="file", printer_path=tmp_path)  # a directory
    with pytest.raises(PrinterError, match="check power/cable"):
        print_receipts(settings, [MERCHANT])


class OnePrintJobServer:
    """A throwaway raw-9100 'printer': accepts one connection and keeps what it receives."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.port: int = self.sock.getsockname()[1]
        self.received = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(10)
            while chunk := conn.recv(65536):
                self.received += chunk
        self.sock.close()


def test_network_printer_receives_exactly_the_dummy_bytes(tmp_path: Path) -> None:
    server = OnePrintJobServer()
    settings = settings_for(
        tmp_path, printer="network", printer_host="127.0.0.1", printer_port=server.port
    )
    print_receipts(settings, [MERCHANT, CUSTOMER])
    server.thread.join(timeout=10)  # returns once print_receipts closed the connection
    assert not server.thread.is_alive()
    dummy = Dummy()
    for receipt in (MERCHANT, CUSTOMER):
        dummy._raw(receipt_bytes(receipt))
    assert server.received == dummy.output
    assert len(server.received) > 500


def test_network_printer_at_closed_port_fails_fast(tmp_path: Path) -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    settings = settings_for(
        tmp_path, printer="network", printer_host="127.0.0.1", printer_port=port
    )
    started = time.monotonic()
    with pytest.raises(PrinterError, match=rf"not reachable at 127\.0\.0\.1:{port} — check"):
        print_receipts(settings, [MERCHANT])
    assert time.monotonic() - started < 2


def test_no_printer_configured(tmp_path: Path) -> None:
    with pytest.raises(PrinterError, match="no printer configured"):
        open_printer(settings_for(tmp_path, printer="none"))
    with pytest.raises(PrinterError, match="no printer configured"):
        print_receipts(settings_for(tmp_path, printer="none"), [MERCHANT])


def test_dummy_printer(tmp_path: Path) -> None:
    printer = open_printer(settings_for(tmp_path, printer="dummy"))
    assert isinstance(printer, Dummy)
    print_receipts(settings_for(tmp_path, printer="dummy"), [MERCHANT])  # goes nowhere, no error


def test_usb_without_pyusb_says_so(tmp_path: Path) -> None:
    try:
        import usb  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pyusb is installed here")
    with pytest.raises(PrinterError, match="pyusb"):
        open_printer(settings_for(tmp_path, printer="usb"))
