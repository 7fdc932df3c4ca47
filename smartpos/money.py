"""Money in integer minor units with an ISO 4217 currency.

Amounts never pass through float: parsing goes through ``Decimal`` and everything stored or
sent is an ``int`` number of minor units (fen for CNY, cents for USD).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation


@dataclass(frozen=True, slots=True)
class Currency:
    alpha: str
    numeric: str
    exponent: int
    symbol: str


CURRENCIES: dict[str, Currency] = {
    c.alpha: c
    for c in (
        Currency("CNY", "156", 2, "¥"),
        Currency("HKD", "344", 2, "HK$"),
        Currency("USD", "840", 2, "$"),
        Currency("EUR", "978", 2, "€"),
        Currency("GBP", "826", 2, "£"),
        Currency("JPY", "392", 0, "¥"),
        Currency("KRW", "410", 0, "₩"),
        Currency("SGD", "702", 2, "S$"),
    )
}
_BY_NUMERIC = {c.numeric: c for c in CURRENCIES.values()}

# ISO 8583 field 4 is n12: the largest amount a message can carry.
MAX_AMOUNT_MINOR = 999_999_999_999


class MoneyError(ValueError):
    """An amount or currency that cannot be used."""


def currency(code: str) -> Currency:
    """Look a currency up by its alphabetic (``CNY``) or numeric (``156``) ISO 4217 code."""
    found = CURRENCIES.get(code.upper()) or _BY_NUMERIC.get(code)
    if found is None:
        raise MoneyError(f"unknown currency {code!r}")
    return found


@dataclass(frozen=True, slots=True, order=True)
class Money:
    amount_minor: int
    currency: Currency

    def __post_init__(self) -> None:
        if not isinstance(self.amount_minor, int) or isinstance(self.amount_minor, bool):
            raise MoneyError("amount_minor must be an int")

    @classmethod
    def parse(cls, text: str, code: str = "CNY") -> Money:
        """Parse a decimal amount as a person types it (``"12.34"``, ``"12"``, ``"1,200.50"``).

        Rejects negatives, more decimals than the currency has, and amounts above n12.
        """
        cur = currency(code)
        cleaned = text.strip().replace(",", "").replace("_", "")
        try:
            value = Decimal(cleaned)
        except InvalidOperation:
            raise MoneyError(f"not an amount: {text!r}") from None
        if not value.is_finite():
            raise MoneyError(f"not an amount: {text!r}")
        if value < 0:
            raise MoneyError(f"amount must not be negative: {text!r}")
        scaled = value.scaleb(cur.exponent)
        if scaled != scaled.to_integral_value():
            raise MoneyError(f"{cur.alpha} has {cur.exponent} decimal places: {text!r}")
        minor = int(scaled)
        if minor > MAX_AMOUNT_MINOR:
            raise MoneyError(f"amount too large: {text!r}")
        return cls(minor, cur)

    @classmethod
    def of(cls, amount_minor: int, code: str = "CNY") -> Money:
        return cls(amount_minor, currency(code))

    def format(self, with_symbol: bool = False) -> str:
        """``1234`` CNY → ``"12.34"`` (or ``"¥12.34"``)."""
        exp = self.currency.exponent
        sign = "-" if self.amount_minor < 0 else ""
        units, minor = (
            divmod(abs(self.amount_minor), 10**exp)
            if exp
            else (
                abs(self.amount_minor),
                0,
            )
        )
        text = f"{units:,}" + (f".{minor:0{exp}d}" if exp else "")
        return f"{sign}{self.currency.symbol if with_symbol else ''}{text}"

    def __str__(self) -> str:
        return f"{self.format()} {self.currency.alpha}"
