"""What the card reader (or the keypad) gave the terminal: a swiped track 2, a chip or
contactless read of the card's track 2 equivalent, or a keyed PAN. Pure data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from smartpos.cards.pan import CardError, mask_pan, normalize_pan
from smartpos.cards.track import parse_expiry, parse_track2
from smartpos.protocol.messages import (
    ENTRY_CHIP,
    ENTRY_CONTACTLESS,
    ENTRY_FALLBACK,
    ENTRY_MANUAL,
    ENTRY_NAMES,
    ENTRY_SWIPE,
)

__all__ = ["CardInput"]


@dataclass(frozen=True)
class CardInput:
    """What the reader (or the keypad) gave: either track 2 (swipe) or a keyed PAN."""

    pan: str
    expiry: str | None
    track2: str | None
    entry: str  # ENTRY_SWIPE | ENTRY_MANUAL | ...
    chip_card: bool = False  # track 2's service code says the card has a chip

    def __repr__(self) -> str:
        return f"CardInput({mask_pan(self.pan)}, entry={ENTRY_NAMES.get(self.entry)})"

    @classmethod
    def parse(
        cls,
        text: str,
        expiry: str | None = None,
        *,
        chip: bool = False,
        tap: bool = False,
        fallback: bool = False,
    ) -> CardInput:
        """``text`` is a PAN (keyed entry) or ISO 7813 track 2 (``PAN=YYMM...``, swipe).
        With ``chip`` the card is read by its chip, with ``tap`` by contactless (the
        sandbox's simulated chip either way: track 2 equivalent data, and an ARQC at the
        sale). ``fallback``: a chip card's stripe swiped because its chip could not be read."""
        if chip + tap + fallback > 1:
            raise CardError("read the card one way: chip, tap or fallback swipe")
        raw = text.strip()
        read = ENTRY_CHIP if chip else ENTRY_CONTACTLESS if tap else None
        if any(sep in raw for sep in "=Dd"):
            track = parse_track2(raw)
            chip_card = track.service_code.chip_capable
            if fallback and not chip_card:
                raise CardError("fallback is for chip cards (service code 2xx or 6xx)")
            entry = read or (ENTRY_FALLBACK if fallback else ENTRY_SWIPE)
            return cls(track.pan, track.expiry, track.encode(), entry, chip_card)
        if fallback:
            raise CardError("fallback means swiping the card: give its track 2")
        entry = read or ENTRY_MANUAL
        return cls(normalize_pan(raw), parse_expiry(expiry) if expiry else None, None, entry)

    @property
    def reads_chip(self) -> bool:
        """Read by chip or contactless: the sale carries the card's ARQC."""
        return self.entry in (ENTRY_CHIP, ENTRY_CONTACTLESS)
