import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartpos.money import CURRENCIES, MAX_AMOUNT_MINOR, Money, MoneyError, currency


def test_parse_amounts_as_typed() -> None:
    assert Money.parse("12.34").amount_minor == 1234
    assert Money.parse("12").amount_minor == 1200
    assert Money.parse("12.3").amount_minor == 1230
    assert Money.parse("1,200.5").amount_minor == 120050
    assert Money.parse("1,234,567.89").amount_minor == 123456789
    assert Money.parse(" 0.05\n").amount_minor == 5
    assert Money.parse("100", "JPY").amount_minor == 100
    assert Money.parse("1,000", "JPY").amount_minor == 1000


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "no amount given"),
        ("   ", "no amount given"),
        ("12,34", "12,34: use a decimal point, not a comma"),
        ("12,3", "12,3: use a decimal point, not a comma"),
        ("1.234,56", "1.234,56: use a decimal point, not a comma"),
        ("1,2345", "1,2345: group digits in threes"),
        ("1,23,456", "1,23,456: group digits in threes"),
        (",123", ",123: group digits in threes"),
        ("1,234,", "1,234,: group digits in threes"),
        ("0,123", "0,123: group digits in threes"),
        ("1e3", "1e3: write the amount in plain digits"),
        ("1E3", "1E3: write the amount in plain digits"),
        ("١٢", "١٢: use the digits 0-9"),
        ("１２", "１２: use the digits 0-9"),
        ("12.٣٤", "12.٣٤: use the digits 0-9"),
        ("1_000", "1_000: group digits in threes"),
        ("1 000", "1 000: group digits in threes"),
        ("-1", "-1: the amount must not be negative"),
        ("+1", "+1: write the amount without a sign"),
        ("abc", "abc: not an amount"),
        ("NaN", "NaN: not an amount"),
        ("inf", "inf: not an amount"),
        ("12.", "12.: digits missing after the decimal point"),
        (".5", ".5: a digit is needed before the decimal point"),
        ("1.2.3", "1.2.3: more than one decimal point"),
        ("1.234", "1.234: CNY has 2 decimal places"),
        ("0.001", "0.001: CNY has 2 decimal places"),
        ("10000000000", "10000000000: above the largest amount"),
        ("9" * 5000, "above the largest amount"),
    ],
)
def test_bad_amounts_are_refused_and_say_why(text: str, says: str) -> None:
    with pytest.raises(MoneyError) as refused:
        Money.parse(text)
    assert says in str(refused.value)
    assert "\n" not in str(refused.value)


def test_yen_has_no_decimals() -> None:
    with pytest.raises(MoneyError, match="JPY has no minor units"):
        Money.parse("1.5", "JPY")


def test_a_long_or_unprintable_amount_is_shown_short() -> None:
    with pytest.raises(MoneyError) as refused:
        Money.parse("1\x1b[2J" + "x" * 500)
    message = str(refused.value)
    assert "\x1b" not in message and len(message) < 120


def test_format() -> None:
    assert Money.of(123456).format() == "1,234.56"
    assert Money.of(5).format(with_symbol=True) == "¥0.05"
    assert str(Money.of(100, "USD")) == "1.00 USD"


def test_currency_by_numeric_code() -> None:
    assert currency("156").alpha == "CNY"
    with pytest.raises(MoneyError):
        currency("XXX")


# -- the grammar, as properties --------------------------------------------------------------

CODES = st.sampled_from(sorted(CURRENCIES))
# An independent statement of the grammar: digits, or digits grouped by commas in threes
# (first group 1-3 digits, no leading zero), then optionally a point and 1+ digits.
_GRAMMAR = re.compile(r"([0-9]+|[1-9][0-9]{0,2}(?:,[0-9]{3})+)(?:\.([0-9]+))?", re.ASCII)


def _expected_minor(text: str, exponent: int) -> int | None:
    """What the grammar says ``text`` is worth in minor units, or None if refused."""
    match = _GRAMMAR.fullmatch(text.strip())
    if match is None:
        return None
    whole, frac = match.group(1).replace(",", ""), match.group(2)
    if frac is not None and len(frac) > exponent:
        return None
    if len(whole.lstrip("0")) > 13:
        return None
    minor = int(Decimal(f"{whole}.{frac or '0'}").scaleb(exponent))
    return minor if minor <= MAX_AMOUNT_MINOR else None


@given(st.integers(min_value=0, max_value=MAX_AMOUNT_MINOR), CODES)
def test_format_parse_roundtrip(minor: int, code: str) -> None:
    m = Money.of(minor, code)
    assert Money.parse(m.format(), code) == m
    assert Money.parse(m.format().replace(",", ""), code) == m


# Text close to amounts (digits, separators, signs, exponent, other digit systems) and any text.
_NEAR = st.text(alphabet="0123456789,.,.+-eE _١٢３", max_size=24)


@given(st.one_of(_NEAR, st.text(max_size=24)), CODES)
def test_parse_accepts_exactly_the_grammar(text: str, code: str) -> None:
    expected = _expected_minor(text, currency(code).exponent)
    try:
        got = Money.parse(text, code).amount_minor
    except MoneyError as exc:
        assert expected is None, (text, str(exc))
        message = str(exc)
        assert "\n" not in message and message
        return
    assert got == expected, text


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=99))
def test_a_decimal_comma_is_named(whole: int, cents: int) -> None:
    for text in (f"{whole},{cents:02d}", f"{whole},{cents % 10}"):
        with pytest.raises(MoneyError, match="use a decimal point, not a comma"):
            Money.parse(text)


@given(
    st.text(alphabet="0123456789", min_size=1, max_size=6),
    st.characters(categories=["Nd"]).filter(lambda c: c not in "0123456789"),
    st.integers(min_value=0, max_value=6),
)
def test_digits_other_than_ascii_are_refused(digits: str, other: str, at: int) -> None:
    text = digits[:at] + other + digits[at:]
    with pytest.raises(MoneyError, match="use the digits 0-9"):
        Money.parse(text)
