"""Card reader adapters: the simulated reader (demo, training, tests) and the USB
keyboard-wedge magstripe reader. The PC/SC chip reader is :mod:`smartpos.devices.pcsc`.

The simulated reader holds the sandbox's simulated chip cards (:class:`SimulatedChip`,
public test issuer keys) and their transaction counters (:class:`CardCounters`, a private
state file): a card keeps its own counter, whichever terminal reads it. A test or the demo
presents a card — ``swipe``, ``insert``, ``tap`` — and the terminal's ``read_card`` takes
it, as it would take it from a real reader.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from smartpos.cards.emv import SimulatedChip, TerminalData
from smartpos.cards.pan import CardError
from smartpos.cards.reading import CardInput
from smartpos.devices.counters import CardCounters
from smartpos.devices.handoff import Handoff
from smartpos.devices.magstripe import Swipe, parse_swipe
from smartpos.devices.ports import (
    CardReadError,
    ChipError,
    NoCardError,
    NoChipError,
    UseChipError,
)
from smartpos.devices.wedge import MAX_GAP_MS, KeyQueue, KeyTiming, WedgeInput
from smartpos.protocol.messages import ENTRY_CHIP

__all__ = [
    "DEFAULT_PSN",
    "SimulatedCardReader",
    "WedgeCardReader",
    "card_from_swipe",
    "default_state_path",
]

DEFAULT_PSN = "01"  # the PAN sequence number of the sandbox's simulated chip cards
_PRESENTED_LIMIT = 16  # cards presented and not yet read: a demo clicking ahead, no more
_SWIPE_MIN_CHARS = 3  # "%E?" (a track the reader could not read) is still a swipe
_NO_CARD = "no card was presented: swipe, insert or tap the card"


def default_state_path(home: Path) -> Path:
    """Where a terminal's simulated reader keeps its cards' counters, under ``home``."""
    return home / "devices" / "simulated-cards.json"


def card_from_swipe(swipe: Swipe, *, fallback: bool) -> CardInput:
    """The terminal's view of a swipe. Track 2 is what ISO 8583 carries (field 35), so a
    swipe that gave track 1 only is read again. A chip card's stripe is refused unless
    ``fallback`` (its chip could not be read); then its entry mode says so."""
    if swipe.track2 is None:
        raise CardReadError("only track 1 of the card was read: swipe the card again")
    chip_card = swipe.track2.service_code.chip_capable
    if chip_card and not fallback:
        raise UseChipError(
            "this card has a chip: insert it or tap it (swipe it only when its chip cannot be read)"
        )
    return CardInput.parse(swipe.track2.encode(), fallback=chip_card)


@dataclass(frozen=True, repr=False)
class _Presented:
    how: Literal["swipe", "insert", "tap", "key"]
    text: str  # what the card gives: the swipe as typed, its track 2 or its PAN
    expiry: str | None = None
    psn: str = DEFAULT_PSN
    chip_fails: bool = False

    def __repr__(self) -> str:
        return f"_Presented({self.how})"


class SimulatedCardReader:
    """A card reader with the sandbox's simulated cards in it; the counters of the chip
    cards it has read are kept in ``state_path`` (see :class:`CardCounters`)."""

    def __init__(self, state_path: Path, *, token_key: bytes | None = None) -> None:
        self.counters = CardCounters(state_path, token_key=token_key)
        self._presented: Handoff[_Presented] = Handoff(_PRESENTED_LIMIT, "card reader")
        self._card: CardInput | None = None
        self._chip: SimulatedChip | None = None
        self._psn: str | None = None

    def __repr__(self) -> str:
        card = repr(self._card) if self._card is not None else "no card"
        return f"SimulatedCardReader({card})"

    # -- presenting a card (tests, demo, training) -------------------------------------

    def swipe(self, text: str) -> None:
        """Swipe a card: ``text`` is what a wedge reader types (tracks with sentinels) or a
        bare track 2."""
        self._presented.give(_Presented("swipe", text))

    def insert(self, card: str, *, psn: str = DEFAULT_PSN, chip_fails: bool = False) -> None:
        """Insert a chip card given by its track 2 (equivalent data) or PAN. ``chip_fails``:
        its chip cannot be read (the terminal may then take a fallback swipe)."""
        self._presented.give(_Presented("insert", card, psn=psn, chip_fails=chip_fails))

    def tap(self, card: str, *, psn: str = DEFAULT_PSN) -> None:
        """Tap a contactless card (or phone) given by its track 2 equivalent or PAN."""
        self._presented.give(_Presented("tap", card, psn=psn))

    def key_in(self, pan: str, expiry: str | None = None) -> None:
        """The card number typed in (a card that cannot be read)."""
        self._presented.give(_Presented("key", pan, expiry=expiry))

    # -- the port ----------------------------------------------------------------------

    @property
    def psn(self) -> str | None:
        return self._psn if self._chip is not None else None

    @property
    def card(self) -> CardInput | None:
        """The card read by its chip and still in the reader (None: none)."""
        return self._card if self._chip is not None else None

    async def read_card(
        self, timeout_s: float | None = None, *, fallback: bool = False
    ) -> CardInput:
        """The next card presented (see :class:`~smartpos.devices.ports.CardReader`)."""
        self.release()
        try:
            presented = await self._presented.take(timeout_s)
        except TimeoutError:
            raise NoCardError(_NO_CARD) from None
        match presented.how:
            case "swipe":
                return card_from_swipe(parse_swipe(presented.text), fallback=fallback)
            case "key":
                return _keyed(presented.text, presented.expiry)
            case _:
                return self._read_chip(presented)

    def _read_chip(self, presented: _Presented) -> CardInput:
        tap = presented.how == "tap"
        if presented.chip_fails:
            raise ChipError(
                "the chip could not be read: insert the card again, or swipe it if its chip"
                " still cannot be read"
            )
        try:
            card = CardInput.parse(presented.text, chip=not tap, tap=tap)
            chip = SimulatedChip(card.pan, presented.psn)
        except CardError as exc:
            raise ChipError(f"the card was not read ({exc}): present it again") from None
        self._card, self._chip, self._psn = card, chip, presented.psn
        return card

    async def generate_ac(self, terminal: TerminalData) -> dict[str, bytes]:
        """First GENERATE AC: the card steps its counter (kept in the state file before the
        cryptogram exists) and gives its ARQC over ``terminal``'s data."""
        chip, card = self._require_chip()
        psn = self._psn or DEFAULT_PSN
        atc = await asyncio.to_thread(self.counters.next_atc, card.pan, psn)
        return chip.generate_arqc(terminal, atc)

    async def complete(
        self, icc: dict[str, bytes], tag_91: bytes | None, approved: bool
    ) -> dict[str, bytes]:
        """Second GENERATE AC of the inserted card: TC if the issuer approved and tag 91 is
        its answer, else AAC. A tapped card has left the field by now."""
        chip, card = self._require_chip()
        if card.entry != ENTRY_CHIP:
            raise NoChipError(
                "a tapped card is no longer in the reader: insert the chip card to finish by chip"
            )
        return chip.complete(icc, tag_91, approved)

    def release(self) -> None:
        """The card was taken out: forget it."""
        self._card = self._chip = None
        self._psn = None

    def _require_chip(self) -> tuple[SimulatedChip, CardInput]:
        if self._chip is None or self._card is None:
            raise NoChipError("this card was not read by its chip: insert the chip card")
        return self._chip, self._card


def _keyed(pan: str, expiry: str | None) -> CardInput:
    try:
        return CardInput.parse(pan, expiry)
    except CardError as exc:
        raise CardReadError(f"the card number was not taken ({exc}): key it in again") from None


class WedgeCardReader:
    """A USB keyboard-wedge magstripe reader: each swipe arrives as a burst of typed keys in
    ``keys``; keys a person typed go to ``on_typed``, unchanged. Swipes only: it has no chip
    to ask (:class:`NoChipError`)."""

    def __init__(
        self,
        keys: KeyQueue,
        *,
        on_typed: Callable[[str], None] | None = None,
        max_gap_ms: float = MAX_GAP_MS,
        prefix: str = "",
        suffix: str = "",
    ) -> None:
        # No terminator: a swipe holds line breaks (one after each track on some readers),
        # so only silence ends it.
        timing = KeyTiming(
            max_gap_ms=max_gap_ms,
            min_length=_SWIPE_MIN_CHARS,
            terminators="",
            prefix=prefix,
            suffix=suffix,
        )
        self._on_typed = on_typed
        self._input = WedgeInput(keys, timing, on_typed)

    @property
    def psn(self) -> str | None:
        return None

    async def read_card(
        self, timeout_s: float | None = None, *, fallback: bool = False
    ) -> CardInput:
        """The next swipe (see :class:`~smartpos.devices.ports.CardReader`)."""
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    burst = await self._input.next_burst()
                    if _looks_like_swipe(burst.text):
                        return card_from_swipe(parse_swipe(burst.text), fallback=fallback)
                    if self._on_typed is not None:
                        self._on_typed(burst.text)  # fast typing, not a card
        except TimeoutError:
            raise NoCardError(_NO_CARD) from None

    async def generate_ac(self, terminal: TerminalData) -> dict[str, bytes]:
        raise NoChipError("a magstripe reader cannot read a chip: insert the card in a chip reader")

    async def complete(
        self, icc: dict[str, bytes], tag_91: bytes | None, approved: bool
    ) -> dict[str, bytes]:
        raise NoChipError("a magstripe reader cannot read a chip: insert the card in a chip reader")

    def release(self) -> None:
        """Nothing to forget: a swipe leaves nothing in the reader."""


def _looks_like_swipe(text: str) -> bool:
    stripped = text.strip()
    return stripped[:1] in ("%", ";") or "=" in stripped or "^" in stripped
