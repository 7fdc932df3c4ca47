"""What a keyboard-wedge magstripe reader types for one swipe, read back into its tracks.

A wedge types ISO 7813 track 1 (``%B PAN ^ NAME ^ YYMM SSS … ?``) and track 2
(``; PAN = YYMM SSS … ?``), either or both, usually followed by Enter and sometimes with an
Enter between the tracks or the longitudinal redundancy check (LRC) character after each end
sentinel; a track it could not read comes as ``%E?`` / ``;E?``; track 3 (``+…?``) may follow
and is ignored. Readers set to leave the sentinels out type one bare track.

:func:`parse_swipe` accepts exactly that and refuses anything else with a
:class:`~smartpos.devices.ports.CardReadError` that says to swipe again: a cut-off track (a
start sentinel without its end), stray characters, a wrong LRC, letters where track 2 has
digits, two tracks that name different cards. Messages never quote the swipe.
"""

from __future__ import annotations

from dataclasses import dataclass

from smartpos.cards.pan import CardError, mask_pan
from smartpos.cards.track import Track1, Track2, parse_track1, parse_track2
from smartpos.devices.ports import CardReadError

__all__ = ["SWIPE_MAX_CHARS", "Swipe", "parse_swipe", "track_lrc"]

# Track 1 (79) + track 2 (40) + track 3 (107) with sentinels and LRCs, and line breaks.
SWIPE_MAX_CHARS = 240
_AGAIN = "swipe the card again"
_LINE_BREAKS = str.maketrans("", "", "\r\n\t")
_START = {"%": 1, ";": 2, "+": 3}
_UNREADABLE = "E"  # what readers put between the sentinels of a track they could not read
# ISO/IEC 7811: track 1 characters are 6-bit (ASCII 0x20-0x5F), track 2 and 3 are 4-bit
# (ASCII 0x30-0x3F); the LRC is the XOR of every character's bits, sentinels included.
_TRACK_BASE = {1: 0x20, 2: 0x30, 3: 0x30}
_TRACK_BITS = {1: 0x3F, 2: 0x0F, 3: 0x0F}


def track_lrc(track: int, framed: str) -> str:
    """The LRC character of ``framed`` (start sentinel, data, end sentinel) on ``track``."""
    base, bits = _TRACK_BASE[track], _TRACK_BITS[track]
    lrc = 0
    for ch in framed:
        lrc ^= (ord(ch) - base) & bits
    return chr(base + lrc)


@dataclass(frozen=True, repr=False)
class Swipe:
    """The tracks one swipe gave (``None``: absent or unreadable); at least one is set."""

    track1: Track1 | None
    track2: Track2 | None

    @property
    def pan(self) -> str:
        track = self.track2 or self.track1
        assert track is not None
        return track.pan

    def __repr__(self) -> str:
        tracks = "+".join(n for n, t in (("1", self.track1), ("2", self.track2)) if t)
        return f"Swipe({mask_pan(self.pan)}, tracks {tracks})"


def _refuse(why: str) -> CardReadError:
    return CardReadError(f"the card was not read ({why}): {_AGAIN}")


def _segments(text: str) -> dict[int, str | None]:
    """{track number: data between the sentinels, or None if the reader could not read it}."""
    found: dict[int, str | None] = {}
    i = 0
    while i < len(text):
        track = _START.get(text[i])
        if track is None:
            raise _refuse("stray characters between the tracks")
        end = text.find("?", i + 1)
        if end < 0:
            raise _refuse(f"track {track} was cut off")
        if track == 2 and 2 in found:
            track = 3  # a reader that starts track 3 with ";" as well
        if track in found:
            raise _refuse(f"track {track} came twice")
        start, body = i, text[i + 1 : end]
        i = end + 1
        if _has_lrc(text, i):
            if text[i] != track_lrc(track, text[start : end + 1]):
                raise _refuse(f"track {track} failed its check character")
            i += 1
        found[track] = None if body == _UNREADABLE else body
    return found


def _has_lrc(text: str, i: int) -> bool:
    # After an end sentinel comes the LRC, the next track's start sentinel or the end. An LRC
    # may itself look like a start sentinel; then a second one follows it.
    if i >= len(text):
        return False
    if text[i] not in _START:
        return True
    return i + 1 < len(text) and text[i + 1] in _START


def _bare(text: str) -> dict[int, str | None]:
    # A reader set to leave out the sentinels types one track's data.
    if any(ch in text for ch in _START):
        raise _refuse("stray characters before the track")
    if "^" in text:
        return {1: text}
    if "=" in text:
        return {2: text}
    raise _refuse("no track data")


def parse_swipe(text: str) -> Swipe:
    """The tracks of one swipe as a keyboard wedge typed it. Raises CardReadError (telling
    the cashier to swipe again) unless at least one of track 1 and track 2 was read, each is
    well formed (ISO 7813, its LRC right if the reader types one) and both name the same
    card (PAN, expiry, service code)."""
    if len(text) > SWIPE_MAX_CHARS:
        raise _refuse("far more characters than a card holds")
    flat = text.translate(_LINE_BREAKS).strip(" ")
    if not flat:
        raise _refuse("nothing came from the reader")
    segments = _segments(flat) if flat[0] in _START else _bare(flat)
    try:
        raw1, raw2 = segments.get(1), segments.get(2)
        track1 = parse_track1(raw1) if raw1 is not None else None
        track2 = parse_track2(raw2) if raw2 is not None else None
    except CardError as exc:
        raise _refuse(str(exc)) from None
    if track1 is None and track2 is None:
        raise _refuse("the reader could not read the stripe")
    if track1 and track2:
        same = (track1.pan, track1.expiry, track1.service_code) == (
            track2.pan,
            track2.expiry,
            track2.service_code,
        )
        if not same:
            raise _refuse("its two tracks disagree")
    return Swipe(track1, track2)
