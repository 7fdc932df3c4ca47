"""Barcode scanner adapters: the USB keyboard-wedge scanner (told from typing by key timing,
:mod:`smartpos.devices.wedge`) and a simulated scanner for the demo, training and tests.

Optionally the GS1 check digit of numeric codes of a GTIN's length (EAN-8, UPC-A, EAN-13,
GTIN-14) is verified, so a misread digit is caught at the till and not at the catalogue.
"""

from __future__ import annotations

from collections.abc import Callable

from smartpos.devices.handoff import Handoff
from smartpos.devices.ports import Scan, ScanError
from smartpos.devices.wedge import MAX_GAP_MS, MIN_SCAN_CHARS, KeyQueue, KeyTiming, WedgeInput

__all__ = ["GTIN_LENGTHS", "SimulatedScanner", "WedgeScanner", "gs1_check_digit", "gs1_valid"]

GTIN_LENGTHS = (8, 12, 13, 14)  # EAN-8, UPC-A (GTIN-12), EAN-13, GTIN-14
SCAN_MAX_CHARS = 256  # longer than any 1D code; a 2D code at the till stays under it
_SCANS_WAITING = 64
_AGAIN = "scan it again"


def gs1_check_digit(digits: str) -> str:
    """The GS1 mod-10 check digit for ``digits`` (the code without its check digit): from
    the right, weights 3, 1, 3, 1…"""
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError("a GS1 code has digits only")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str(-total % 10)


def gs1_valid(code: str) -> bool:
    """True if ``code`` is a GTIN (8, 12, 13 or 14 digits) whose last digit checks."""
    return (
        len(code) in GTIN_LENGTHS
        and code.isascii()
        and code.isdigit()
        and gs1_check_digit(code[:-1]) == code[-1]
    )


def _accept(code: str, check_digits: bool) -> Scan:
    if len(code) > SCAN_MAX_CHARS:
        raise ScanError(f"the barcode read is longer than any the till takes: {_AGAIN}")
    numeric = code.isascii() and code.isdigit()
    if check_digits and numeric and len(code) in GTIN_LENGTHS and not gs1_valid(code):
        raise ScanError(f"the barcode was misread (its check digit is wrong): {_AGAIN}")
    return Scan(code)


class WedgeScanner:
    """A USB keyboard-wedge barcode scanner whose keys arrive in ``keys``. A scan ends with
    Enter or Tab (or the configured ``suffix``); ``prefix`` and ``suffix`` are removed; keys
    a person typed go to ``on_typed``, in order. ``check_digits``: verify GTIN check digits."""

    def __init__(
        self,
        keys: KeyQueue,
        *,
        on_typed: Callable[[str], None] | None = None,
        prefix: str = "",
        suffix: str = "",
        max_gap_ms: float = MAX_GAP_MS,
        min_length: int = MIN_SCAN_CHARS,
        check_digits: bool = False,
    ) -> None:
        timing = KeyTiming(
            max_gap_ms=max_gap_ms, min_length=min_length, prefix=prefix, suffix=suffix
        )
        self._input = WedgeInput(keys, timing, on_typed)
        self._check_digits = check_digits

    async def read_scan(self, timeout_s: float | None = None) -> Scan:
        """The next barcode scanned. Raises ScanError for a scan cut off before its end, a
        wrong check digit, or none within ``timeout_s``."""
        try:
            burst = await self._input.next_burst(timeout_s)
        except TimeoutError:
            raise ScanError("no barcode was scanned: scan the item") from None
        if burst.kind == "partial":
            raise ScanError(f"the scan was cut off before its end: {_AGAIN}")
        return _accept(burst.text, self._check_digits)


class SimulatedScanner:
    """A scanner a test or the demo scans with: ``scan(code)``."""

    def __init__(self, *, check_digits: bool = False) -> None:
        self._scans: Handoff[str] = Handoff(_SCANS_WAITING, "scanner")
        self._check_digits = check_digits

    def scan(self, code: str) -> None:
        """Scan a barcode reading ``code``."""
        self._scans.give(code)

    async def read_scan(self, timeout_s: float | None = None) -> Scan:
        """The next barcode scanned (ScanError as :meth:`WedgeScanner.read_scan`)."""
        try:
            code = await self._scans.take(timeout_s)
        except TimeoutError:
            raise ScanError("no barcode was scanned: scan the item") from None
        if not code:
            raise ScanError(f"the scan gave nothing: {_AGAIN}")
        return _accept(code, self._check_digits)
