import contextlib
import datetime

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from smartpos.cards import (
    CardError,
    ServiceCode,
    Track1,
    Track2,
    expiry_passed,
    luhn_check_digit,
    mask_pan,
    parse_expiry,
    parse_track1,
    parse_track2,
)

PAN = "6212345678901232"
TRACK2 = f"{PAN}=25121010123456789"
TRACK1 = f"B{PAN}^ZHANG/SAN^25121010000123456"
TRACK1_CHARS = "".join(chr(c) for c in range(0x20, 0x60) if chr(c) not in "%^?")


@st.composite
def valid_pans(draw: st.DrawFn) -> str:
    partial = draw(st.text(alphabet="0123456789", min_size=11, max_size=18))
    return partial + luhn_check_digit(partial)


expiries = st.builds(lambda yy, mm: f"{yy:02d}{mm:02d}", st.integers(0, 99), st.integers(1, 12))
service_codes = st.builds(ServiceCode, st.text(alphabet="0123456789", min_size=3, max_size=3))


@st.composite
def track2s(draw: st.DrawFn) -> Track2:
    pan = draw(valid_pans())
    room = 37 - len(pan) - 8
    disc = draw(st.text(alphabet="0123456789", max_size=room))
    return Track2(pan, draw(expiries), draw(service_codes), disc)


@st.composite
def track1s(draw: st.DrawFn) -> Track1:
    pan = draw(valid_pans())
    name = draw(st.text(alphabet=TRACK1_CHARS, min_size=2, max_size=26))
    room = 76 - len(pan) - len(name) - 10
    disc = draw(st.text(alphabet=TRACK1_CHARS, max_size=room))
    return Track1(pan, name, draw(expiries), draw(service_codes), disc)


# --- service code -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "chip", "intl", "pin", "pin_if_pad", "goods"),
    [
        ("101", False, True, False, False, True),
        ("201", True, True, False, False, True),
        ("221", True, True, False, False, True),
        ("601", True, False, False, False, True),
        ("501", False, False, False, False, True),
        ("120", False, True, True, False, True),
        ("122", False, True, False, False, True),  # goods and services only: a sale is fine
        ("123", False, True, True, False, False),  # ATM only
        ("124", False, True, False, False, False),  # cash only
        ("125", False, True, True, False, True),
        ("126", False, True, False, True, True),
        ("127", False, True, False, True, True),
        ("128", False, True, False, False, False),  # unassigned
        ("701", False, False, False, False, True),
        ("999", False, False, False, False, False),
    ],
)
def test_service_code(
    code: str, chip: bool, intl: bool, pin: bool, pin_if_pad: bool, goods: bool
) -> None:
    sc = ServiceCode(code)
    assert sc.chip_capable is chip
    assert sc.international is intl
    assert sc.pin_required is pin
    assert sc.pin_if_pad_present is pin_if_pad
    assert sc.goods_and_services_allowed is goods


@pytest.mark.parametrize("code", ["", "12", "1234", "12a", "１２１"])
def test_service_code_rejects(code: str) -> None:
    with pytest.raises(CardError):
        ServiceCode(code)


# --- track 2 ----------------------------------------------------------------------------------


def test_parse_track2_fields() -> None:
    t = parse_track2(TRACK2)
    assert (t.pan, t.expiry, t.service_code, t.discretionary) == (
        PAN,
        "2512",
        ServiceCode("101"),
        "0123456789",
    )
    assert t.encode() == TRACK2


@pytest.mark.parametrize(
    "text",
    [
        f";{TRACK2}?",
        f";{TRACK2}",
        f"{PAN}D25121010123456789",
        f"{PAN}d25121010123456789",
        f"{PAN}D25121010123456789F",
        f"{PAN}D25121010123456789f",
    ],
)
def test_parse_track2_accepts_sentinels_and_bcd_form(text: str) -> None:
    assert parse_track2(text) == parse_track2(TRACK2)


def test_parse_track2_empty_discretionary() -> None:
    assert parse_track2(f"{PAN}=2512101").discretionary == ""


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("6212345678901234=25121010123", "Luhn"),
        (f"{PAN}=25131010123", "month"),
        (f"{PAN}=25001010123", "month"),
        (f"{PAN}=251210101234567890123", "37"),
        (f";{PAN}=251210101234567890123?", "37"),
        (f"{PAN}=2512101012A45", "digits"),
        (f"{PAN}2512101", "separator"),
        (f"{PAN}=2512", "service code"),
        (f"{PAN}=25121", "service code"),
        (f"{PAN}=25AB101", "YYMM"),
        ("6212 345678901232=2512101", "digits"),
        ("=2512101", "digits"),
        (f"{PAN}=2512101FF", "digits"),
        ("", "separator"),
    ],
)
def test_parse_track2_rejects(text: str, problem: str) -> None:
    with pytest.raises(CardError, match=problem) as err:
        parse_track2(text)
    assert PAN not in str(err.value)
    assert "6212345678901234" not in str(err.value)


@given(track2s())
def test_track2_round_trip(track: Track2) -> None:
    assert parse_track2(track.encode()) == track
    assert parse_track2(f";{track.encode()}?") == track
    assert parse_track2(track.encode().replace("=", "D") + "F") == track


@given(track2s())
def test_track2_repr_does_not_leak(track: Track2) -> None:
    text = repr(track) + str(track)
    assert track.pan not in text
    assert track.encode() not in text
    if len(track.discretionary) >= 4:
        # The masked PAN shows its last four digits by design; the discretionary data must
        # not show anywhere else (it matched those four digits once: PAN …0000, data 0000).
        assert track.discretionary not in text.replace(mask_pan(track.pan), "")


def test_track2_repr_shows_masked_pan() -> None:
    assert "621234******1232" in repr(parse_track2(TRACK2))


def test_track2_constructor_validates() -> None:
    with pytest.raises(CardError):
        Track2(PAN, "2513", ServiceCode("101"), "")
    with pytest.raises(CardError):
        Track2(PAN, "2512", ServiceCode("101"), "1" * 14)


@given(st.text(max_size=60))
def test_parse_track2_fuzz_text(text: str) -> None:
    with contextlib.suppress(CardError):
        parse_track2(text)


@given(st.text(alphabet="0123456789=Dd;?Ff ", max_size=45))
def test_parse_track2_fuzz_track_alphabet(text: str) -> None:
    try:
        track = parse_track2(text)
    except CardError:
        return
    assert len(track.encode()) <= 37


# --- track 1 ----------------------------------------------------------------------------------


def test_parse_track1_fields() -> None:
    t = parse_track1(f"%{TRACK1}?")
    assert (t.pan, t.name, t.expiry, t.service_code, t.discretionary) == (
        PAN,
        "ZHANG/SAN",
        "2512",
        ServiceCode("101"),
        "0000123456",
    )
    assert t.encode() == TRACK1
    assert parse_track1(TRACK1) == t


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("B6212345678901234^ZHANG/SAN^2512101", "Luhn"),
        (f"B{PAN}^ZHANG/SAN^2513101", "month"),
        (f"A{PAN}^ZHANG/SAN^2512101", "'B'"),
        (f"B{PAN}ZHANG/SAN^2512101", "separators"),
        (f"B{PAN}^ZHANG^SAN^2512101", "separators"),
        (f"B{PAN}^Z^2512101", "name"),
        (f"B{PAN}^{'X' * 27}^2512101", "name"),
        (f"B{PAN}^zhang/san^2512101", "name"),
        (f"B{PAN}^ZHANG/SAN^2512", "service code"),
        (f"B{PAN}^ZHANG/SAN^2512101{'9' * 42}", "76"),
        (f"B{PAN}^ZHANG/SAN^2512101abc", "discretionary"),
        (f"B{PAN}^ZHANG/SAN^2512101?1", "discretionary"),
    ],
)
def test_parse_track1_rejects(text: str, problem: str) -> None:
    with pytest.raises(CardError, match=problem) as err:
        parse_track1(text)
    assert PAN not in str(err.value)
    assert "ZHANG" not in str(err.value)


@given(track1s())
def test_track1_round_trip(track: Track1) -> None:
    assert parse_track1(track.encode()) == track
    assert parse_track1(f"%{track.encode()}?") == track


@given(track1s())
def test_track1_repr_does_not_leak(track: Track1) -> None:
    text = repr(track)
    assert track.pan not in text
    assume(len(track.name.strip()) >= 4)
    # (Unless the name happens to be a piece of what may show: digits of the masked PAN or
    # of the service code.)
    assume(track.name not in f"{mask_pan(track.pan)} {track.service_code.code}")
    assert track.name not in text


@given(st.text(max_size=90))
def test_parse_track1_fuzz_text(text: str) -> None:
    with contextlib.suppress(CardError):
        parse_track1(text)


@given(st.text(alphabet="%B^?/ 0123456789AZ", max_size=85))
def test_parse_track1_fuzz_track_alphabet(text: str) -> None:
    try:
        track = parse_track1(text)
    except CardError:
        return
    assert len(track.encode()) <= 76


# --- expiry -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expiry", "today", "passed"),
    [
        ("2512", datetime.date(2025, 12, 1), False),
        ("2512", datetime.date(2025, 12, 31), False),
        ("2512", datetime.date(2026, 1, 1), True),
        ("2511", datetime.date(2025, 12, 1), True),
        ("2601", datetime.date(2025, 12, 31), False),
        ("3012", datetime.date(2025, 6, 15), False),
        ("9912", datetime.date(2025, 6, 15), True),  # 1999, not 2099
        ("0001", datetime.date(2099, 6, 15), False),  # 2100, not 2000
    ],
)
def test_expiry_passed(expiry: str, today: datetime.date, passed: bool) -> None:
    assert expiry_passed(expiry, today) is passed


@pytest.mark.parametrize("expiry", ["2513", "2500", "251", "25-1", "12/25"])
def test_expiry_passed_rejects(expiry: str) -> None:
    with pytest.raises(CardError):
        expiry_passed(expiry, datetime.date(2025, 1, 1))


@pytest.mark.parametrize(
    ("text", "yymm"), [("2512", "2512"), ("12/25", "2512"), (" 01/30 ", "3001"), ("0001", "0001")]
)
def test_parse_expiry(text: str, yymm: str) -> None:
    assert parse_expiry(text) == yymm


@pytest.mark.parametrize("text", ["13/25", "00/25", "2513", "1225x", "1/25", "12-25", "", "٢٥١٢"])
def test_parse_expiry_rejects(text: str) -> None:
    with pytest.raises(CardError):
        parse_expiry(text)


def test_length_limits_are_inclusive() -> None:
    track2 = f"{PAN}=2512101" + "1" * (37 - 24)
    assert len(parse_track2(f";{track2}?").encode()) == 37
    with pytest.raises(CardError):
        parse_track2(track2 + "1")
    track1 = f"B{PAN}^ZHANG/SAN^2512101" + "9" * (76 - 35)
    assert len(parse_track1(f"%{track1}?").encode()) == 76
    with pytest.raises(CardError):
        parse_track1(track1 + "9")
