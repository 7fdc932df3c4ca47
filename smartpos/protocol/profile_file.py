"""Profile files: acquirer profiles written in TOML (docs/profiles.md).

A file holds ``[profile.<name>]`` tables. A profile may start from another with ``base`` —
one of the same file, or a built-in — and then says only what differs; sub-tables merge key
by key (``[profile.x.fields.35]`` changes one setting of field 35 and keeps the rest of the
base's). Loading is all or nothing: the first defect — TOML that does not parse, an unknown
key, a value of the wrong type or outside its set, a format that cannot travel, a ``base``
that does not exist or goes round in a circle, settings that contradict each other — is a
:class:`~smartpos.protocol.profiles.ProfileError` that names the file, the profile and the
key, and no profile of the file is returned.

This module builds on :mod:`smartpos.protocol.profiles` (the model); that module reaches it
only inside functions, to load the built-in file at import.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from smartpos.keys.hsm import PinScheme
from smartpos.keys.mac import MacAlgorithm
from smartpos.protocol.dialect import Dialect
from smartpos.protocol.formats import FormatError
from smartpos.protocol.framing import LengthPrefix
from smartpos.protocol.profiles import (
    AcquirerProfile,
    KeyDelivery,
    ProfileError,
    TlsTrust,
)

BUILTIN_FILE = "builtin_profiles.toml"
BUILTIN_SOURCE = "built-in"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_FIELDS = object()  # the [fields] table: checked by the dialect builder

# The keys a profile table may hold, and the type of each value (a dict: a sub-table).
SCHEMA: dict[str, Any] = {
    "base": str,
    "description": str,
    "acquirer_id": str,
    "connect_timeout_ms": int,
    "response_timeout_ms": int,
    "reversal_attempts_max": int,
    "reversal_backoff_ms": int,
    "contactless_no_cvm_limit_minor": int,
    "batch_max_transactions": int,
    "tls": {"enabled": bool, "trust": str, "fingerprint": str, "ca_file": str, "server_name": str},
    "frame": {
        "length": str,
        "tpdu": bool,
        "host_nii": int,
        "terminal_nii": int,
        "header": (str, bool),
    },
    "mac": {"enabled": bool, "algorithm": str},
    "keys": {"delivery": str},
    "pin": {"scheme": str, "ksn_field": int},
    "message": {
        "dictionary": str,
        "mti": str,
        "bitmap": str,
        "numeric": str,
        "text": str,
        "binary": str,
        "prefix": str,
    },
    "fields": _FIELDS,
}
_SCALARS = (
    "description",
    "acquirer_id",
    "connect_timeout_ms",
    "response_timeout_ms",
    "reversal_attempts_max",
    "reversal_backoff_ms",
    "contactless_no_cvm_limit_minor",
    "batch_max_transactions",
)
_TYPE_NAMES = {str: "a string", int: "a whole number", bool: "true or false"}


class _Bad(Exception):
    """A defect at ``key`` of the profile being read (wrapped with file and profile)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def load_builtin() -> dict[str, AcquirerProfile]:
    """The built-in profiles (``builtin_profiles.toml`` in this package)."""
    return _build_all(builtin_tables(), {}, BUILTIN_SOURCE, Path("."))


@cache
def builtin_tables() -> dict[str, dict[str, Any]]:
    """The built-in file's tables, as written (the bases a user's profile may start from)."""
    text = Path(__file__).with_name(BUILTIN_FILE).read_text(encoding="utf-8")
    return _parse(text, BUILTIN_FILE)


def load_file(path: Path) -> dict[str, AcquirerProfile]:
    """Every profile of the file at ``path``; see the module docstring for the rules."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ProfileError(f"{path}: no such profile file") from None
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    tables = _parse(text, str(path))
    builtin = builtin_tables()
    for name in tables:
        if name in builtin:
            raise ProfileError(
                f"{path}: profile {name!r}: the name is a built-in profile's; give yours "
                f'another name (base = "{name}" starts from the built-in)'
            )
    return _build_all(tables, builtin, str(path), path.parent)


def _parse(text: str, where: str) -> dict[str, dict[str, Any]]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{where}: not valid TOML: {exc}") from None
    for key in doc:
        if key != "profile":
            raise ProfileError(
                f"{where}: unknown top-level key {key!r}: a profile file holds "
                "[profile.<name>] tables"
            )
    profiles = doc.get("profile", {})
    if not isinstance(profiles, dict):
        raise ProfileError(f"{where}: 'profile' must be tables: [profile.<name>]")
    for name, table in profiles.items():
        if not _NAME.fullmatch(name):
            raise ProfileError(
                f"{where}: profile {name!r}: a name is letters, digits, '.', '_' and '-' "
                "(at most 64, starting with a letter or digit)"
            )
        if not isinstance(table, dict):
            raise ProfileError(f"{where}: profile {name!r}: must be a table, [profile.{name}]")
    return profiles


def _build_all(
    tables: dict[str, dict[str, Any]],
    fallback: dict[str, dict[str, Any]],
    source: str,
    directory: Path,
) -> dict[str, AcquirerProfile]:
    own = {}
    for name, table in tables.items():
        try:
            own[name] = _checked(table, SCHEMA, "", directory)
        except _Bad as exc:
            raise _error(source, name, exc.key, exc.message) from None
    checked_fallback = {n: _checked(t, SCHEMA, "", Path(".")) for n, t in fallback.items()}
    out = {}
    for name in own:
        try:
            merged = _merged(name, own, checked_fallback, [])
            out[name] = _profile(name, merged, source)
        except _Bad as exc:
            raise _error(source, name, exc.key, exc.message) from None
        except ProfileError as exc:
            raise _error(source, name, exc.key, exc.reason) from None
    return out


def _error(source: str, name: str, key: str | None, message: str) -> ProfileError:
    where = f"{source}: profile {name!r}: " + (f"{key}: " if key else "")
    return ProfileError(where + message, key=None)


def _checked(
    table: Mapping[str, Any], schema: Mapping[str, Any], where: str, directory: Path
) -> dict[str, Any]:
    """``table`` with every key known and every value of its type (paths made absolute)."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        full = f"{where}{key}"
        if key not in schema:
            raise _Bad(full, f"unknown key; known here: {sorted(schema)}")
        kind = schema[key]
        if kind is _FIELDS:
            if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
                raise _Bad(full, "field overrides are tables: [profile.<name>.fields.<number>]")
            out[key] = {k: dict(v) for k, v in value.items()}
        elif isinstance(kind, dict):
            if not isinstance(value, dict):
                raise _Bad(full, f"must be a table ([...{key}] or {key}.<setting> = ...)")
            out[key] = _checked(value, kind, f"{full}.", directory)
        else:
            kinds = kind if isinstance(kind, tuple) else (kind,)
            if not any(type(value) is k for k in kinds):
                wanted = " or ".join(_TYPE_NAMES[k] for k in kinds)
                raise _Bad(full, f"must be {wanted}, not {value!r}")
            out[key] = value
    if where == "tls." and "ca_file" in out:
        out["ca_file"] = str(_ca_file(directory / out["ca_file"]))
    return out


def _ca_file(path: Path) -> Path:
    import ssl  # only a profile that names CA certificates needs it

    path = path.resolve()
    if not path.is_file():
        raise _Bad("tls.ca_file", f"no such file: {path}")
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError) as exc:
        raise _Bad("tls.ca_file", f"{path} holds no usable CA certificate ({exc})") from None
    return path


def _merged(
    name: str,
    tables: dict[str, dict[str, Any]],
    fallback: dict[str, dict[str, Any]],
    chain: list[str],
) -> dict[str, Any]:
    """The profile's settings with those of its bases under them."""
    if name in chain:
        raise _Bad("base", "profiles inherit in a circle: " + " -> ".join([*chain, name]))
    table = tables[name]
    base = table.get("base")
    own = {k: v for k, v in table.items() if k != "base"}
    if base is None:
        return own
    if base in tables:
        parent = _merged(base, tables, fallback, [*chain, name])
    elif base in fallback:
        parent = _merged(base, fallback, {}, [*chain, name])
    else:
        known = sorted({*tables, *fallback} - {name})
        raise _Bad("base", f"no profile {base!r} to start from; known: {known}")
    return _deep_merge(parent, own)


def _deep_merge(under: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(under)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _enum(kind: Any, value: str, key: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise _Bad(key, f"{value!r} is not one of {[str(m.value) for m in kind]}") from None


def _profile(name: str, s: Mapping[str, Any], source: str) -> AcquirerProfile:
    """The profile from its merged, type-checked settings."""
    kw: dict[str, Any] = {k: s[k] for k in _SCALARS if k in s}
    tls = s.get("tls", {})
    if "enabled" in tls:
        kw["tls"] = tls["enabled"]
    if "trust" in tls:
        kw["tls_trust"] = _enum(TlsTrust, tls["trust"], "tls.trust")
    if "fingerprint" in tls:
        kw["tls_fingerprint"] = tls["fingerprint"].replace(":", "").lower()
    for key in ("ca_file", "server_name"):
        if key in tls:
            kw[f"tls_{key}"] = tls[key]
    frame = s.get("frame", {})
    if "length" in frame:
        kw["length_prefix"] = _enum(LengthPrefix, frame["length"], "frame.length")
    for key in ("tpdu", "host_nii", "terminal_nii"):
        if key in frame:
            kw[key] = frame[key]
    if "header" in frame:
        header = frame["header"]
        if header is True:
            raise _Bad("frame.header", "give the header's bytes in hex, or false for none")
        kw["app_header_hex"] = None if header is False else header
    mac = s.get("mac", {})
    if "enabled" in mac:
        kw["mac_required"] = mac["enabled"]
    if "algorithm" in mac:
        kw["mac_algorithm"] = _enum(MacAlgorithm, mac["algorithm"], "mac.algorithm")
    if "delivery" in s.get("keys", {}):
        kw["key_delivery"] = _enum(KeyDelivery, s["keys"]["delivery"], "keys.delivery")
    pin = s.get("pin", {})
    if "scheme" in pin:
        kw["pin_scheme"] = _enum(PinScheme, pin["scheme"], "pin.scheme")
    if "ksn_field" in pin:
        kw["ksn_field"] = pin["ksn_field"]
    message = dict(s.get("message", {}))
    dictionary = message.pop("dictionary", "cup")
    try:
        kw["dialect"] = Dialect.build(dictionary, message, s.get("fields", {}))
    except FormatError as exc:
        raise _Bad(exc.key, exc.message) from None
    return AcquirerProfile(name, source=source, **kw)
