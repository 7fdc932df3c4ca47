"""Every message of the cashier app has its Chinese translation, and the catalogue holds no
message the app no longer uses (read with Babel, as the app reads it)."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.pofile import read_po

from smartpos.web import i18n

WEB = Path(__file__).resolve().parents[2] / "smartpos" / "web"
# _("…") / _('…') in templates and in the routes (whose _ marks a message for the catalogue).
MESSAGE = re.compile(r"""\b(?:_|gettext)\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*[,)]""")


def _used() -> set[str]:
    found: set[str] = set()
    for path in [*WEB.rglob("*.html"), *WEB.rglob("*.py")]:
        for dq, sq in MESSAGE.findall(path.read_text(encoding="utf-8")):
            found.add((dq or sq).replace('\\"', '"').replace("\\'", "'"))
    return found


def _catalogue() -> dict[str, str]:
    po = i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as f:
        return {m.id: m.string for m in read_po(f) if m.id and isinstance(m.id, str)}


def test_every_message_has_a_chinese_translation() -> None:
    used, catalogue = _used(), _catalogue()
    assert len(used) > 10
    missing = sorted(m for m in used if not catalogue.get(m))
    assert missing == []


def test_the_catalogue_has_no_unused_messages() -> None:
    assert sorted(set(_catalogue()) - _used()) == []


def test_translations_are_applied_per_request_language() -> None:
    token = i18n.use_lang("zh-CN")
    try:
        assert i18n.gettext("Run again") == "重新检测"
        assert i18n.format_money(123456) == "¥1,234.56"
    finally:
        i18n._lang.reset(token)
    token = i18n.use_lang("en-US,en;q=0.9")
    try:
        assert i18n.gettext("Run again") == "Run again"
        assert i18n.format_money(-500, lang="en") == "-CN¥5.00"
    finally:
        i18n._lang.reset(token)


def test_a_refused_amount_is_explained_in_the_screen_s_language() -> None:
    from smartpos.money import Money, MoneyError
    from smartpos.web.money_words import money_error

    for typed, zh in (("12,34", "请使用小数点"), ("-5", "不能为负数"), ("abc", "不是金额")):
        try:
            Money.parse(typed)
        except MoneyError as exc:
            token = i18n.use_lang("zh_CN")
            try:
                assert money_error(exc).startswith(typed) and zh in money_error(exc)
            finally:
                i18n._lang.reset(token)
        else:
            raise AssertionError(f"{typed!r} was taken as an amount")
