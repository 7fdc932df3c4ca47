"""Hostile frames without a valid MAC: every kind of broken framing and message the host must
answer per docs/protocol.md §10.2 (30 with echo, 12, 97/03/A0, or a closed link) without
posting anything or logging a traceback.

Messages are assembled field by field from the project's own codec (each field's wire bytes
come from :func:`smartpos.protocol.codec.encode`), so a defect can be put exactly where it
is wanted: one bad nibble, one oversized length prefix, one unknown bitmap bit.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from smartpos.protocol import codec
from smartpos.protocol.codec import Fields
from smartpos.protocol.framing import Frame, Tpdu, encode_frame
from smartpos.protocol.messages import F60, NET_ECHO, TYPE_NETWORK, TYPE_PURCHASE
from smartpos.protocol.profiles import AcquirerProfile

# Kinds after which the host closes the link instead of answering (§10.2 step 1–2).
CLOSING = frozenset(
    {
        "length-short",
        "length-long",
        "length-truncated",
        "tpdu-bad-id",
        "tpdu-short",
        "mti-not-bcd",
        "mti-third-digit-9",
        "mti-response",
    }
)
# What an unauthenticated frame may get (anything else is a finding): a close, a format
# error, unsupported, unknown terminal, wrong merchant, inactive terminal, bad MAC — and 00
# only for an echo test (it carries no MAC by design).
ALLOWED_CODES = frozenset({"30", "12", "97", "03", "58", "A0"})
_UNKNOWN_BITS = (5, 6, 7, 8, 9, 10, 16, 17, 18, 20, 21, 24, 27, 28, 29, 30, 31, 33, 34, 36, 40,
                 43, 45, 46, 47, 50, 51, 56, 57, 58, 59)  # fmt: skip


@dataclass(frozen=True)
class Identity:
    """Whose fields the frames carry (a registered terminal's, but without its MAC)."""

    tid: str
    mid: str
    pan: str


def field_bytes(key: str, value: str) -> bytes:
    """The wire bytes of one field (length prefix included), from the codec."""
    return codec.encode({"t": "0200", key: value})[10:]


def assemble(mti: bytes, parts: dict[int, bytes], *, secondary: bytes | None = None) -> bytes:
    """A message from raw parts: MTI, a bitmap announcing exactly ``parts`` (and bit 1 with
    ``secondary``), then the parts in field order."""
    bitmap = sum(1 << (64 - k) for k in parts) | ((1 << 63) if secondary is not None else 0)
    body = b"".join(parts[k] for k in sorted(parts))
    return mti + bitmap.to_bytes(8, "big") + (secondary or b"") + body


class HostileFrames:
    """Seeded generator of hostile frames, by kind. ``next()`` returns (kind, wire bytes)."""

    def __init__(self, rng: random.Random, profile: AcquirerProfile, who: Identity) -> None:
        self.rng = rng
        self.profile = profile
        self.who = who
        self._stan = rng.randrange(1, 999_999)
        self.kinds: dict[str, Callable[[], bytes]] = {
            "length-short": self._length_short,
            "length-long": self._length_long,
            "length-truncated": self._length_truncated,
            "tpdu-bad-id": self._tpdu_bad_id,
            "tpdu-short": self._tpdu_short,
            "truncated-message": self._truncated,
            "oversized-field": self._oversized,
            "bad-bcd": self._bad_bcd,
            "unknown-bit": self._unknown_bit,
            "secondary-bitmap": self._secondary,
            "mti-not-bcd": lambda: self._with_mti(bytes([0x0A | self.rng.randrange(16) << 4, 0])),
            "mti-third-digit-9": lambda: self._with_mti(self.rng.choice((b"\x02\x90", b"\x08\x90",
                                                                         b"\x04\x90"))),
            "mti-response": lambda: self._with_mti(self.rng.choice((b"\x02\x10", b"\x08\x10",
                                                                    b"\x04\x10", b"\x05\x10"))),
            "mti-unknown": lambda: self._with_mti(self.rng.choice((b"\x01\x00", b"\x06\x00",
                                                                   b"\x92\x00", b"\x00\x00"))),
            "bad-subfield": self._bad_subfield,
            "bad-card-data": self._bad_card_data,
            "non-ascii": self._non_ascii,
            "trailing-bytes": lambda: self.frame(self._purchase() + self._random(1, 40)),
            "random-body": lambda: self.frame(self._random(10, 300)),
            "no-mac": lambda: self.frame(codec.encode(self._fields())),
            "bad-mac": lambda: self.frame(self._purchase()),
            "unknown-terminal": lambda: self.frame(self._purchase(tid="ZZ999999")),
            "wrong-merchant": lambda: self.frame(self._purchase(mid="000000000000000")),
            "echo-mutated": self._echo_mutated,
        }  # fmt: skip
        self.names = sorted(self.kinds)
        self._weights = [1 if k in CLOSING else 4 for k in self.names]

    def next(self) -> tuple[str, bytes]:
        # A closing kind costs a new connection (and TLS handshake): sent less often.
        kind = self.rng.choices(self.names, self._weights)[0]
        return kind, self.kinds[kind]()

    # -- building blocks -------------------------------------------------------------------

    def frame(self, message: bytes) -> bytes:
        tpdu = Tpdu(self.profile.host_nii, self.profile.terminal_nii)
        return encode_frame(Frame(tpdu, self.profile.app_header, message))

    def _body(self, message: bytes) -> bytes:
        return self.frame(message)[2:]

    def _random(self, low: int, high: int) -> bytes:
        return self.rng.randbytes(self.rng.randint(low, high))

    def _fields(self, tid: str | None = None, mid: str | None = None) -> Fields:
        self._stan = self._stan % 999_999 + 1
        return {
            "t": "0200",
            "2": self.who.pan,
            "3": "000000",
            "4": f"{self.rng.randint(1, 99_999):012d}",
            "11": f"{self._stan:06d}",
            "12": "101010",
            "13": "1123",
            "14": "3012",
            "22": "012",
            "25": "00",
            "41": tid or self.who.tid,
            "42": mid or self.who.mid,
            "49": "156",
            "60": F60(TYPE_PURCHASE, "000001").encode(),
        }

    def _purchase(self, tid: str | None = None, mid: str | None = None) -> bytes:
        """A purchase with a made-up MAC (an attacker does not hold the TAK)."""
        fake = self.rng.randbytes(8)
        return codec.encode(self._fields(tid, mid), mac=lambda _: fake)

    def _parts(self, fields: Fields) -> tuple[bytes, dict[int, bytes]]:
        parts = {int(k): field_bytes(k, v) for k, v in fields.items() if k != "t"}
        parts[64] = self.rng.randbytes(8)
        return bytes.fromhex(fields["t"]), parts

    def _with_mti(self, mti: bytes) -> bytes:
        _, parts = self._parts(self._fields())
        return self.frame(assemble(mti, parts))

    # -- kinds -----------------------------------------------------------------------------

    def _length_short(self) -> bytes:
        length = self.rng.randrange(0, 15)
        return length.to_bytes(2, "big") + self.rng.randbytes(length)

    def _length_long(self) -> bytes:
        return self.rng.randrange(4097, 65536).to_bytes(2, "big") + self._random(0, 64)

    def _length_truncated(self) -> bytes:
        """A length prefix promising more than is sent (the sender then closes)."""
        body = self._body(self._purchase())
        return (len(body) + self.rng.randint(1, 200)).to_bytes(2, "big") + body

    def _tpdu_bad_id(self) -> bytes:
        body = bytearray(self._body(self._purchase()))
        body[0] = self.rng.choice([b for b in range(256) if b != 0x60])
        return len(body).to_bytes(2, "big") + bytes(body)

    def _tpdu_short(self) -> bytes:
        body = self._body(self._purchase())[: self.rng.randint(15, 20)]
        return len(body).to_bytes(2, "big") + body

    def _truncated(self) -> bytes:
        message = self._purchase()
        return self.frame(message[: self.rng.randint(10, len(message) - 1)])

    def _oversized(self) -> bytes:
        mti, parts = self._parts(self._fields())
        key = self.rng.choice((2, 60, 63))
        if key == 2:
            parts[2] = bytes([self.rng.choice((0x20, 0x25, 0x50, 0x99))]) + self._random(10, 50)
        elif key == 60:
            parts[60] = bytes([0x00, self.rng.choice((0x18, 0x50, 0x99))]) + self._random(9, 60)
        else:
            parts[63] = bytes([0x01, 0x64]) + b"x" * 164
        return self.frame(assemble(mti, parts))

    def _bad_bcd(self) -> bytes:
        mti, parts = self._parts(self._fields())
        key = self.rng.choice((2, 3, 4, 11, 12, 13, 14, 22, 25, 60))
        data = bytearray(parts[key])
        at = self.rng.randrange(len(data))
        nibble = self.rng.randrange(10, 16)
        data[at] = (data[at] & 0x0F) | (nibble << 4) if self.rng.random() < 0.5 else (
            data[at] & 0xF0) | nibble  # fmt: skip
        parts[key] = bytes(data)
        return self.frame(assemble(mti, parts))

    def _unknown_bit(self) -> bytes:
        mti, parts = self._parts(self._fields())
        parts[self.rng.choice(_UNKNOWN_BITS)] = self._random(1, 12)
        return self.frame(assemble(mti, parts))

    def _secondary(self) -> bytes:
        mti, parts = self._parts(self._fields())
        return self.frame(assemble(mti, parts, secondary=self.rng.randbytes(8)))

    def _bad_subfield(self) -> bytes:
        """60/61/48/54/55 that break their sub-field layout (§6): the MAC gate comes first
        for money messages, so most get A0; the echo test's 60 is read before any MAC."""
        fields = self._fields()
        key = self.rng.choice(("60", "61", "48", "54", "55"))
        values: dict[str, Callable[[], str]] = {
            "60": lambda: self.rng.choice(("", "2", "22", "2200", "99999999999999999")),
            "61": lambda: "".join(self.rng.choices("0123456789", k=self.rng.randint(0, 29))),
            "48": lambda: "".join(self.rng.choices("0123456789", k=self.rng.randint(0, 80))),
            "54": lambda: "".join(map(chr, self.rng.choices(range(32, 127), k=20))),
            "55": lambda: self.rng.randbytes(self.rng.randint(0, 80)).hex().upper(),
        }
        fields[key] = values[key]()
        if key == "60" and self.rng.random() < 0.5:
            fields = self._echo(fields[key])
            return self.frame(codec.encode(fields))
        fake = self.rng.randbytes(8)
        return self.frame(codec.encode(fields, mac=lambda _: fake))

    def _bad_card_data(self) -> bytes:
        fields = self._fields()
        choice = self.rng.randrange(3)
        if choice == 0:
            fields["14"] = self.rng.choice(("3013", "3000", "0099", "9913"))
        elif choice == 1:
            del fields["2"], fields["14"]
            fields["35"] = self.rng.choice(
                (
                    f"{self.who.pan}D3013101",  # month 13
                    f"{self.who.pan}3012101",  # no separator
                    "1234D3012101",  # short PAN
                    f"{self.who.pan}D30",  # no service code
                    f"{self.who.pan}DD3012101",
                )
            )
        else:
            fields["2"] = self.rng.choice(("1234567890123", "0" * 19, "4" * 12 + "1"))
        fake = self.rng.randbytes(8)
        return self.frame(codec.encode(fields, mac=lambda _: fake))

    def _non_ascii(self) -> bytes:
        mti, parts = self._parts(self._fields())
        key = self.rng.choice((41, 42, 49))
        size = len(parts[key])
        parts[key] = bytes(self.rng.randrange(128, 256) for _ in range(size))
        return self.frame(assemble(mti, parts))

    def _echo(self, f60: str | None = None) -> Fields:
        self._stan = self._stan % 999_999 + 1
        return {
            "t": "0820",
            "11": f"{self._stan:06d}",
            "12": "101010",
            "13": "1123",
            "41": self.who.tid,
            "42": self.who.mid,
            "60": f60 if f60 is not None else F60(TYPE_NETWORK, "000001", NET_ECHO).encode(),
        }

    def _echo_mutated(self) -> bytes:
        """An echo test (no MAC by design, so it reaches the host's processing) with fields
        it does not expect: card data, amounts, references."""
        fields = self._echo()
        extra = {
            "2": self.who.pan,
            "3": "000000",
            "4": "000000000100",
            "14": "3013",
            "35": f"{self.who.pan}D3013101",
            "37": "000000000001",
            "48": "0" * 62,
            "52": self.rng.randbytes(8).hex().upper(),
            "61": "0000010000011123",
            "63": "01 ",
        }
        for key in self.rng.sample(sorted(extra), self.rng.randint(1, 4)):
            fields[key] = extra[key]
        return self.frame(codec.encode(fields))
