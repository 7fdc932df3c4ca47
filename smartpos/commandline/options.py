"""Option types of the ``smartpos`` command, each checked where it is parsed.

A bad value stops the command before it does anything, as a usage error that names the
option and says what is wrong (``Invalid value for '--stan': abc: a trace number is 1 to
6 digits``) — never a traceback from deep inside.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from smartpos.config import load_settings
from smartpos.money import Money, MoneyError

__all__ = [
    "AmountOpt",
    "ChipOpt",
    "ExpiryOpt",
    "FallbackOpt",
    "FingerprintOpt",
    "HostOpt",
    "InvoiceOpt",
    "JsonOpt",
    "KcvOpt",
    "MerchantOpt",
    "MidOpt",
    "PinOpt",
    "PortOpt",
    "PostgresUrlOpt",
    "PrintOpt",
    "ProfileOpt",
    "RefundAmountOpt",
    "RrnOpt",
    "StanOpt",
    "TapOpt",
    "TidOpt",
    "TmkOpt",
]

_SHOWN_MAX_CHARS = 24
_MERCHANT_MAX_CHARS = 40  # one receipt line at the widest printer setting, and the column
_TRACE_MAX = 999_999


def _shown(text: str) -> str:
    text = text if text.isprintable() else repr(text)
    return text if len(text) <= _SHOWN_MAX_CHARS else text[: _SHOWN_MAX_CHARS - 1] + "…"


def _bad(text: str, why: str) -> typer.BadParameter:
    return typer.BadParameter(f"{_shown(text)}: {why}" if text else f"empty: {why}")


def _ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def parse_amount(text: str) -> Money:
    """An amount in the configured currency, by ``Money.parse``'s grammar."""
    try:
        return Money.parse(text, load_settings().currency)
    except MoneyError as exc:
        raise typer.BadParameter(str(exc)) from None


def parse_trace(text: str) -> str:
    """A trace (STAN) or voucher number as printed on the slip: 1-999999 → 6 digits."""
    if not (_ascii_digits(text) and len(text) <= 6 and 1 <= int(text) <= _TRACE_MAX):
        raise _bad(text, "a trace or voucher number is 1 to 6 digits (1-999999), as on the slip")
    return f"{int(text):06d}"


def parse_rrn(text: str) -> str:
    """A retrieval reference number: 12 letters or digits, as on the slip."""
    if not (len(text) == 12 and text.isascii() and text.isalnum()):
        raise _bad(text, "a reference number (RRN) is 12 letters or digits, as on the slip")
    return text


def parse_expiry(text: str) -> str:
    """A card's expiry, YYMM or MM/YY → YYMM."""
    from smartpos.cards import CardError
    from smartpos.cards.track import parse_expiry as parse

    try:
        return parse(text)
    except CardError as exc:
        raise _bad(text, str(exc)) from None


def _identifier(length: int, what: str) -> Any:
    def parse(text: str) -> str:
        if not (len(text) == length and text.isascii() and text.isalnum()):
            raise _bad(text, f"a {what} is {length} letters or digits")
        return text

    return typer.Option(parser=parse, help=f"{what} ({length} letters or digits)")


def _hex(length: int, what: str) -> Any:
    def parse(text: str) -> bytes:
        try:
            value = bytes.fromhex(text) if text.isascii() else b""
        except ValueError:
            value = b""
        if len(value) * 2 != length or len(text) != length:
            raise _bad(text, f"the {what} is {length} hex digits")
        return value

    return typer.Option(parser=parse, help=f"{what}, {length} hex digits")


def parse_merchant(text: str) -> str:
    """A merchant name as printed on the slip."""
    if not text.strip() or not text.isprintable() or len(text) > _MERCHANT_MAX_CHARS:
        raise _bad(text, f"a merchant name is 1 to {_MERCHANT_MAX_CHARS} printable characters")
    return text


def parse_fingerprint(text: str) -> str:
    """A certificate's SHA-256 fingerprint: 64 hex digits (as ``host init`` prints it)."""
    try:
        ok = len(text) == 64 and text.isascii() and len(bytes.fromhex(text)) == 32
    except ValueError:
        ok = False
    if not ok:
        raise _bad(text, "a certificate fingerprint is 64 hex digits (SHA-256)")
    return text.lower()


def parse_profile(text: str) -> str:
    """The name of a known acquirer profile: built in, or in the data directory's
    profiles.toml (docs/profiles.md)."""
    from smartpos.config import load_settings
    from smartpos.protocol.profiles import ProfileError, resolve_profile

    try:
        resolve_profile(text, load_settings().home)
    except ProfileError as exc:
        raise typer.BadParameter(str(exc)) from None
    return text


def parse_host(text: str) -> str:
    """A host name or IP address (ASCII, as DNS and the socket layer take it)."""
    if not (text.strip() and text.isascii() and text.isprintable() and len(text) <= 253):
        raise _bad(text, "give a host name or IP address")
    return text


def parse_postgres_url(text: str) -> str:
    """A PostgreSQL server URL (``postgresql+psycopg://user@host/db``)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(text)
    except ArgumentError:
        url = None
    if url is None or not url.drivername.startswith("postgresql") or not url.host:
        raise _bad(text, "give a PostgreSQL server URL: postgresql+psycopg://user@host/db")
    return text


# `--json` is read by the app from the command line itself (a usage error must be reported
# as JSON before any command runs), so commands never receive it: declared for --help only.
JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json", expose_value=False, help="print the result as one JSON object (docs/cli.md)"
    ),
]
AmountOpt = Annotated[
    Money, typer.Option(parser=parse_amount, metavar="AMOUNT", help="amount, e.g. 12.34")
]
RefundAmountOpt = Annotated[
    Money,
    typer.Option(parser=parse_amount, metavar="AMOUNT", help="amount to refund (partial allowed)"),
]
StanOpt = Annotated[
    str | None,
    typer.Option(parser=parse_trace, metavar="NUMBER", help="trace number (STAN) of the sale"),
]
InvoiceOpt = Annotated[
    str | None,
    typer.Option(parser=parse_trace, metavar="NUMBER", help="voucher number of the sale"),
]
RrnOpt = Annotated[
    str, typer.Option(parser=parse_rrn, help="reference number (RRN) of the sale, 12 characters")
]
ExpiryOpt = Annotated[
    str | None, typer.Option(parser=parse_expiry, help="expiry YYMM or MM/YY (keyed entry)")
]
PortOpt = Annotated[int, typer.Option(min=1, max=65535, help="TCP port")]
TidOpt = Annotated[str, _identifier(8, "terminal ID")]
MidOpt = Annotated[str, _identifier(15, "merchant ID")]
TmkOpt = Annotated[bytes, _hex(32, "terminal master key (TMK)")]
KcvOpt = Annotated[bytes, _hex(8, "TMK check value")]
MerchantOpt = Annotated[str, typer.Option(parser=parse_merchant, help="merchant name")]
FingerprintOpt = Annotated[
    str | None, typer.Option(parser=parse_fingerprint, help="host certificate SHA-256")
]
ProfileOpt = Annotated[str, typer.Option(parser=parse_profile, help="acquirer profile")]
PostgresUrlOpt = Annotated[
    str | None,
    typer.Option(
        parser=parse_postgres_url,
        help="PostgreSQL server URL, e.g. postgresql+psycopg://postgres@127.0.0.1/postgres:"
        " the ledger goes to a scratch database there, dropped after the run"
        " (default: durable SQLite in a temporary directory)",
    ),
]
HostOpt = Annotated[
    str, typer.Option(parser=parse_host, help="host name or address of the acquirer")
]
PinOpt = Annotated[
    bool,
    typer.Option(
        "--pin",
        help="the cardholder enters a PIN (asked after the card; sent only as a PIN block)",
    ),
]
ChipOpt = Annotated[
    bool, typer.Option("--chip", help="read the card by its (simulated) chip: ARQC and ARPC")
]
TapOpt = Annotated[
    bool,
    typer.Option("--tap", help="contactless (QuickPass): ARQC; no PIN up to the no-CVM limit"),
]
FallbackOpt = Annotated[
    bool, typer.Option("--fallback", help="swipe a chip card whose chip cannot be read")
]
PrintOpt = Annotated[bool, typer.Option("--print", help="print the receipts")]
