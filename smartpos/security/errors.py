"""Why the security services refuse: codes, with the words in English and Chinese.

Two kinds, as :mod:`smartpos.terminal.errors` and :mod:`smartpos.store.errors` do it: a stable
``code`` the cashier app branches on, and ``text(lang)`` for people.

* :class:`AuthError` — a login, second factor, unlock, session or override refused. An
  unknown staff number and a wrong password give the same refusal (``bad_credentials``) so
  the words never tell whether an account exists.
* :class:`StaffError` (a ``ValueError``) — bad input to the staff directory or the
  permissions file; nothing has been changed.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "AUTH_MESSAGES",
    "STAFF_MESSAGES",
    "AuthError",
    "AuthRefusal",
    "StaffError",
    "StaffProblem",
]


class AuthRefusal(StrEnum):
    BAD_CREDENTIALS = "bad_credentials"
    LOCKED = "locked"  # too many failed tries; ``unlocks_at`` says until when
    DISABLED = "disabled"
    MODE_NOT_ALLOWED = "mode_not_allowed"
    SECOND_FACTOR_REQUIRED = "second_factor_required"
    BAD_CODE = "bad_code"
    CODE_REUSED = "code_reused"  # a TOTP code of a time step already used
    CODE_EXPIRED = "code_expired"
    TOO_MANY_TRIES = "too_many_tries"  # an SMS code tried too often: ask for a new one
    NO_CODE = "no_code"  # no SMS code was sent for this session
    NO_PHONE = "no_phone"
    SMS_TOO_SOON = "sms_too_soon"
    SMS_LIMIT = "sms_limit"
    NOT_ENROLLED = "not_enrolled"  # no TOTP secret, and no enrolment begun
    NO_SESSION = "no_session"  # unknown, ended or expired
    SESSION_LOCKED = "session_locked"  # the idle lock: only unlock or log out
    NOT_ALLOWED = "not_allowed"


# (English, Chinese); ``{name}`` placeholders are filled from the error's parameters.
AUTH_MESSAGES: dict[AuthRefusal, tuple[str, str]] = {
    AuthRefusal.BAD_CREDENTIALS: (
        "wrong staff number or password",
        "工号或密码错误",
    ),
    AuthRefusal.LOCKED: (
        "too many failed tries: the account is locked until {until}",
        "失败次数过多：账号已锁定至 {until}",
    ),
    AuthRefusal.DISABLED: (
        "this account is disabled: ask the store's administrator",
        "该账号已停用：请联系店铺管理员",
    ),
    AuthRefusal.MODE_NOT_ALLOWED: (
        "a {role} cannot log in in {mode} mode",
        "{role_zh}不能以{mode_zh}模式登录",
    ),
    AuthRefusal.SECOND_FACTOR_REQUIRED: (
        "admin mode needs the second factor first (authenticator code or SMS code)",
        "管理模式须先完成二次验证（动态口令或短信验证码）",
    ),
    AuthRefusal.BAD_CODE: ("wrong code", "验证码错误"),
    AuthRefusal.CODE_REUSED: (
        "this code was already used: wait for the next one",
        "该动态口令已使用过：请等待下一个",
    ),
    AuthRefusal.CODE_EXPIRED: (
        "the code has expired: ask for a new one",
        "验证码已过期：请重新获取",
    ),
    AuthRefusal.TOO_MANY_TRIES: (
        "this code was tried too many times: ask for a new one",
        "该验证码尝试次数过多：请重新获取",
    ),
    AuthRefusal.NO_CODE: ("no code was sent: ask for one first", "尚未发送验证码：请先获取"),
    AuthRefusal.NO_PHONE: (
        "no phone number on this account: use the authenticator app",
        "该账号没有手机号：请使用动态口令",
    ),
    AuthRefusal.SMS_TOO_SOON: (
        "a code was sent moments ago: wait {seconds} seconds before asking again",
        "验证码刚刚已发送：请 {seconds} 秒后再获取",
    ),
    AuthRefusal.SMS_LIMIT: (
        "too many codes sent for this login: log in again",
        "本次登录发送验证码次数过多：请重新登录",
    ),
    AuthRefusal.NOT_ENROLLED: (
        "no authenticator is set up for this account",
        "该账号尚未绑定动态口令",
    ),
    AuthRefusal.NO_SESSION: ("not logged in: log in again", "未登录或登录已失效：请重新登录"),
    AuthRefusal.SESSION_LOCKED: (
        "the screen is locked: unlock it with your password",
        "屏幕已锁定：请输入密码解锁",
    ),
    AuthRefusal.NOT_ALLOWED: (
        "not allowed: {permission} is not among this operator's permissions",
        "无权限：当前操作员没有 {permission} 权限",
    ),
}

ROLE_ZH = {"admin": "管理员", "manager": "店长", "cashier": "收银员"}
MODE_ZH = {"admin": "管理", "cashier": "收银"}


class AuthError(Exception):
    """A refusal of the security services (nothing granted; a failed try is already counted).

    ``code`` says which refusal; ``text(lang)`` gives the words (``en``, ``zh_CN``);
    ``unlocks_at`` is when a locked account opens again (code ``locked``)."""

    def __init__(
        self, code: AuthRefusal, /, *, unlocks_at: datetime | None = None, **params: Any
    ) -> None:
        self.code = code
        self.unlocks_at = unlocks_at
        if unlocks_at is not None:
            params.setdefault("until", unlocks_at.strftime("%Y-%m-%d %H:%M UTC"))
        if "role" in params:
            params.setdefault("role_zh", ROLE_ZH.get(params["role"], params["role"]))
        if "mode" in params:
            params.setdefault("mode_zh", MODE_ZH.get(params["mode"], params["mode"]))
        self.params = params
        super().__init__(self.text("en"))

    def text(self, lang: str = "en") -> str:
        en, zh = AUTH_MESSAGES[self.code]
        return (zh if lang.startswith("zh") else en).format(**self.params)


class StaffProblem(StrEnum):
    NO_SUCH_STAFF = "no_such_staff"
    BAD_STAFF_NO = "bad_staff_no"
    DUPLICATE_STAFF_NO = "duplicate_staff_no"
    BAD_NAME = "bad_name"
    BAD_ROLE = "bad_role"
    BAD_PASSWORD = "bad_password"  # noqa: S105 (a refusal code, not a password)
    BAD_PIN = "bad_pin"
    BAD_LANG = "bad_lang"
    BAD_PHONE = "bad_phone"
    BAD_MERCHANT_NO = "bad_merchant_no"
    DUPLICATE_MERCHANT_NO = "duplicate_merchant_no"
    MERCHANT_NO_NOT_ADMIN = "merchant_no_not_admin"
    LAST_ADMIN = "last_admin"
    BAD_DETAIL = "bad_detail"
    BAD_PERMISSION = "bad_permission"
    BAD_PERMISSIONS_FILE = "bad_permissions_file"


STAFF_MESSAGES: dict[StaffProblem, tuple[str, str]] = {
    StaffProblem.NO_SUCH_STAFF: ("no staff member {staff_id}", "没有员工 {staff_id}"),
    StaffProblem.BAD_STAFF_NO: (
        "staff number {staff_no!r} is not valid: 1 to {max} digits",
        "工号 {staff_no!r} 无效：须为 1 到 {max} 位数字",
    ),
    StaffProblem.DUPLICATE_STAFF_NO: (
        "staff number {staff_no} is already taken",
        "工号 {staff_no} 已被使用",
    ),
    StaffProblem.BAD_NAME: (
        "the name must have 1 to {max} characters",
        "姓名须为 1 到 {max} 个字符",
    ),
    StaffProblem.BAD_ROLE: (
        "role {role!r} is not one of admin, manager, cashier",
        "角色 {role!r} 无效：须为 admin、manager 或 cashier",
    ),
    StaffProblem.BAD_PASSWORD: ("the password {why}", "密码{why_zh}"),
    StaffProblem.BAD_PIN: ("the PIN must be 4 to 6 digits", "授权密码须为 4 到 6 位数字"),
    StaffProblem.BAD_LANG: (
        "language {lang!r} is not one of zh_CN, en",
        "语言 {lang!r} 无效：须为 zh_CN 或 en",
    ),
    StaffProblem.BAD_PHONE: (
        "phone number {phone!r} is not valid: 6 to 20 digits, optionally after '+'",
        "手机号 {phone!r} 无效：须为 6 到 20 位数字（可带 '+'）",
    ),
    StaffProblem.BAD_MERCHANT_NO: (
        "merchant number {merchant_no!r} is not valid: 15 digits",
        "商户号 {merchant_no!r} 无效：须为 15 位数字",
    ),
    StaffProblem.DUPLICATE_MERCHANT_NO: (
        "merchant number {merchant_no} already belongs to another account",
        "商户号 {merchant_no} 已属于另一个账号",
    ),
    StaffProblem.MERCHANT_NO_NOT_ADMIN: (
        "only the owner's admin account carries the merchant number",
        "只有店主的管理员账号可以绑定商户号",
    ),
    StaffProblem.LAST_ADMIN: (
        "this is the last enabled admin account: add or enable another admin first",
        "这是最后一个启用的管理员账号：请先添加或启用另一个管理员",
    ),
    StaffProblem.BAD_DETAIL: (
        "the override's detail must have 1 to {max} characters",
        "授权说明须为 1 到 {max} 个字符",
    ),
    StaffProblem.BAD_PERMISSION: (
        "unknown permission {permission!r}",
        "未知权限 {permission!r}",
    ),
    StaffProblem.BAD_PERMISSIONS_FILE: (
        "permissions file {path}: {key}: {why}",
        "权限文件 {path}：{key}：{why}",
    ),
}


class StaffError(ValueError):
    """Input the staff directory (or the permissions file) cannot take; nothing changed.

    ``code`` says which problem; ``text(lang)`` gives the words (``en``, ``zh_CN``)."""

    def __init__(self, code: StaffProblem, /, **params: Any) -> None:
        self.code = code
        self.params = params
        super().__init__(self.text("en"))

    def text(self, lang: str = "en") -> str:
        en, zh = STAFF_MESSAGES[self.code]
        return (zh if lang.startswith("zh") else en).format(**self.params)
