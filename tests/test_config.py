"""Settings (smartpos/config.py) read the environment and ``.env`` as pydantic-settings did.

The loader replaced a pydantic-settings class for start-up time (docs/benchmarks.md, "CLI
start-up"). Here it is held to that class — kept below as the reference, exactly as it was —
on the same inputs: the value each setting gets, or the same error message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import pytest

from smartpos.config import Settings, SettingsError, load_settings

pydantic_settings = pytest.importorskip("pydantic_settings")
pydantic = pytest.importorskip("pydantic")


class Reference(pydantic_settings.BaseSettings):  # type: ignore[misc,name-defined]
    """The settings class smartpos had before its own loader (field for field)."""

    model_config = pydantic_settings.SettingsConfigDict(
        env_prefix="SMARTPOS_", env_file=".env", extra="ignore"
    )

    home: Path = pydantic.Field(default_factory=lambda: Path.home() / ".smartpos")
    terminal_db_url: str | None = None
    host_db_url: str | None = None
    pos_db_url: str | None = None
    host_bind: str = "127.0.0.1"
    host_port: int = pydantic.Field(default=8583, ge=1, le=65535)
    link_host: str = "127.0.0.1"
    link_port: int = pydantic.Field(default=8583, ge=1, le=65535)
    profile: str = "sandbox"
    currency: str = "CNY"
    timezone: str = "Asia/Shanghai"
    printer: Literal["none", "dummy", "file", "network", "usb"] = "file"
    printer_path: Path | None = None
    printer_host: str = "127.0.0.1"
    printer_port: int = 9100
    printer_usb_vendor: int = 0x0416
    printer_usb_product: int = 0x5011
    printer_codepage: Literal["gb18030", "ascii"] = "gb18030"
    printer_width_chars: int = pydantic.Field(default=32, ge=24, le=64)
    pos_bind: str = "127.0.0.1"
    pos_port: int = pydantic.Field(default=8000, ge=1, le=65535)
    idle_lock_minutes: int = pydantic.Field(default=15, ge=1, le=24 * 60)
    pin_pad_layout: Literal["fixed", "shuffled"] = "fixed"

    @pydantic.field_validator("home")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser()


NAMES = list(Reference.model_fields)
INTEGERS = [
    *("8583", " 8583 ", "+80", "-5", "08583", "1_000", "1_0_0", "1.0", "1.", "1.000", "0"),
    *("65535", "65536", "1.5", "1.01", "abc", "", "  ", "٨٥", "８５", "0x10", "1e3", "_1"),
    *("1_", "1__0", "+-1", "--1", ".0", "9" * 40, "\t42\n", "1 000", "nan", "inf", "1,000"),
]
CASES: list[tuple[str, str]] = [
    *((name, value) for name in ("host_port", "printer_width_chars") for value in INTEGERS),
    *(("printer_usb_vendor", v) for v in ("0x0416", "1046", "-5", "99999999999999999999")),
    *(("printer", v) for v in ("file", "usb", "FILE", " file", "bogus", "")),
    *(("printer_codepage", v) for v in ("ascii", "gb18030", "GB18030", "utf-8")),
    *(("home", v) for v in ("~/x", "", "/tmp/a b", "rel/dir", "~")),
    *(("printer_path", v) for v in ("", "~/p.out", "null", "/dev/usb/lp0")),
    *(("terminal_db_url", v) for v in ("", "sqlite:///x.db", "null", "None")),
    *(("currency", v) for v in ("USD", " CNY ", '"CNY"', "")),
]


def outcome(make: Any, name: str) -> tuple[str, object]:
    """``("value", v)`` or ``("error", message)`` of reading setting ``name``."""
    try:
        return "value", getattr(make(), name)
    except SettingsError as exc:
        return "error", str(exc)
    except pydantic.ValidationError as exc:
        problem = exc.errors()[0]
        variable = "SMARTPOS_" + "_".join(str(p) for p in problem["loc"]).upper()
        return "error", f"setting {variable}: {problem['msg']}"


@pytest.fixture(autouse=True)
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No SMARTPOS_* of the caller's, no .env of theirs: a directory of our own."""
    for key in list(os.environ):
        if key.upper().startswith("SMARTPOS_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("name", "value"), CASES, ids=[f"{n}={v!r}" for n, v in CASES])
def test_a_variable_is_read_as_pydantic_settings_read_it(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"SMARTPOS_{name.upper()}", value)
    mine, reference = outcome(Settings, name), outcome(Reference, name)
    assert mine == reference


@pytest.mark.parametrize(("name", "value"), CASES[::3], ids=[f"{n}={v!r}" for n, v in CASES[::3]])
def test_a_dotenv_line_is_read_as_pydantic_settings_read_it(
    name: str, value: str, clean: Path
) -> None:
    (clean / ".env").write_text(f"SMARTPOS_{name.upper()}='{value}'\n", encoding="utf-8")
    assert outcome(Settings, name) == outcome(Reference, name)


def test_defaults_are_the_same() -> None:
    mine, reference = Settings(), Reference()
    assert {n: getattr(mine, n) for n in NAMES} == {n: getattr(reference, n) for n in NAMES}
    assert mine.resolved_terminal_db_url == f"sqlite:///{Path.home() / '.smartpos/terminal.db'}"


def test_the_environment_comes_before_dotenv_and_keywords_before_both(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean / ".env").write_text(
        "# a comment\n"
        "SMARTPOS_CURRENCY=USD\n"
        'export SMARTPOS_HOST_PORT="9001"\n'
        "smartpos_profile=cup-ecb\n"
        "SMARTPOS_TIMEZONE\n"  # no value: not set
        "SMARTPOS_LINK_HOST=${OTHER_HOST}\n"  # expanded from the environment
        "OTHER=1\n"
        "SMARTPOS_NOT_A_SETTING=x\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("OTHER_HOST", "acquirer.example")
    monkeypatch.setenv("smartpos_currency", "EUR")  # any case
    for make in (Settings, Reference):
        s = make(host_bind="0.0.0.0")
        assert (s.currency, s.host_port, s.profile, s.timezone) == (
            "EUR",
            9001,
            "cup-ecb",
            "Asia/Shanghai",
        )
        assert (s.link_host, s.host_bind) == ("acquirer.example", "0.0.0.0")
    assert load_settings(currency="HKD").currency == "HKD"


def test_keywords_are_checked_like_variables(clean: Path) -> None:
    assert Settings(home=str(clean), host_port="80").host_port == 80  # type: ignore[arg-type]
    assert Settings(home=clean / "x").home == clean / "x"
    with pytest.raises(SettingsError, match="SMARTPOS_PRINTER: Input should be 'none'"):
        Settings(printer="bogus")
    with pytest.raises(SettingsError, match="SMARTPOS_HOST_PORT: Input should be less"):
        Settings(host_port=70000)
    with pytest.raises(TypeError, match="no setting"):
        Settings(hostport=1)


def test_json_carries_the_settings_exactly_and_reads_no_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent = Settings(home=Path("/srv/pos"), host_db_url="postgresql://h/db", printer_path=None)
    # What the old class wrote (a host front-end of an older writer) reads the same.
    old = Reference(home=Path("/srv/pos"), host_db_url="postgresql://h/db").model_dump_json()
    monkeypatch.setenv("SMARTPOS_CURRENCY", "USD")
    received = Settings.model_validate_json(sent.model_dump_json())
    assert received == sent and received.currency == "CNY" and received.home == Path("/srv/pos")
    assert Settings.model_validate_json(old) == sent


def test_a_bad_setting_is_one_config_line(
    clean: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from smartpos.cli import app

    monkeypatch.setenv("SMARTPOS_HOME", str(clean / "home"))
    monkeypatch.setenv("SMARTPOS_PRINTER_WIDTH_CHARS", "10")
    assert app.run(["version"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "error: setting SMARTPOS_PRINTER_WIDTH_CHARS: Input should be greater than or equal to 24\n"
    )
