"""Languages of the cashier app: gettext catalogues (``smartpos/locale/<lang>/LC_MESSAGES/
messages.po``, English message ids) read with Babel, money and dates formatted by Babel.

The catalogues are read from their ``.po`` files at start-up (compiled in memory), so a
translator edits one text file and nothing has to be built. The language of a request
lives in a context variable: the templates' ``_()`` and the routes' :func:`gettext` read it.
"""

from __future__ import annotations

import contextvars
import io
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.core import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency
from babel.support import NullTranslations, Translations

__all__ = [
    "DEFAULT_LANG",
    "LANGS",
    "current_lang",
    "format_money",
    "format_time",
    "gettext",
    "translations",
    "use_lang",
]

LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"
LANGS = ("zh_CN", "en")  # zh_CN first: the default of a Chinese store
DEFAULT_LANG = "zh_CN"
LANG_NAMES = {"zh_CN": "中文", "en": "English"}

_lang: contextvars.ContextVar[str] = contextvars.ContextVar("lang", default=DEFAULT_LANG)


def normalize(lang: str | None) -> str:
    """One of :data:`LANGS` for what a browser or a user record says (``zh``, ``zh-CN``,
    ``en-US`` …); the default for anything else."""
    if not lang:
        return DEFAULT_LANG
    tag = lang.replace("-", "_").split(",")[0].strip().lower()
    if tag.startswith("zh"):
        return "zh_CN"
    if tag.startswith("en"):
        return "en"
    return DEFAULT_LANG


@cache
def translations(lang: str) -> NullTranslations:
    """The catalogue of ``lang`` (English needs none: its ids are the English text)."""
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if lang == "en" or not po.exists():
        return NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


def use_lang(lang: str) -> contextvars.Token[str]:
    return _lang.set(normalize(lang))


def current_lang() -> str:
    return _lang.get()


def gettext(message: str) -> str:
    return translations(_lang.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_lang.get()).ngettext(singular, plural, n)


def format_money(amount_minor: int, currency: str = "CNY", lang: str | None = None) -> str:
    """``¥12.34`` — Babel's currency format of the language, from minor units (CNY: fen)."""
    locale = Locale.parse(lang or _lang.get())
    return format_currency(Decimal(amount_minor).scaleb(-2), currency, locale=locale)


def format_time(at: datetime, zone: str, lang: str | None = None) -> str:
    """A stored UTC time in the store's zone, as the language writes it."""
    return format_datetime(
        at.astimezone(ZoneInfo(zone)), "medium", locale=Locale.parse(lang or _lang.get())
    )
