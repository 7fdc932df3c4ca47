"""The cash drawer: ESC p through the receipt printer (python-escpos's ``cashdraw``), the
failures a cashier can meet, and the simulated drawer."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from escpos.escpos import Escpos
from escpos.printer import Dummy

from smartpos.config import Settings
from smartpos.devices.drawer import EscposCashDrawer, SimulatedCashDrawer
from smartpos.devices.ports import CashDrawer, DrawerError
from smartpos.devices.printer import PrinterError

# ESC p m t1 t2: pulse pin 2 (m = 0) or pin 5 (m = 1), 50 × 2 ms on, 50 × 2 ms off.
KICK_PIN_2 = bytes([0x1B, 0x70, 0x00, 0x32, 0x32])
KICK_PIN_5 = bytes([0x1B, 0x70, 0x01, 0x32, 0x32])


class Closing(Dummy):  # type: ignore[misc]  # python-escpos ships no type hints
    closed = 0

    def close(self) -> None:
        self.closed += 1


def test_the_kick_is_esc_p_on_pin_2_by_default_and_the_printer_is_closed() -> None:
    printer = Closing()
    EscposCashDrawer(lambda: printer).open()
    assert printer.output == KICK_PIN_2
    assert printer.closed == 1


def test_a_second_drawer_on_pin_5() -> None:
    printer = Dummy()
    EscposCashDrawer(lambda: printer, pin=5).open()
    assert printer.output == KICK_PIN_5
    with pytest.raises(ValueError, match="pin 2 or pin 5"):
        EscposCashDrawer(lambda: printer, pin=3)  # type: ignore[arg-type]


def test_from_settings_kicks_through_the_configured_printer(tmp_path: Path) -> None:
    out = tmp_path / "spool" / "printer.out"
    EscposCashDrawer.from_settings(
        Settings(home=tmp_path / "home", printer="file", printer_path=out)
    ).open()
    assert out.read_bytes() == KICK_PIN_2


def test_no_printer_no_drawer_and_the_cashier_is_told_how_to_open_it(tmp_path: Path) -> None:
    drawer = EscposCashDrawer.from_settings(Settings(home=tmp_path / "home", printer="none"))
    with pytest.raises(DrawerError, match="no printer configured") as caught:
        drawer.open()
    assert str(caught.value).endswith(
        "open it with its key and check the drawer cable at the printer"
    )


def test_a_printer_that_refuses_the_pulse_is_a_drawer_error_and_is_still_closed() -> None:
    class Refusing(Closing):
        def _raw(self, msg: bytes) -> None:
            raise OSError("[Errno 5] Input/output error")

    printer = Refusing()
    with pytest.raises(DrawerError, match=r"refused the pulse: .*Input/output error"):
        EscposCashDrawer(lambda: printer).open()
    assert printer.closed == 1


def test_an_unreachable_printer_is_a_drawer_error() -> None:
    def unreachable() -> Escpos:
        raise PrinterError("printer not reachable at 10.0.0.9:9100 — check power")

    with pytest.raises(DrawerError, match=r"not reachable at 10\.0\.0\.9:9100"):
        EscposCashDrawer(unreachable).open()


def test_the_simulated_drawer_records_each_opening() -> None:
    times = iter([datetime(2026, 3, 15, 9, 0, tzinfo=UTC), datetime(2026, 3, 15, 9, 5, tzinfo=UTC)])
    drawer = SimulatedCashDrawer(clock=lambda: next(times))
    assert not drawer.is_open
    drawer.open()
    assert drawer.is_open
    drawer.close()
    drawer.open()
    assert drawer.opens == [
        datetime(2026, 3, 15, 9, 0, tzinfo=UTC),
        datetime(2026, 3, 15, 9, 5, tzinfo=UTC),
    ]
    assert drawer.is_open


def test_both_drawers_are_the_port() -> None:
    assert isinstance(SimulatedCashDrawer(), CashDrawer)
    assert isinstance(EscposCashDrawer(Dummy), CashDrawer)
