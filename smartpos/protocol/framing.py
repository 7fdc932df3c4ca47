"""Link framing: 2-byte big-endian length, 5-byte TPDU, optional 6-byte application header.

::

    +--------+--------------------------+----------------------+---------------------+
    | len(2) | TPDU: 60 DDDD SSSS (5)   | app header (0 or 6)  | ISO 8583 message    |
    +--------+--------------------------+----------------------+---------------------+

``len`` counts everything after itself. A response swaps the TPDU's destination and source
NII. Nothing here knows about field layouts: this is byte plumbing with limits.

That is the CUP convention and the default. An acquirer profile may frame otherwise —
another length prefix (4 ASCII digits, as jPOS's ASCIIChannel and many simulators), no
TPDU, another header or none — and :class:`Framing` is that profile's framing, for the
terminal and the host alike.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from enum import StrEnum

TPDU_ID = 0x60
TPDU_LEN = 5
APP_HEADER_LEN = 6
# A CUP POS message is a few hundred bytes; anything beyond this is refused unread.
MAX_FRAME_BYTES = 4096
MIN_FRAME_BYTES = TPDU_LEN + 2 + 8


class FramingError(ValueError):
    """A frame that breaks the framing rules (the connection is closed, nothing answered)."""


@dataclass(frozen=True, slots=True)
class Tpdu:
    dest_nii: int
    src_nii: int

    def encode(self) -> bytes:
        return struct.pack(">BHH", TPDU_ID, self.dest_nii, self.src_nii)

    @classmethod
    def decode(cls, data: bytes) -> Tpdu:
        if len(data) != TPDU_LEN or data[0] != TPDU_ID:
            raise FramingError(f"bad TPDU {data.hex()!r}: expected 5 bytes starting 60")
        _, dest, src = struct.unpack(">BHH", data)
        return cls(dest, src)

    def swapped(self) -> Tpdu:
        return Tpdu(self.src_nii, self.dest_nii)


@dataclass(frozen=True, slots=True)
class Frame:
    tpdu: Tpdu
    header: bytes
    message: bytes


def encode_frame(frame: Frame) -> bytes:
    body = frame.tpdu.encode() + frame.header + frame.message
    if len(body) > MAX_FRAME_BYTES:
        raise FramingError(f"frame of {len(body)} bytes exceeds {MAX_FRAME_BYTES}")
    return struct.pack(">H", len(body)) + body


def decode_body(body: bytes, header_len: int) -> Frame:
    """Split a frame body (after the length prefix) into TPDU, header and message."""
    if header_len not in (0, APP_HEADER_LEN):
        raise FramingError(f"application header must be 0 or 6 bytes, not {header_len}")
    if len(body) < MIN_FRAME_BYTES + header_len:
        raise FramingError(f"frame of {len(body)} bytes is too short")
    tpdu = Tpdu.decode(body[:TPDU_LEN])
    header = body[TPDU_LEN : TPDU_LEN + header_len]
    return Frame(tpdu, header, body[TPDU_LEN + header_len :])


async def read_body(reader: asyncio.StreamReader) -> bytes:
    """Read one frame body. Raises ``asyncio.IncompleteReadError`` when the peer closes and
    ``FramingError`` for a length outside the limits (the caller closes the connection)."""
    prefix = await reader.readexactly(2)
    (length,) = struct.unpack(">H", prefix)
    if length < MIN_FRAME_BYTES or length > MAX_FRAME_BYTES:
        raise FramingError(f"frame length {length} outside {MIN_FRAME_BYTES}..{MAX_FRAME_BYTES}")
    return await reader.readexactly(length)


class LengthPrefix(StrEnum):
    """How a frame states its length: the channels jPOS (and the simulators built on it) use."""

    BINARY_2 = "binary-2"  # 2 bytes big-endian (NACChannel, PostChannel): the CUP convention
    BCD_2 = "bcd-2"  # 4 BCD digits in 2 bytes (BCDChannel)
    ASCII_4 = "ascii-4"  # 4 ASCII digits (ASCIIChannel)
    BINARY_4 = "binary-4"  # 4 bytes big-endian (RawChannel)

    @property
    def width(self) -> int:
        return 4 if self in (LengthPrefix.ASCII_4, LengthPrefix.BINARY_4) else 2

    def pack(self, length: int) -> bytes:
        if self == LengthPrefix.BINARY_2:
            return struct.pack(">H", length)
        if self == LengthPrefix.BINARY_4:
            return struct.pack(">I", length)
        if self == LengthPrefix.BCD_2:
            return bytes.fromhex(f"{length:04d}")
        return f"{length:04d}".encode("ascii")

    def unpack(self, prefix: bytes) -> int:
        """The length ``prefix`` states; ``FramingError`` if it is not a length at all."""
        if self in (LengthPrefix.BINARY_2, LengthPrefix.BINARY_4):
            return int.from_bytes(prefix, "big")
        digits = prefix.hex() if self == LengthPrefix.BCD_2 else prefix.decode("latin-1")
        if not (digits.isascii() and digits.isdigit()):
            raise FramingError(f"length prefix {prefix.hex()!r} is not 4 {self.value} digits")
        return int(digits)


@dataclass(frozen=True, slots=True)
class FrameParts:
    """A frame body taken apart: the TPDU (None when the profile sends none), the
    application header (empty when none) and the ISO 8583 message."""

    tpdu: Tpdu | None
    header: bytes
    message: bytes


@dataclass(frozen=True, slots=True)
class Framing:
    """One profile's framing, for both ends of the link.

    The terminal sends ``request(message)``; the host reads a body with ``read_body``, takes
    it apart with ``split`` and answers with ``answer(parts, message)`` — the TPDU's NIIs
    swapped, the header copied — and the terminal takes the answer apart with ``split``.
    With the default settings the bytes are exactly those of :func:`encode_frame` and
    :func:`decode_body`."""

    length_prefix: LengthPrefix = LengthPrefix.BINARY_2
    tpdu: Tpdu | None = Tpdu(0x0001, 0x0000)  # the terminal's requests: to host, from terminal
    header: bytes = b""
    max_frame_bytes: int = MAX_FRAME_BYTES

    @property
    def prefix_len(self) -> int:
        return self.length_prefix.width

    @property
    def min_body_bytes(self) -> int:
        """The shortest body worth reading: a TPDU, an MTI and a bitmap (10 bytes in their
        shortest, binary form); ``split`` wants the header besides."""
        return (TPDU_LEN if self.tpdu is not None else 0) + 2 + 8

    def _frame(self, tpdu: Tpdu | None, header: bytes, message: bytes) -> bytes:
        body = (tpdu.encode() if tpdu is not None else b"") + header + message
        if len(body) > self.max_frame_bytes:
            raise FramingError(f"frame of {len(body)} bytes exceeds {self.max_frame_bytes}")
        return self.length_prefix.pack(len(body)) + body

    def request(self, message: bytes) -> bytes:
        """The terminal's frame for ``message``, length prefix included."""
        return self._frame(self.tpdu, self.header, message)

    def answer(self, request: FrameParts, message: bytes) -> bytes:
        """The host's frame answering ``request``: its TPDU swapped, its header copied."""
        tpdu = request.tpdu.swapped() if request.tpdu is not None else None
        return self._frame(tpdu, request.header, message)

    def split(self, body: bytes) -> FrameParts:
        """Take a frame body (after the length prefix) apart. A TPDU must start ``60``; its
        NIIs and the header's bytes are whatever the peer sent (the answer echoes them)."""
        if len(body) < self.min_body_bytes + len(self.header):
            raise FramingError(f"frame of {len(body)} bytes is too short")
        idx = 0
        tpdu = None
        if self.tpdu is not None:
            tpdu = Tpdu.decode(body[:TPDU_LEN])
            idx = TPDU_LEN
        header = body[idx : idx + len(self.header)]
        return FrameParts(tpdu, header, body[idx + len(self.header) :])

    async def read_body(self, reader: asyncio.StreamReader) -> bytes:
        """Read one frame body. Raises ``asyncio.IncompleteReadError`` when the peer closes
        and ``FramingError`` for a length outside the limits (the caller closes the link)."""
        length = self.length_prefix.unpack(await reader.readexactly(self.prefix_len))
        if length < self.min_body_bytes or length > self.max_frame_bytes:
            raise FramingError(
                f"frame length {length} outside {self.min_body_bytes}..{self.max_frame_bytes}"
            )
        return await reader.readexactly(length)
