"""The Jinja2 environment of the cashier app: autoescaped, ``_()`` through gettext
(smartpos.web.i18n, the request's language), money and times through Babel."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader

from smartpos.web import i18n

__all__ = ["render", "templates"]

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent),
    extensions=["jinja2.ext.i18n"],
    autoescape=True,
)
_env.install_gettext_callables(  # type: ignore[attr-defined]
    gettext=i18n.gettext, ngettext=i18n.ngettext, newstyle=True
)
templates = Jinja2Templates(env=_env)
templates.env.globals.update(
    money=i18n.format_money,
    lang=i18n.current_lang,
    LANGS=i18n.LANGS,
    LANG_NAMES=i18n.LANG_NAMES,
    zone_info=ZoneInfo,
)


def render(request: Any, name: str, status_code: int = 200, **context: Any) -> Any:
    return templates.TemplateResponse(request, name, context, status_code=status_code)
