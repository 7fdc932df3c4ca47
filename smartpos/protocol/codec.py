"""Encode and decode ISO 8583 messages of a dialect, and place/check the MAC.

A message is a ``dict[str, str]`` in pyiso8583's decoded form: ``"t"`` is the MTI, numeric
and binary fields are digit / hex strings, alphanumeric fields plain text. The MAC (field 64)
covers every byte of the message from the MTI up to (not including) the MAC itself.

That form is the same in every dialect, so the terminal and the host never see how a field
travels: bytes are upper-case hex whether they go raw or as hex text, and track 2 separates
PAN and expiry with ``D`` whether the wire has the BCD nibble ``D`` or ASCII ``=``.

:class:`Codec` serves one dialect (``profile.codec``); the module-level :func:`encode`,
:func:`decode` and :func:`mac_input` are the default dialect's (the CUP layout of
:mod:`smartpos.protocol.spec`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from string import hexdigits

import iso8583

from smartpos.protocol import compiled
from smartpos.protocol.dialect import DEFAULT_DIALECT, Dialect
from smartpos.protocol.formats import Encoding, FieldType, LengthType

Fields = dict[str, str]
MacFn = Callable[[bytes], bytes]

MAC_LEN = 8
_MAC_PLACEHOLDER = "00" * MAC_LEN
_HEX = frozenset(hexdigits)


class MessageError(ValueError):
    """A message that cannot be encoded or decoded. ``field`` names where, when known.

    ``response_code`` is what a host answers such a request with (30 = format error)."""

    def __init__(
        self,
        reason: str,
        field: str | None = None,
        response_code: str = "30",
        partial: Fields | None = None,
    ):
        super().__init__(f"{reason}" + (f" (field {field})" if field else ""))
        self.reason = reason
        self.field = field
        self.response_code = response_code
        # What decoded before the defect (never the faulty field): a host echoes 11 and 41
        # from it so the terminal can match the 30 answer to its request.
        self.partial: Fields = partial or {}


class Codec:
    """The codec of one dialect: pyiso8583 with the dialect's spec, behind the compiled fast
    path, and the checks pyiso8583 does not make (digits in numeric fields, hex in bytes
    sent as text, one bitmap only)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.spec = dialect.pyiso8583_spec()
        formats = dialect.fields
        # Fields a message may carry; anything else set in the bitmap is a format error.
        self.supported_fields = frozenset(formats)
        # Digits only once decoded; track 2 (z) may hold its separator, and the MTI and
        # bitmap are checked on their own.
        self._numeric = frozenset(k for k, f in formats.items() if f.type == FieldType.N)
        self._bcd_digits = all(formats[k].encoding == Encoding.BCD for k in self._numeric)
        text = (Encoding.ASCII, Encoding.EBCDIC)
        self._track = frozenset(
            k for k, f in formats.items() if f.type == FieldType.Z and f.encoding in text
        )
        self._hex_text = frozenset(k for k, f in formats.items() if f.hex_text)
        self._text_bitmap = dialect.representation.bitmap != Encoding.BINARY
        self._mti_rule = (
            "MTI must be 4 BCD digits"
            if dialect.representation.mti == Encoding.BCD
            else "MTI must be 4 digits"
        )
        mac = formats.get("64")
        self._mac_wire_len: int | None = None
        if (
            mac is not None
            and mac.type == FieldType.B
            and mac.length == LengthType.FIXED
            and mac.max == MAC_LEN
        ):
            self._mac_wire_len = mac.wire_max
        try:
            self._fast_decode, self._fast_encode = compiled.compile_spec(self.spec)
        except compiled.Unsupported:  # pragma: no cover - the dialect builder makes none
            self._fast_decode, self._fast_encode = _no_fast_decode, _no_fast_encode

    @property
    def carries_mac(self) -> bool:
        """Whether field 64 can carry an 8-byte MAC (raw, or as 16 hex characters)."""
        return self._mac_wire_len is not None

    def encode(self, fields: Fields, mac: MacFn | None = None) -> bytes:
        """Encode ``fields``; with ``mac``, set field 64 to ``mac(bytes before the MAC)``."""
        doc = {k: v for k, v in fields.items() if k not in ("p", "64")}
        if self._track or self._hex_text:
            self._to_wire(doc)
        if mac is not None:
            if self._mac_wire_len is None:
                raise MessageError("this dialect's field 64 cannot carry an 8-byte MAC", "64")
            doc["64"] = _MAC_PLACEHOLDER
        raw = self._fast_encode(doc)
        if raw is None:  # not sure: pyiso8583 encodes it or says what is wrong
            try:
                raw = bytes(iso8583.encode(doc, self.spec)[0])
            except iso8583.EncodeError as exc:
                raise MessageError(exc.msg, exc.field) from None
        if mac is None:
            return bytes(raw)
        assert self._mac_wire_len is not None
        body = bytes(raw[: -self._mac_wire_len])
        code = mac(body)
        if self._mac_wire_len != MAC_LEN:  # the MAC as hex text
            return body + code.hex().upper().encode("ascii")
        return body + code

    def decode(self, raw: bytes) -> Fields:
        """Decode a message. Any defect (bad bitmap, field overrun, unknown or unsupported
        field, trailing bytes, bad BCD) is a ``MessageError`` naming the field."""
        doc = self._fast_decode(raw)
        if doc is None:  # not sure: pyiso8583 decodes it or says what is wrong
            try:
                doc = iso8583.decode(bytearray(raw), self.spec)[0]
            except iso8583.DecodeError as exc:
                partial = {k: v for k, v in exc.doc_dec.items() if k != exc.field}
                raise MessageError(exc.msg, exc.field, partial=partial) from None
            except (KeyError, ValueError, IndexError, TypeError) as exc:
                raise MessageError(f"undecodable message: {type(exc).__name__}") from None
        if "1" in doc:
            raise MessageError("secondary bitmap is not supported", "1", partial=doc)
        unknown = [k for k in doc if k.isdigit() and k not in self.supported_fields]
        if unknown:
            raise MessageError("field not supported", unknown[0], partial=doc)
        mti = doc.get("t", "")
        if len(mti) != 4 or not (mti.isascii() and mti.isdigit()):
            raise MessageError(self._mti_rule, "t")
        numeric = self._numeric
        for key, value in doc.items():
            # BCD decodes to ASCII hex digits; text may hold any digit Unicode knows ("²").
            if key in numeric and not (value.isdigit() and (self._bcd_digits or value.isascii())):
                partial = {k: v for k, v in doc.items() if k != key}
                raise MessageError("numeric field holds non-digits", key, partial=partial)
        if self._text_bitmap or self._track or self._hex_text:
            self._from_wire(doc)
        return dict(doc)

    def mti_of(self, raw: bytes) -> str:
        """The MTI as the message's first bytes state it, without decoding the rest: what a
        host looks at to decide whether an undecodable message deserves an answer. Not
        checked (``"02A0"`` or ``"\x00\x01.."`` come back as they are)."""
        if self.dialect.representation.mti == Encoding.BCD:
            return raw[:2].hex()
        return raw[:4].decode(self.spec["t"]["data_enc"], errors="replace")

    def mac_input(self, raw: bytes) -> tuple[bytes, bytes]:
        """Split an encoded message that carries field 64 into (MACed bytes, MAC)."""
        size = self._mac_wire_len or MAC_LEN
        if len(raw) <= size:
            raise MessageError("message too short for a MAC", "64")
        body, code = raw[:-size], raw[-size:]
        if size == MAC_LEN:
            return body, code
        try:
            return body, bytes.fromhex(code.decode("ascii"))
        except ValueError:
            raise MessageError("MAC is not hex", "64") from None

    def _to_wire(self, doc: Fields) -> None:
        for key in self._track & doc.keys():
            value = doc[key]
            if isinstance(value, str):
                doc[key] = value.replace("D", "=")
        for key in self._hex_text & doc.keys():
            value = doc[key]
            if not isinstance(value, str) or not _HEX.issuperset(value):
                raise MessageError("Failed to encode field, non-hex data", key)
            if len(value) & 1:
                raise MessageError("Failed to encode field, odd-length hex data", key)
            doc[key] = value.upper()

    def _from_wire(self, doc: Fields) -> None:
        if self._text_bitmap:
            bitmap = doc.get("p", "")
            if len(bitmap) != 16 or not _HEX.issuperset(bitmap):
                raise MessageError("bitmap must be 16 hex digits", "p")
            doc["p"] = bitmap.upper()
        for key in self._track & doc.keys():
            doc[key] = doc[key].replace("=", "D")
        for key in self._hex_text & doc.keys():
            value = doc[key]
            if len(value) & 1 or not _HEX.issuperset(value):
                partial = {k: v for k, v in doc.items() if k != key}
                raise MessageError("binary field holds non-hex text", key, partial=partial)
            doc[key] = value.upper()


def _no_fast_decode(raw: bytes) -> Fields | None:  # pragma: no cover
    return None


def _no_fast_encode(doc: Fields) -> bytes | None:  # pragma: no cover
    return None


@lru_cache(maxsize=64)
def codec_for(dialect: Dialect) -> Codec:
    """The codec of ``dialect``, built once: profiles that speak one dialect share it."""
    return Codec(dialect)


DEFAULT = codec_for(DEFAULT_DIALECT)


def encode(fields: Fields, mac: MacFn | None = None) -> bytes:
    """Encode ``fields`` in the default dialect (:meth:`Codec.encode`)."""
    return DEFAULT.encode(fields, mac)


def decode(raw: bytes) -> Fields:
    """Decode a message of the default dialect (:meth:`Codec.decode`)."""
    return DEFAULT.decode(raw)


def mac_input(raw: bytes) -> tuple[bytes, bytes]:
    """Split a default-dialect message that carries field 64 into (MACed bytes, MAC)."""
    return DEFAULT.mac_input(raw)
