"""Barcode scanners: the wedge scanner through key timing, the simulated one, GS1 check
digits, and a half scan refused with "scan again"."""

from __future__ import annotations

import asyncio

import pytest

from smartpos.devices.ports import Scan, ScanError, Scanner
from smartpos.devices.scanner import SimulatedScanner, WedgeScanner, gs1_check_digit, gs1_valid
from smartpos.devices.wedge import KeyQueue

# Published GTINs: EAN-13 4006381333931 (GS1's example), UPC-A 036000291452, EAN-8 96385074.
GOOD = ("4006381333931", "036000291452", "96385074", "10614141000415")


@pytest.mark.parametrize("code", GOOD)
def test_gs1_check_digits_of_published_codes(code: str) -> None:
    assert gs1_valid(code)
    assert gs1_check_digit(code[:-1]) == code[-1]
    wrong = code[:-1] + str((int(code[-1]) + 1) % 10)
    assert not gs1_valid(wrong)


def test_gs1_is_for_digit_codes_of_a_gtin_length() -> None:
    assert not gs1_valid("40063813339")  # 11 digits
    assert not gs1_valid("400638133393A")
    with pytest.raises(ValueError, match="digits"):
        gs1_check_digit("12a")


def wedge(keys: KeyQueue, typed: list[str], **options: object) -> WedgeScanner:
    return WedgeScanner(keys, on_typed=typed.append, max_gap_ms=20, **options)  # type: ignore[arg-type]


def test_the_wedge_scanner_reads_a_scan_and_passes_typing_on() -> None:
    typed: list[str] = []

    async def go() -> Scan:
        keys = KeyQueue()
        scanner = wedge(keys, typed, prefix="]E0")
        keys.put("4", 0.0)
        keys.put_text("]E04006381333931\r\n", start_ms=2_000, gap_ms=3)
        return await scanner.read_scan(1.0)

    assert asyncio.run(go()) == Scan("4006381333931")
    assert typed == ["4"]


def test_a_misread_check_digit_is_refused_when_checking() -> None:
    async def go(check: bool) -> Scan:
        keys = KeyQueue()
        keys.put_text("4006381333932\r", start_ms=0, gap_ms=3)
        return await wedge(keys, [], check_digits=check).read_scan(1.0)

    assert asyncio.run(go(False)) == Scan("4006381333932")
    with pytest.raises(ScanError, match=r"check digit is wrong\): scan it again"):
        asyncio.run(go(True))


def test_codes_that_are_not_gtins_pass_the_check() -> None:
    async def go() -> Scan:
        keys = KeyQueue()
        keys.put_text("ABC-1234\r", start_ms=0, gap_ms=3)
        return await wedge(keys, [], check_digits=True).read_scan(1.0)

    assert asyncio.run(go()) == Scan("ABC-1234")


def test_a_half_scan_is_refused_and_the_next_one_read() -> None:
    async def go() -> tuple[str, Scan]:
        keys = KeyQueue()
        scanner = wedge(keys, [])
        keys.put_text("4006381", start_ms=0, gap_ms=3)  # its Enter never came
        with pytest.raises(ScanError) as caught:
            await scanner.read_scan(1.0)
        keys.put_text("96385074\r", start_ms=5_000, gap_ms=3)
        return str(caught.value), await scanner.read_scan(1.0)

    message, scan = asyncio.run(go())
    assert message == "the scan was cut off before its end: scan it again"
    assert scan == Scan("96385074")


def test_no_scan_in_time_says_so() -> None:
    async def go() -> None:
        await wedge(KeyQueue(), []).read_scan(0.05)

    with pytest.raises(ScanError, match="no barcode was scanned"):
        asyncio.run(go())


def test_the_simulated_scanner_checks_like_the_real_one() -> None:
    async def go() -> list[Scan]:
        scanner = SimulatedScanner(check_digits=True)
        scanner.scan("036000291452")
        scanner.scan("036000291453")
        first = await scanner.read_scan(1.0)
        with pytest.raises(ScanError, match="check digit"):
            await scanner.read_scan(1.0)
        scanner.scan("")
        with pytest.raises(ScanError, match="gave nothing"):
            await scanner.read_scan(1.0)
        return [first]

    assert asyncio.run(go()) == [Scan("036000291452")]


def test_both_scanners_are_the_port() -> None:
    assert isinstance(SimulatedScanner(), Scanner)
    assert isinstance(WedgeScanner(KeyQueue()), Scanner)
