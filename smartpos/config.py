"""All settings in one place, read from the environment (``SMARTPOS_*``) or ``.env``."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path.home() / ".smartpos"


class Settings(BaseSettings):
    """Settings for the terminal, the sandbox host and the tools around them."""

    model_config = SettingsConfigDict(env_prefix="SMARTPOS_", env_file=".env", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="data directory")
    # Databases: the host and the POS belong to different organisations and never share one.
    terminal_db_url: str | None = None
    host_db_url: str | None = None

    host_bind: str = "127.0.0.1"
    host_port: int = Field(default=8583, ge=1, le=65535)
    # Where the terminal connects (defaults to the local sandbox host).
    link_host: str = "127.0.0.1"
    link_port: int = Field(default=8583, ge=1, le=65535)
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
    printer_width_chars: int = Field(default=32, ge=24, le=64)

    @field_validator("home")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser()

    @cached_property
    def resolved_terminal_db_url(self) -> str:
        return self.terminal_db_url or f"sqlite:///{self.home / 'terminal.db'}"

    @cached_property
    def resolved_host_db_url(self) -> str:
        return self.host_db_url or f"sqlite:///{self.home / 'host' / 'host.db'}"

    @property
    def host_dir(self) -> Path:
        """Where the host keeps its TLS key/certificate and its key-encryption key."""
        return self.home / "host"

    @property
    def terminal_dir(self) -> Path:
        return self.home / "terminal"


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
