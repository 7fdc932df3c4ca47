"""Cash drawer adapters: the drawer kicked through an ESC/POS receipt printer's drawer port
(python-escpos's ``cashdraw``: ESC p), and a simulated drawer that records its openings.

The drawer hangs off the printer's RJ-11 "DK" port; the printer sends it a pulse on pin 2
(most drawers) or pin 5 (a second drawer). So the drawer is reached through the printer, and
a printer that cannot be reached is a drawer that cannot be opened.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from escpos.escpos import Escpos
from escpos.exceptions import Error as EscposError

from smartpos.config import Settings
from smartpos.devices.ports import DeviceError, DrawerError

__all__ = ["EscposCashDrawer", "SimulatedCashDrawer"]

_OPEN_BY_HAND = "open it with its key and check the drawer cable at the printer"


class EscposCashDrawer:
    """A drawer on the drawer port of the printer ``open_printer`` opens (connected), kicked
    on ``pin`` 2 or 5. :meth:`from_settings` uses the configured receipt printer."""

    def __init__(
        self,
        open_printer: Callable[[], Escpos],
        *,
        pin: Literal[2, 5] = 2,
        where: str = "the receipt printer",
    ) -> None:
        if pin not in (2, 5):
            raise ValueError("a drawer is kicked on pin 2 or pin 5")
        self._open_printer = open_printer
        self._pin = pin
        self._where = where

    @classmethod
    def from_settings(cls, settings: Settings, *, pin: Literal[2, 5] = 2) -> EscposCashDrawer:
        # Imported here: the printer module opens python-escpos's adapters.
        from smartpos.devices.printer import open_printer

        return cls(lambda: open_printer(settings), pin=pin)

    def open(self) -> None:
        """Kick the drawer open. Raises DrawerError (the printer cannot be reached or refused
        the pulse); the message says how to open it by hand."""
        try:
            printer = self._open_printer()
        except (OSError, EscposError, DeviceError, RuntimeError) as exc:  # PrinterError too
            raise DrawerError(f"the cash drawer was not opened ({exc}): {_OPEN_BY_HAND}") from None
        try:
            printer.cashdraw(self._pin)
        except (OSError, EscposError) as exc:
            raise DrawerError(
                f"the cash drawer was not opened ({self._where} refused the pulse:"
                f" {' '.join(str(exc).split())}): {_OPEN_BY_HAND}"
            ) from None
        finally:
            # The pulse went out (or its failure is being reported): a failed close adds nothing.
            with contextlib.suppress(OSError, EscposError):
                printer.close()


class SimulatedCashDrawer:
    """A drawer that records when it was opened (``opens``) and is shut by ``close``, as the
    cashier pushes it in."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock
        self.opens: list[datetime] = []
        self.is_open = False

    def open(self) -> None:
        self.opens.append(self._clock())
        self.is_open = True

    def close(self) -> None:
        self.is_open = False
