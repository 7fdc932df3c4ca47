"""Link framing: 2-byte big-endian length, 5-byte TPDU, optional 6-byte application header.

::

    +--------+--------------------------+----------------------+---------------------+
    | len(2) | TPDU: 60 DDDD SSSS (5)   | app header (0 or 6)  | ISO 8583 message    |
    +--------+--------------------------+----------------------+---------------------+

``len`` counts everything after itself. A response swaps the TPDU's destination and source
NII. Nothing here knows about field layouts: this is byte plumbing with limits.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

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
