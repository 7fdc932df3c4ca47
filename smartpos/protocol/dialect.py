"""A dialect: which fields a message may carry and how each travels.

A dialect is a field dictionary (``cup``: the CUP POS fields, :mod:`smartpos.protocol.spec`;
``iso87``: every ISO 8583:1987 field 2–64, :mod:`smartpos.protocol.iso87`), a representation
(how MTI, bitmap, digits, text, bytes and lengths are written) and per-field overrides on top.
It is built from plain data — the ``[profile.<name>.message]`` and ``[profile.<name>.fields]``
tables of a profile file — and checked as it is built: an unknown key, a value out of its
set or a format that cannot travel is a :class:`~smartpos.protocol.formats.FormatError`
naming the key (``fields.35.counts``), and no dialect comes out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar

from smartpos.protocol import iso87, spec
from smartpos.protocol.formats import (
    Counts,
    Encoding,
    FieldDef,
    FieldFormat,
    FieldType,
    FormatError,
    LengthType,
    Pad,
    PyisoSpec,
    Representation,
    build_spec,
    resolve,
    with_defaults,
)

FIELD_MIN, FIELD_MAX = 2, 64  # primary bitmap only: bit 1 (a secondary bitmap) is refused


@dataclass(frozen=True, slots=True)
class Dictionary:
    name: str
    fields: Mapping[str, FieldDef]
    representation: Representation
    secondary_desc: str


DICTIONARIES: dict[str, Dictionary] = {
    "cup": Dictionary("cup", spec.FIELDS, spec.REPRESENTATION, spec.SECONDARY_BITMAP_DESC),
    "iso87": Dictionary("iso87", iso87.FIELDS, iso87.REPRESENTATION, iso87.SECONDARY_BITMAP_DESC),
}

# The keys of a [fields.<n>] table, and of the [message] table besides the dictionary.
FIELD_KEYS = ("type", "encoding", "length", "max", "prefix", "counts", "pad", "pad_char")
REPRESENTATION_KEYS = tuple(f.name for f in dataclass_fields(Representation))


@dataclass(frozen=True, slots=True)
class Dialect:
    """A resolved dialect. ``formats`` holds every field, sorted by number; two dialects that
    put the same bytes on the wire are equal (and share a codec)."""

    dictionary: str
    representation: Representation
    formats: tuple[tuple[str, FieldFormat], ...]
    # ``formats`` by field number, made once (the codec and the profile checks read it).
    fields: Mapping[str, FieldFormat] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", MappingProxyType(dict(self.formats)))

    @property
    def secondary_desc(self) -> str:
        return DICTIONARIES[self.dictionary].secondary_desc

    def pyiso8583_spec(self) -> PyisoSpec:
        return build_spec(
            dict(self.fields), self.representation, secondary_desc=self.secondary_desc
        )

    @classmethod
    def build(
        cls,
        dictionary: str = "cup",
        message: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Dialect:
        """The dialect of ``dictionary`` with the ``message`` table's representation keys
        (``mti``, ``bitmap``, ``numeric``, ``text``, ``binary``, ``prefix``) and the
        per-field ``overrides`` (``{"35": {"encoding": "ascii"}}``) applied."""
        if dictionary not in DICTIONARIES:
            raise FormatError(
                "message.dictionary",
                f"unknown field dictionary {dictionary!r}; known: {sorted(DICTIONARIES)}",
            )
        base = DICTIONARIES[dictionary]
        rep = base.representation
        for key, value in (message or {}).items():
            if key not in REPRESENTATION_KEYS:
                raise FormatError(
                    f"message.{key}",
                    f"unknown key; known: {['dictionary', *REPRESENTATION_KEYS]}",
                )
            rep = replace(rep, **{key: _enum(Encoding, value, f"message.{key}")})
        try:
            rep.check()
        except FormatError as exc:
            raise FormatError(f"message.{exc.key}", exc.message) from None
        formats = {k: resolve(f, rep) for k, f in base.fields.items()}
        for key, table in (overrides or {}).items():
            number = _field_number(key)
            try:
                formats[number] = override(formats.get(number), table, rep)
            except FormatError as exc:
                where = f"fields.{key}" + (f".{exc.key}" if exc.key else "")
                raise FormatError(where, exc.message) from None
        for number, fmt in formats.items():
            try:
                fmt.check()
            except FormatError as exc:  # a dictionary field made invalid by the representation
                raise FormatError(f"fields.{number}.{exc.key}", exc.message) from None
        ordered = tuple(sorted(formats.items(), key=lambda kv: int(kv[0])))
        return cls(dictionary, rep, ordered)


DEFAULT_DIALECT = Dialect.build("cup")


def override(
    base: FieldFormat | None, table: Mapping[str, Any], rep: Representation
) -> FieldFormat:
    """``base`` with the keys of ``table`` changed (a field the dictionary lacks is defined
    whole: ``type``, ``length`` and ``max`` at least). Settings that follow from the changed
    ones are derived again unless ``table`` gives them: a new type takes the dialect's
    encoding for that type, and what the prefix counts and the pad follow type, encoding and
    length."""
    if not isinstance(table, Mapping):
        raise FormatError("", "a field override is a table of settings")
    for key in table:
        if key not in FIELD_KEYS:
            raise FormatError(key, f"unknown key; known: {list(FIELD_KEYS)}")
    given: dict[str, Any] = {}
    if "type" in table:
        given["type"] = _enum(FieldType, table["type"], "type")
    if "encoding" in table:
        given["encoding"] = _enum(Encoding, table["encoding"], "encoding")
    if "length" in table:
        given["length"] = _enum(LengthType, table["length"], "length")
    if "max" in table:
        value = table["max"]
        if type(value) is not int:
            raise FormatError("max", f"must be a whole number, not {value!r}")
        given["max"] = value
    if "prefix" in table:
        given["prefix"] = _enum(Encoding, table["prefix"], "prefix")
    if "counts" in table:
        given["counts"] = _enum(Counts, table["counts"], "counts")
    if "pad" in table:
        given["pad"] = _enum(Pad, table["pad"], "pad")
    if "pad_char" in table:
        value = table["pad_char"]
        if not isinstance(value, str):
            raise FormatError("pad_char", f"must be a string, not {value!r}")
        given["pad_char"] = value
    if base is None:
        missing = [k for k in ("type", "length", "max") if k not in given]
        if missing:
            raise FormatError(
                missing[0],
                f"the field is not in the dictionary: define it whole (missing: {missing})",
            )
        t = given["type"]
        base = FieldFormat(t, _default_encoding(t, rep), given["length"], given["max"], desc="")
    if "type" in given and "encoding" not in given and given["type"] != base.type:
        given["encoding"] = _default_encoding(given["type"], rep)  # the dialect's, for the type
    shape_changed = any(k in given for k in ("type", "encoding", "length"))
    fmt = replace(base, **given)
    if shape_changed:
        # Derive again what depended on the old shape, unless it was given.
        if "counts" not in given:
            fmt = replace(fmt, counts=None)
        if "pad" not in given:
            fmt = replace(fmt, pad=None)
        if "pad_char" not in given:
            fmt = replace(fmt, pad_char="")
    explicit_pad = "pad" in given or "pad_char" in given
    if explicit_pad and not fmt.bcd_digits:
        raise FormatError(
            "pad",
            "only BCD digits are padded (an odd digit count fills half a byte); "
            f"a {fmt.type} field in {fmt.encoding} travels at its exact length",
        )
    if "prefix" in given and fmt.length == LengthType.FIXED:
        raise FormatError("prefix", "a fixed-length field has no length prefix")
    if "counts" in given and fmt.length == LengthType.FIXED:
        raise FormatError("counts", "a fixed-length field has no length prefix to count")
    return with_defaults(fmt, prefix=rep.prefix).check()


def _default_encoding(t: FieldType, rep: Representation) -> Encoding:
    if t in (FieldType.N, FieldType.Z):
        return rep.numeric
    return rep.binary if t == FieldType.B else rep.text


_E = TypeVar("_E", bound=StrEnum)


def _enum(kind: type[_E], value: Any, key: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        raise FormatError(key, f"{value!r} is not one of {[str(m) for m in kind]}") from None


def _field_number(key: str) -> str:
    if not (isinstance(key, str) and key.isdigit() and key == str(int(key))):
        raise FormatError(f"fields.{key}", "a field is named by its number, 2 to 64")
    if not FIELD_MIN <= int(key) <= FIELD_MAX:
        raise FormatError(
            f"fields.{key}",
            f"fields {FIELD_MIN}–{FIELD_MAX} only: this codec reads the primary bitmap alone",
        )
    return key
