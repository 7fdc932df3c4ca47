"""Key timing tells a wedge from a person: fast keys ending in Enter/Tab are a scan, slow
keys are typing; prefixes and suffixes go; no key is ever lost, in any interleaving."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartpos.devices.wedge import Burst, KeyEvent, KeyQueue, KeyTiming, WedgeInput

EAN = "6901234567892"


def feed(timing: KeyTiming, keys: list[tuple[str, float]], end: bool = True) -> list[Burst]:
    out: list[Burst] = []
    for char, at_ms in keys:
        out += timing.feed(char, at_ms)
    if end:
        out += timing.end()
    return out


def typed_slowly(text: str, start_ms: float, gap_ms: float = 180.0) -> list[tuple[str, float]]:
    return [(c, start_ms + i * gap_ms) for i, c in enumerate(text)]


def scanned(text: str, start_ms: float, gap_ms: float = 4.0) -> list[tuple[str, float]]:
    return [(c, start_ms + i * gap_ms) for i, c in enumerate(text)]


def joined_typing(bursts: list[Burst]) -> list[Burst]:
    """Consecutive typed bursts as one (a person's keys come one burst each)."""
    out: list[Burst] = []
    for burst in bursts:
        if out and burst.kind == "typed" and out[-1].kind == "typed":
            out[-1] = Burst("typed", out[-1].text + burst.text)
        else:
            out.append(burst)
    return out


def test_fast_keys_ending_in_enter_are_a_scan() -> None:
    assert feed(KeyTiming(), scanned(EAN + "\r", 0)) == [Burst("scan", EAN)]


def test_tab_ends_a_scan_too() -> None:
    assert feed(KeyTiming(), scanned(EAN + "\t", 0)) == [Burst("scan", EAN)]


def test_slow_keys_are_typing_and_every_one_is_kept() -> None:
    bursts = feed(KeyTiming(), typed_slowly("12\r", 0))
    assert bursts == [Burst("typed", "1"), Burst("typed", "2"), Burst("typed", "\r")]


def test_keys_just_over_100_ms_apart_are_typing() -> None:
    bursts = feed(KeyTiming(), typed_slowly(EAN + "\r", 0, gap_ms=101))
    assert all(b.kind == "typed" for b in bursts)
    assert "".join(b.text for b in bursts) == EAN + "\r"
    at_100 = feed(KeyTiming(), typed_slowly(EAN + "\r", 0, gap_ms=100))
    assert at_100 == [Burst("scan", EAN)]


def test_the_first_digit_of_a_scan_after_a_pause_is_not_lost() -> None:
    keys = typed_slowly("3", 0) + scanned(EAN + "\r", 5_000)
    assert feed(KeyTiming(), keys) == [Burst("typed", "3"), Burst("scan", EAN)]


def test_cr_lf_after_a_scan_is_one_end_not_a_typed_enter() -> None:
    keys = scanned(EAN + "\r\n", 0)
    assert feed(KeyTiming(), keys) == [Burst("scan", EAN)]
    # A person's Enter later is typing again.
    later = feed(KeyTiming(), [*keys, ("\r", 2_000.0)])
    assert later == [Burst("scan", EAN), Burst("typed", "\r")]


def test_prefix_and_suffix_are_stripped() -> None:
    timing = KeyTiming(prefix="]E0", suffix="#")
    assert feed(timing, scanned(f"]E0{EAN}#\r", 0)) == [Burst("scan", EAN)]


def test_a_suffix_ends_a_scan_without_enter() -> None:
    timing = KeyTiming(suffix="#")
    assert feed(timing, scanned(f"{EAN}#", 0)) == [Burst("scan", EAN)]


def test_a_key_typed_just_before_a_prefixed_scan_stays_typing() -> None:
    timing = KeyTiming(prefix="\x02")
    keys = [("7", 0.0), *scanned(f"\x02{EAN}\r", 40)]
    assert feed(timing, keys) == [Burst("typed", "7"), Burst("scan", EAN)]


def test_a_fast_burst_without_its_enter_is_a_partial_scan() -> None:
    bursts = feed(KeyTiming(), scanned(EAN[:9], 0))
    assert bursts == [Burst("partial", EAN[:9])]


def test_a_person_typing_without_enter_is_typing_not_a_partial_scan() -> None:
    bursts = feed(KeyTiming(), scanned("hello", 0, gap_ms=80))
    assert bursts == [Burst("typed", "hello")]


def test_two_fast_keys_and_enter_are_too_short_for_a_scan() -> None:
    assert feed(KeyTiming(), scanned("12\r", 0)) == [Burst("typed", "12\r")]


def test_scans_and_typing_interleaved_keep_their_order() -> None:
    keys = (
        typed_slowly("2", 0)
        + scanned(EAN + "\r", 1_000)
        + typed_slowly("x5", 2_000)
        + scanned("ABC-123\t", 3_000)
        + typed_slowly("\r", 4_000)
    )
    assert joined_typing(feed(KeyTiming(), keys)) == [
        Burst("typed", "2"),
        Burst("scan", EAN),
        Burst("typed", "x5"),
        Burst("scan", "ABC-123"),
        Burst("typed", "\r"),
    ]


def test_without_terminators_silence_ends_a_burst() -> None:
    """The magstripe reader's setting: a swipe holds line breaks."""
    timing = KeyTiming(terminators="")
    swipe = "%B1^A/B^3012?\r\n;1=3012?\r\n"
    assert feed(timing, scanned(swipe, 0)) == [Burst("scan", swipe)]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="terminator"):
        KeyTiming(suffix="\r")
    with pytest.raises(ValueError, match="min_length"):
        KeyTiming(min_length=0)
    with pytest.raises(ValueError, match="one character"):
        KeyEvent("ab", 0.0)


_TYPED = st.text(alphabet="0123456789abc", min_size=1, max_size=4)
_SCAN = st.tuples(
    st.text(alphabet="0123456789ABC-", min_size=3, max_size=20),
    st.sampled_from(["\r", "\t", "\r\n"]),
)


@settings(max_examples=200, deadline=None)
@given(
    segments=st.lists(st.one_of(_TYPED, _SCAN), min_size=1, max_size=8),
    scan_gap_ms=st.floats(1, 30),
    typing_gap_ms=st.floats(101, 900),
)
def test_no_key_is_lost_whatever_the_interleaving(
    segments: list[str | tuple[str, str]], scan_gap_ms: float, typing_gap_ms: float
) -> None:
    keys: list[tuple[str, float]] = []
    expected: list[Burst] = []
    now = 0.0
    for segment in segments:
        now += 1_000  # a pause between segments
        if isinstance(segment, tuple):
            code, end = segment
            keys += scanned(code + end, now, scan_gap_ms)
            expected.append(Burst("scan", code))
        else:
            keys += typed_slowly(segment, now, typing_gap_ms)
            if expected and expected[-1].kind == "typed":
                expected[-1] = Burst("typed", expected[-1].text + segment)
            else:
                expected.append(Burst("typed", segment))
        now = keys[-1][1]
    assert joined_typing(feed(KeyTiming(), keys)) == expected


def test_the_queue_hands_keys_to_the_wedge_input_in_order() -> None:
    typed: list[str] = []

    async def go() -> list[Burst]:
        keys = KeyQueue()
        source = WedgeInput(keys, KeyTiming(max_gap_ms=20), typed.append)
        keys.put("9", 0.0)
        keys.put_text(EAN + "\r", start_ms=1_000, gap_ms=2)
        keys.put_text("ABC\r", start_ms=5_000, gap_ms=2)
        return [await source.next_burst(1.0), await source.next_burst(1.0)]

    assert asyncio.run(go()) == [Burst("scan", EAN), Burst("scan", "ABC")]
    assert typed == ["9"]


def test_silence_ends_an_open_burst_in_real_time() -> None:
    async def go() -> Burst:
        keys = KeyQueue()
        source = WedgeInput(keys, KeyTiming(max_gap_ms=20))
        keys.put_text(EAN[:8], start_ms=0, gap_ms=2)  # the scanner's Enter never comes
        return await source.next_burst(1.0)

    assert asyncio.run(go()) == Burst("partial", EAN[:8])


def test_waiting_for_a_burst_can_time_out() -> None:
    async def go() -> None:
        await WedgeInput(KeyQueue(), KeyTiming()).next_burst(0.05)

    with pytest.raises(TimeoutError):
        asyncio.run(go())
