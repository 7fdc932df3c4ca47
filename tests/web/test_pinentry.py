"""The on-screen PIN pad's server side: positions map to the issued layout, the PIN is
handed out once and wiped, and nothing shows a digit."""

from __future__ import annotations

from smartpos.web.pinentry import PinEntries


def _type(entries: PinEntries, screen: str, pin: str) -> None:
    layout = entries.layout(screen)
    assert layout is not None
    for digit in pin:
        entries.press(screen, layout.index(digit))


def test_a_shuffled_layout_still_gives_the_pin_typed() -> None:
    entries = PinEntries()
    layouts = {tuple(entries.start(f"s{i}", shuffled=True)) for i in range(20)}
    assert all(sorted(layout) == list("0123456789") for layout in layouts)
    assert len(layouts) > 1  # new orders, not one fixed shuffle
    _type(entries, "s3", "123456")
    assert entries.count("s3") == 6 and "1" not in repr(entries._entries["s3"])
    assert entries.take("s3") == "123456"
    assert entries.take("s3") is None  # once


def test_back_short_pins_and_cancel() -> None:
    entries = PinEntries()
    entries.start("a")
    _type(entries, "a", "1234")
    assert entries.back("a") == 3
    assert entries.take("a") is None  # three digits are not a PIN
    entries.start("b")
    _type(entries, "b", "9876")
    entries.cancel("b")
    assert entries.take("b") is None and entries.count("b") == 0
