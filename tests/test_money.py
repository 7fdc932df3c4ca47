import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartpos.money import MAX_AMOUNT_MINOR, Money, MoneyError, currency


def test_parse_amounts_as_typed() -> None:
    assert Money.parse("12.34").amount_minor == 1234
    assert Money.parse("12").amount_minor == 1200
    assert Money.parse("1,200.5").amount_minor == 120050
    assert Money.parse("100", "JPY").amount_minor == 100


@pytest.mark.parametrize("bad", ["", "abc", "-1", "1.234", "NaN", "inf", "1e20", "0.001"])
def test_bad_amounts_are_refused(bad: str) -> None:
    with pytest.raises(MoneyError):
        Money.parse(bad)


def test_yen_has_no_decimals() -> None:
    with pytest.raises(MoneyError):
        Money.parse("1.5", "JPY")


def test_format() -> None:
    assert Money.of(123456).format() == "1,234.56"
    assert Money.of(5).format(with_symbol=True) == "¥0.05"
    assert str(Money.of(100, "USD")) == "1.00 USD"


def test_currency_by_numeric_code() -> None:
    assert currency("156").alpha == "CNY"
    with pytest.raises(MoneyError):
        currency("XXX")


@given(st.integers(min_value=0, max_value=MAX_AMOUNT_MINOR))
def test_format_parse_roundtrip(minor: int) -> None:
    m = Money.of(minor)
    assert Money.parse(m.format()) == m
