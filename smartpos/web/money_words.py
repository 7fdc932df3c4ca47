"""Why an amount the cashier typed is refused, in the screen's language: the reasons of
``smartpos.money`` (its one grammar for amounts people type) through the catalogue."""

from __future__ import annotations

from smartpos.money import MoneyError
from smartpos.web.i18n import gettext

__all__ = ["money_error"]


def _(message: str) -> str:
    return message


REASONS = (
    _("no amount given"),
    _("the amount must not be negative"),
    _("write the amount without a sign"),
    _("use the digits 0-9"),
    _("write the amount in plain digits, without an exponent"),
    _("group digits in threes with commas (1,234.56) or not at all"),
    _("not an amount: use digits and a decimal point, e.g. 12.34"),
    _("use a decimal point, not a comma"),
    _("more than one decimal point"),
    _("digits missing after the decimal point"),
    _("a digit is needed before the decimal point (0.5, not .5)"),
    _("above the largest amount a message can carry"),
)


def money_error(exc: MoneyError) -> str:
    """``"12,34: use a decimal point, not a comma"`` with its reason translated."""
    text = str(exc)
    for why in REASONS:
        if text == why:
            return gettext(why)
        if text.endswith(": " + why):
            return f"{text[: -len(why)]}{gettext(why)}"
    return text
