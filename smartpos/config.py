"""All settings in one place, read from the environment (``SMARTPOS_*``) or ``.env``.

Every command reads the settings before it does anything, so reading them has to be cheap:
importing pydantic-settings (and the pydantic it needs) and building the class took 170 ms,
a sixth of a ``smartpos terminal sale`` (docs/benchmarks.md, "CLI start-up"); this loader
takes under a millisecond. It reads what pydantic-settings read, the same way:

* ``SMARTPOS_<NAME>`` from the environment, the name in any case; else from ``.env`` in the
  working directory (parsed by python-dotenv, as pydantic-settings did, and only imported
  when the file is there); else the default. Keywords given to :class:`Settings` come first.
  Other variables and other keys of ``.env`` are ignored.
* Values are converted and checked as pydantic did (tests/test_config.py holds the two to the
  same answers): integers may carry spaces, a sign, ``_`` between digits and a fraction of
  zeros (``" +8_583.0 "``); choices are exact; paths are taken as written (``~`` expanded in
  ``home`` only).
* A bad value raises :class:`SettingsError`, which names the variable and says what is wrong
  in pydantic's words (``setting SMARTPOS_HOST_PORT: Input should be less than or equal to
  65535``): the command reports it as one line (code ``config``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Literal

__all__ = ["ENV_FILE", "ENV_PREFIX", "Settings", "SettingsError", "load_settings"]

ENV_PREFIX = "SMARTPOS_"
ENV_FILE = ".env"
# pydantic's lax reading of an integer from text (pydantic-core `str_as_int`).
_INT = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)*(?:\.0+)?")
_INT_MAX_CHARS = 4300  # as pydantic (and Python's int()) read at most


class SettingsError(Exception):
    """A setting has a value smartpos cannot use; nothing has been done with it.

    Not a ``ValueError``: those are the person's input errors (a card, an amount), reported
    as refused; a setting is the operator's (code ``config``)."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"setting {ENV_PREFIX}{name.upper()}: {problem}")
        self.name, self.problem = name, problem


def _default_home() -> Path:
    return Path.home() / ".smartpos"


def _bounded(default: int, ge: int, le: int) -> Any:
    return field(default=default, metadata={"ge": ge, "le": le})


@dataclass(frozen=True, init=False)
class Settings:
    """Settings for the terminal, the sandbox host and the tools around them.

    ``Settings(home=…)`` takes the given settings and reads the others from the
    environment and ``.env``, like :func:`load_settings`."""

    home: Path = field(default_factory=_default_home)  # the data directory
    # Databases: the host and the POS belong to different organisations and never share one.
    terminal_db_url: str | None = None
    host_db_url: str | None = None
    # The store's database (catalog, orders, staff, shifts), beside the terminal's journal.
    pos_db_url: str | None = None

    host_bind: str = "127.0.0.1"
    host_port: int = _bounded(8583, ge=1, le=65535)
    # Where the terminal connects (defaults to the local sandbox host).
    link_host: str = "127.0.0.1"
    link_port: int = _bounded(8583, ge=1, le=65535)
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
    printer_width_chars: int = _bounded(32, ge=24, le=64)

    # The cashier app (smartpos pos): where it listens, and when an idle screen locks.
    pos_bind: str = "127.0.0.1"
    pos_port: int = _bounded(8000, ge=1, le=65535)
    idle_lock_minutes: int = _bounded(15, ge=1, le=24 * 60)
    # The on-screen PIN pad: keys in order, or in a new random order for each PIN.
    pin_pad_layout: Literal["fixed", "shuffled"] = "fixed"

    def __init__(self, **overrides: Any) -> None:
        unknown = set(overrides) - set(_fields())
        if unknown:
            raise TypeError(f"Settings has no setting {', '.join(sorted(unknown))}")
        self._fill({**_environment(), **overrides})

    @classmethod
    def model_validate_json(cls, text: str | bytes) -> Settings:
        """The settings :meth:`model_dump_json` wrote, exactly: nothing is read from the
        environment (a host front-end process gets its writer's settings this way). The
        names are pydantic's, which this class replaced."""
        values: dict[str, Any] = json.loads(text)
        settings = cls.__new__(cls)
        settings._fill({name: values[name] for name in _fields() if name in values})
        return settings

    def model_dump_json(self) -> str:
        """Every setting as one JSON object (paths as text), for :meth:`model_validate_json`."""
        return json.dumps(
            {
                name: str(value) if isinstance(value, Path) else value
                for name, value in ((f, getattr(self, f)) for f in _fields())
            }
        )

    def _fill(self, values: Mapping[str, Any]) -> None:
        for name, spec in _fields().items():
            if name in values:
                value = spec.convert(name, values[name])
            elif spec.default is not dataclasses.MISSING:
                value = spec.default
            else:
                value = spec.default_factory()
            object.__setattr__(self, name, value)  # frozen: set once, here

    @cached_property
    def resolved_terminal_db_url(self) -> str:
        return self.terminal_db_url or f"sqlite:///{self.home / 'terminal.db'}"

    @cached_property
    def resolved_pos_db_url(self) -> str:
        return self.pos_db_url or f"sqlite:///{self.home / 'pos.db'}"

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


def load_settings(**overrides: Any) -> Settings:
    """The settings: ``overrides``, then the environment, then ``.env``, then defaults."""
    return Settings(**overrides)


@dataclass(frozen=True)
class _Spec:
    """How one setting is read: its kind (``path``, ``str``, ``int``, ``choice``), whether it
    may be None, its bounds or choices, and its default."""

    kind: str
    optional: bool
    choices: tuple[str, ...]
    ge: int | None
    le: int | None
    default: Any
    default_factory: Any

    def convert(self, name: str, value: Any) -> Any:
        if value is None and self.optional:
            return None
        converted = getattr(self, f"_{self.kind}")(value)
        if converted is None:
            raise SettingsError(name, self._problem())
        if self.kind == "int":
            if self.ge is not None and converted < self.ge:
                raise SettingsError(name, f"Input should be greater than or equal to {self.ge}")
            if self.le is not None and converted > self.le:
                raise SettingsError(name, f"Input should be less than or equal to {self.le}")
        if name == "home":
            converted = converted.expanduser()
        return converted

    def _problem(self) -> str:
        if self.kind == "int":
            return "Input should be a valid integer, unable to parse string as an integer"
        if self.kind == "choice":
            quoted = [f"'{c}'" for c in self.choices]
            listed = f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else quoted[0]
            return f"Input should be {listed}"
        return f"Input should be a valid {'path' if self.kind == 'path' else 'string'}"

    @staticmethod
    def _path(value: Any) -> Path | None:
        return Path(value) if isinstance(value, str | os.PathLike) else None

    @staticmethod
    def _str(value: Any) -> str | None:
        return value if isinstance(value, str) else None

    @staticmethod
    def _int(value: Any) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if not isinstance(value, str):
            return None
        text = value.strip()
        if len(text) > _INT_MAX_CHARS or not _INT.fullmatch(text):
            return None
        return int(text.partition(".")[0])

    def _choice(self, value: Any) -> str | None:
        return value if isinstance(value, str) and value in self.choices else None


@cache
def _fields() -> dict[str, _Spec]:
    """Each setting's :class:`_Spec`, from the declarations of :class:`Settings`."""
    hints = typing.get_type_hints(Settings)
    specs: dict[str, _Spec] = {}
    for f in dataclasses.fields(Settings):
        hint = hints[f.name]
        args = typing.get_args(hint)
        optional = type(None) in args
        base = next(a for a in args if a is not type(None)) if optional else hint
        if typing.get_origin(base) is Literal:
            kind, choices = "choice", tuple(typing.get_args(base))
        else:
            kind, choices = {Path: "path", str: "str", int: "int"}[base], ()
        specs[f.name] = _Spec(
            kind,
            optional,
            choices,
            f.metadata.get("ge"),
            f.metadata.get("le"),
            f.default,
            f.default_factory,
        )
    return specs


def _environment() -> dict[str, str]:
    """The settings given in the environment, else in ``.env``, by setting name."""
    prefix = ENV_PREFIX.lower()
    found: dict[str, str] = {}
    env_file = Path(ENV_FILE)
    if env_file.is_file() or env_file.is_fifo():
        from dotenv import dotenv_values  # only when there is a file to read

        found.update(_ours(dotenv_values(env_file, encoding="utf-8"), prefix))
    found.update(_ours(os.environ, prefix))
    return found


def _ours(variables: Mapping[str, str | None], prefix: str) -> dict[str, str]:
    names = _fields()
    found: dict[str, str] = {}
    for key, value in variables.items():
        key = key.lower()
        if value is not None and key.startswith(prefix) and key[len(prefix) :] in names:
            found[key[len(prefix) :]] = value
    return found
