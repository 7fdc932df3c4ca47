"""The on-screen PIN pad's server side: the digits the cardholder taps are collected here,
in this process's memory only, and handed once to the terminal, which makes the PIN block at
once (smartpos.terminal.requests); then they are gone.

The page never holds the PIN: each tap sends the *position* of the key pressed on a layout
this module issued (shuffled when the merchant asks for it), and the page shows one dot per
digit. Nothing here logs, stores or returns a digit; an entry left alone expires."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

__all__ = ["PIN_MAX_DIGITS", "PIN_MIN_DIGITS", "PinEntries"]

PIN_MIN_DIGITS = 4
PIN_MAX_DIGITS = 12  # ISO 9564
ENTRY_TIMEOUT_S = 120.0
ENTRIES_MAX = 64  # one per cashier screen; more means something is wrong


@dataclass
class _Entry:
    layout: list[str]
    digits: bytearray = field(default_factory=bytearray)
    started: float = field(default_factory=time.monotonic)

    def __repr__(self) -> str:  # never the digits
        return f"_Entry({len(self.digits)} digits)"


class PinEntries:
    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def start(self, screen: str, *, shuffled: bool = False) -> list[str]:
        """A new entry for ``screen`` (a session); returns the key layout to show: ten
        digits in the order of the keys."""
        self._expire()
        if len(self._entries) >= ENTRIES_MAX and screen not in self._entries:
            raise RuntimeError("too many PIN entries open")
        layout = list("1234567890")
        if shuffled:
            rng = secrets.SystemRandom()
            rng.shuffle(layout)
        self.cancel(screen)
        self._entries[screen] = _Entry(layout)
        return list(layout)

    def layout(self, screen: str) -> list[str] | None:
        entry = self._live(screen)
        return list(entry.layout) if entry else None

    def press(self, screen: str, position: int) -> int:
        """The key at ``position`` was tapped; returns how many digits are entered."""
        entry = self._live(screen)
        if entry is None:
            raise KeyError("no PIN entry on this screen")
        if not 0 <= position < len(entry.layout):
            raise ValueError("no such key")
        if len(entry.digits) < PIN_MAX_DIGITS:
            entry.digits.append(ord(entry.layout[position]))
        return len(entry.digits)

    def back(self, screen: str) -> int:
        entry = self._live(screen)
        if entry is None:
            return 0
        if entry.digits:
            entry.digits[-1] = 0
            del entry.digits[-1]
        return len(entry.digits)

    def count(self, screen: str) -> int:
        entry = self._live(screen)
        return len(entry.digits) if entry else 0

    def take(self, screen: str) -> str | None:
        """The PIN, once: the entry is wiped and removed. None when there is none or it is
        too short."""
        entry = self._entries.pop(screen, None)
        if entry is None or time.monotonic() - entry.started > ENTRY_TIMEOUT_S:
            if entry is not None:
                _wipe(entry)
            return None
        pin = entry.digits.decode() if len(entry.digits) >= PIN_MIN_DIGITS else None
        _wipe(entry)
        return pin

    def cancel(self, screen: str) -> None:
        entry = self._entries.pop(screen, None)
        if entry is not None:
            _wipe(entry)

    def _live(self, screen: str) -> _Entry | None:
        entry = self._entries.get(screen)
        if entry is not None and time.monotonic() - entry.started > ENTRY_TIMEOUT_S:
            self.cancel(screen)
            return None
        return entry

    def _expire(self) -> None:
        now = time.monotonic()
        for screen in [s for s, e in self._entries.items() if now - e.started > ENTRY_TIMEOUT_S]:
            self.cancel(screen)


def _wipe(entry: _Entry) -> None:
    for i in range(len(entry.digits)):
        entry.digits[i] = 0
    entry.digits.clear()
