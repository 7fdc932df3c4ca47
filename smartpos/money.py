"""Money in integer minor units with an ISO 4217 currency.

Amounts never pass through float (nor Decimal, which would accept ``1e3`` and ``١٢``):
``Money.parse`` reads the digits of a strict grammar straight into an ``int`` number of
minor units (fen for CNY, cents for USD), which is what is stored and sent.
"""

from __future__ import annotations

from dataclasses import dataclass


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
        """Parse an amount as a person types it: ``"12.34"``, ``"12"``, ``"1,234.56"``.

        This is the one way amounts from people enter the system. The grammar is strict:
        ASCII digits, optionally grouped by commas in threes (``1,234,567``), then optionally
        a decimal point and at most the currency's minor digits; surrounding whitespace is
        ignored. Anything else — a decimal comma (``12,34``), an exponent, a sign, other
        digit systems (``١٢``, ``１２``), more decimals than the currency has, an amount above
        n12 — raises ``MoneyError`` with a one-line message naming what is wrong.
        """
        cur = currency(code)
        return cls(_parse_minor(text, cur), cur)

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


_ASCII_DIGITS = frozenset("0123456789")
_SHOWN_MAX_CHARS = 32


def _shown(text: str) -> str:
    """``text`` as an error message may quote it: trimmed, printable, short."""
    text = text.strip()
    if text.isprintable() and len(text) <= _SHOWN_MAX_CHARS:
        return text
    quoted = repr(text)
    return quoted if len(quoted) <= _SHOWN_MAX_CHARS else quoted[: _SHOWN_MAX_CHARS - 1] + "…"


def _grouping_ok(whole: str) -> bool:
    """``1,234,567``: a first group of 1-3 digits (no leading zero), then groups of three."""
    first, *rest = whole.split(",")
    return 1 <= len(first) <= 3 and first[0] != "0" and all(len(g) == 3 for g in rest)


def _refusal(s: str, cur: Currency) -> str | None:
    """Why ``s`` (stripped, not empty) is not an amount of ``cur``, or None if it is one."""
    if s[0] == "-":
        return "the amount must not be negative"
    if s[0] == "+":
        return "write the amount without a sign"
    odd = next((ch for ch in s if ch not in _ASCII_DIGITS and ch not in ".,"), None)
    if odd is not None:
        if odd.isdigit():
            return "use the digits 0-9"
        if odd in "eE" and any(ch in _ASCII_DIGITS for ch in s):
            return "write the amount in plain digits, without an exponent"
        if odd.isspace() or odd in "_'":
            return "group digits in threes with commas (1,234.56) or not at all"
        return "not an amount: use digits and a decimal point, e.g. 12.34"
    whole, point, frac = s.partition(".")
    if "," in frac:
        return "use a decimal point, not a comma"
    if "." in frac:
        return "more than one decimal point"
    if point and not frac:
        return "digits missing after the decimal point"
    if not whole:
        return "a digit is needed before the decimal point (0.5, not .5)"
    if "," in whole and not _grouping_ok(whole):
        last = whole.rsplit(",", 1)[1]
        # "12,34" / "12,3": the decimal comma of many locales, not a misplaced group.
        if not point and 1 <= len(last) <= 2 and all(whole.split(",")):
            return "use a decimal point, not a comma"
        return "group digits in threes with commas (1,234.56) or not at all"
    if point and cur.exponent == 0:
        return f"{cur.alpha} has no minor units: whole amounts only"
    if len(frac) > cur.exponent:
        return f"{cur.alpha} has {cur.exponent} decimal places"
    return None


def _parse_minor(text: str, cur: Currency) -> int:
    s = text.strip()
    if not s:
        raise MoneyError("no amount given")
    why = _refusal(s, cur)
    if why is not None:
        raise MoneyError(f"{_shown(text)}: {why}")
    whole, _, frac = s.partition(".")
    # The minor units are the digits with the fraction padded to the currency's exponent.
    digits = (whole.replace(",", "") + frac.ljust(cur.exponent, "0")).lstrip("0") or "0"
    # Checked before int(): a huge digit string would take long (or be refused by int()).
    if len(digits) > len(str(MAX_AMOUNT_MINOR)) or int(digits) > MAX_AMOUNT_MINOR:
        raise MoneyError(f"{_shown(text)}: above the largest amount a message can carry")
    return int(digits)
