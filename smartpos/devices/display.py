"""Customer display adapters. The port (:class:`~smartpos.devices.ports.CustomerDisplay`)
is all the terminal needs; the simulated display keeps what it was told to show, for the
demo's second screen and for tests. Real ones (a VFD pole display on serial, a second
screen fed by server-sent events) come with the cashier app."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["SimulatedCustomerDisplay"]

DISPLAY_MAX_LINES = 4
DISPLAY_MAX_CHARS = 40


class SimulatedCustomerDisplay:
    """Shows up to 4 lines of up to 40 characters (a pole display's size); longer text is
    cut, as the glass would cut it."""

    def __init__(self) -> None:
        self.lines: tuple[str, ...] = ()

    def show(self, lines: Sequence[str]) -> None:
        self.lines = tuple(line[:DISPLAY_MAX_CHARS] for line in lines[:DISPLAY_MAX_LINES])

    def clear(self) -> None:
        self.lines = ()
