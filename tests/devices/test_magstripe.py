"""What a keyboard-wedge magstripe reader types, read back: both tracks, either, the marks of
an unreadable track, LRCs, and every kind of bad swipe refused with "swipe again"."""

from __future__ import annotations

import pytest

from smartpos.devices.cardreader import card_from_swipe
from smartpos.devices.magstripe import SWIPE_MAX_CHARS, parse_swipe
from smartpos.devices.ports import CardReadError, UseChipError
from smartpos.protocol.messages import ENTRY_FALLBACK, ENTRY_SWIPE
from tests.devices.cards import CHIP_PAN, EXPIRY, PAN, VISA_PAN, lrc, track1, track2

T1 = f"%{track1()}?"
T2 = f";{track2()}?"


@pytest.mark.parametrize(
    "typed",
    [
        T1 + T2 + "\r",  # both tracks, then Enter (the usual factory setting)
        T1 + "\r\n" + T2 + "\r\n",  # Enter after each track
        T1 + "\n" + T2,  # LF between, no Enter at the end
        T1 + T2,  # no Enter at all
    ],
)
def test_both_tracks_as_readers_type_them(typed: str) -> None:
    swipe = parse_swipe(typed)
    assert swipe.track1 is not None and swipe.track2 is not None
    assert (swipe.track1.pan, swipe.track1.name, swipe.track1.expiry) == (PAN, "ZHANG/SAN", EXPIRY)
    assert swipe.track2.encode() == track2()
    card = card_from_swipe(swipe, fallback=False)
    assert (card.pan, card.expiry, card.track2, card.entry) == (PAN, EXPIRY, track2(), ENTRY_SWIPE)


def test_track_2_only() -> None:
    swipe = parse_swipe(T2 + "\r")
    assert swipe.track1 is None and swipe.track2 is not None
    assert card_from_swipe(swipe, fallback=False).track2 == track2()


def test_track_1_only_is_read_but_the_terminal_needs_track_2() -> None:
    swipe = parse_swipe(T1 + "\r")
    assert swipe.track2 is None and swipe.track1 is not None and swipe.pan == PAN
    with pytest.raises(CardReadError, match=r"only track 1 .* swipe the card again"):
        card_from_swipe(swipe, fallback=False)


def test_an_unreadable_track_is_left_out_and_the_other_used() -> None:
    swipe = parse_swipe("%E?" + T2 + "\r")
    assert swipe.track1 is None and swipe.track2 is not None
    swipe = parse_swipe(T1 + ";E?\r")
    assert swipe.track1 is not None and swipe.track2 is None


def test_track_3_is_ignored() -> None:
    swipe = parse_swipe(T1 + T2 + "+0123456789?\r")
    assert swipe.track2 is not None and swipe.track2.pan == PAN


@pytest.mark.parametrize("typed", ["%E?;E?\r", "%E?\r", ";E?\r", "\r\n", ""])
def test_nothing_readable_means_swipe_again(typed: str) -> None:
    with pytest.raises(CardReadError, match="swipe the card again"):
        parse_swipe(typed)


def test_bare_tracks_from_a_reader_that_leaves_out_the_sentinels() -> None:
    assert parse_swipe(track2() + "\r").track2 is not None
    assert parse_swipe(track1() + "\r").track1 is not None


def test_lrc_characters_are_checked_when_the_reader_types_them() -> None:
    good = T1 + lrc(T1, 1) + T2 + lrc(T2, 2) + "\r"
    swipe = parse_swipe(good)
    assert swipe.track1 is not None and swipe.track2 is not None
    wrong = chr(ord(lrc(T2, 2)) ^ 1)
    with pytest.raises(CardReadError, match="track 2 failed its check character"):
        parse_swipe(T2 + wrong + "\r")


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        (f";{PAN}={EXPIRY}1010000\r", "track 2 was cut off"),  # no end sentinel
        (f"%{track1()}\r", "track 1 was cut off"),
        (f";{PAN[:10]}A{PAN[11:]}={EXPIRY}1010000000000?\r", "only digits"),  # a letter in the PAN
        (f";{PAN}={EXPIRY}101000X000000?\r", "only digits"),  # a letter in the discretionary data
        (f";{PAN}={EXPIRY}?\r", "missing the expiry or service code"),
        (f";{PAN[:-1]}{(int(PAN[-1]) + 1) % 10}={EXPIRY}1010000?\r", "Luhn"),  # one digit misread
        (f";{PAN}=3013101000?\r", "month"),
        (f"x{T2}\r", "stray characters"),
        (f"{T2}xy\r", "check character|stray characters"),
        (f"{T2}{T2}{T2}\r", "came twice"),
        (f"%{track1(pan=VISA_PAN)}?{T2}\r", "two tracks disagree"),
        (f"%{track1(expiry='2911')}?{T2}\r", "two tracks disagree"),
        ("hello world\r", "no track data"),
    ],
)
def test_a_bad_swipe_is_refused_without_quoting_it(typed: str, why: str) -> None:
    with pytest.raises(CardReadError, match=why) as caught:
        parse_swipe(typed)
    message = str(caught.value)
    assert message.endswith("swipe the card again")
    assert PAN[6:12] not in message and EXPIRY + "101" not in message


def test_a_swipe_far_too_long_is_refused() -> None:
    with pytest.raises(CardReadError, match="far more characters"):
        parse_swipe(T2 * 10)
    assert len(T2 * 10) > SWIPE_MAX_CHARS


def test_a_swiped_chip_card_must_be_inserted_unless_its_chip_failed() -> None:
    swipe = parse_swipe(f";{track2(pan=CHIP_PAN, service_code='201')}?\r")
    with pytest.raises(UseChipError, match="insert it or tap it"):
        card_from_swipe(swipe, fallback=False)
    card = card_from_swipe(swipe, fallback=True)
    assert (card.entry, card.chip_card) == (ENTRY_FALLBACK, True)


def test_fallback_does_not_mark_a_stripe_only_card() -> None:
    card = card_from_swipe(parse_swipe(T2), fallback=True)
    assert card.entry == ENTRY_SWIPE


def test_the_repr_masks_the_card() -> None:
    text = repr(parse_swipe(T1 + T2))
    assert PAN not in text and "ZHANG" not in text and EXPIRY not in text
    assert text == f"Swipe({PAN[:6]}******{PAN[-4:]}, tracks 1+2)"
