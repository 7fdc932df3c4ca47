"""A sandbox chip card at the APDU level: what a PC/SC reader would talk to, in memory.

It answers the commands of an EMV contact transaction — SELECT (the PPSE directory and its
application), GET PROCESSING OPTIONS, READ RECORD, GENERATE AC twice — with the status words
a card uses when a command is out of order or malformed, and computes its cryptograms with
the sandbox's :class:`~smartpos.cards.emv.SimulatedChip` (public test issuer keys). So
:class:`~smartpos.devices.chip.ChipCardReader` runs the very conversation it runs with a
real card, without hardware, and its ARQC is one the sandbox issuer accepts.

Its transaction counter steps at GET PROCESSING OPTIONS, as a card's does; give it
:class:`~smartpos.devices.counters.CardCounters` to keep the counter across sessions (else
it lives in the object).
"""

from __future__ import annotations

import calendar

from pyemv import tlv as pyemv_tlv

from smartpos.cards.emv import AIP, SimulatedChip, TerminalData, sandbox_application
from smartpos.cards.track import parse_track2
from smartpos.devices.chip import PPSE
from smartpos.devices.counters import ATC_MAX, CardCounters
from smartpos.devices.ports import ChipError

__all__ = ["CDOL1", "CDOL2", "SimulatedApduCard"]

# CDOL1: exactly what the ARQC covers from the terminal (TerminalData.tags()).
CDOL1 = bytes.fromhex("9F02069F03069F1A0295055F2A029A039C019F3704")
# CDOL2: the authorisation response code and the issuer authentication data (tag 91).
CDOL2 = bytes.fromhex("8A029108")
AFL = bytes.fromhex("08010200")  # SFI 1, records 1 and 2, none for offline authentication

SW_OK = b"\x90\x00"
SW_WRONG_LENGTH = b"\x67\x00"
SW_CONDITIONS = b"\x69\x85"  # conditions of use not satisfied (out of order, used up)
SW_WRONG_DATA = b"\x6a\x80"
SW_NOT_FOUND = b"\x6a\x82"
SW_RECORD_NOT_FOUND = b"\x6a\x83"
SW_WRONG_P1P2 = b"\x6a\x86"
SW_UNKNOWN_INS = b"\x6d\x00"
SW_UNKNOWN_CLA = b"\x6e\x00"


def _bcd_pan(pan: str) -> bytes:
    return bytes.fromhex(pan + "F" * (len(pan) % 2))


class SimulatedApduCard:
    """The sandbox chip card with track 2 ``track2`` (its equivalent data, tag 57), PAN
    sequence number ``psn``; ``counters``: where its ATC is kept (else in memory, from
    ``atc``)."""

    def __init__(
        self,
        track2: str,
        *,
        psn: str = "01",
        counters: CardCounters | None = None,
        atc: int = 0,
    ) -> None:
        track = parse_track2(track2)
        self._track = track
        self._psn = psn
        self._chip = SimulatedChip(track.pan, psn)
        aid, label = sandbox_application(track.pan)
        self._aid, self._label = bytes.fromhex(aid), label.encode("ascii")
        self._counters = counters
        self._atc = atc
        self.removed = False
        self.commands: list[str] = []  # the command names received, in order (for tests)
        self._reset()

    def __repr__(self) -> str:
        return f"SimulatedApduCard({self._label.decode()})"

    def _reset(self) -> None:
        self._selected = False
        self._current_atc: int | None = None  # set by GET PROCESSING OPTIONS
        self._first: dict[str, bytes] | None = None  # the first GENERATE AC's data objects
        self._done = False

    # -- the transport side --------------------------------------------------------------

    def transmit(self, apdu: bytes) -> bytes:
        """Answer one command APDU: data then SW1 SW2."""
        if self.removed:
            raise OSError("card removed")
        if len(apdu) < 4:
            return SW_WRONG_LENGTH
        cla, ins, p1, p2 = apdu[:4]
        body = apdu[4:]
        data = b""
        if len(body) > 1:
            lc = body[0]
            if len(body) not in (lc + 1, lc + 2):
                return SW_WRONG_LENGTH
            data = body[1 : 1 + lc]
        handlers = {
            (0x00, 0xA4): self._select,
            (0x80, 0xA8): self._gpo,
            (0x00, 0xB2): self._read_record,
            (0x80, 0xAE): self._generate_ac,
        }
        handler = handlers.get((cla, ins))
        if handler is None:
            return SW_UNKNOWN_CLA if cla not in (0x00, 0x80) else SW_UNKNOWN_INS
        self.commands.append(handler.__name__.lstrip("_"))
        return handler(p1, p2, data)

    def close(self) -> None:
        """The reader powered the card down: a new session starts from SELECT."""
        self._reset()

    # -- commands ------------------------------------------------------------------------

    def _select(self, p1: int, p2: int, name: bytes) -> bytes:
        if (p1, p2) != (0x04, 0x00):
            return SW_WRONG_P1P2
        if name == PPSE:
            self._reset()
            entry = {"4F": self._aid, "50": self._label, "87": b"\x01"}
            fci = {"6F": {"84": PPSE, "A5": {"BF0C": {"61": entry}}}}
            return bytes(pyemv_tlv.encode(fci)) + SW_OK
        if name and self._aid.startswith(name):
            self._reset()
            self._selected = True
            fci = {"6F": {"84": self._aid, "A5": {"50": self._label, "87": b"\x01"}}}
            return bytes(pyemv_tlv.encode(fci)) + SW_OK
        return SW_NOT_FOUND

    def _gpo(self, p1: int, p2: int, data: bytes) -> bytes:
        if (p1, p2) != (0x00, 0x00):
            return SW_WRONG_P1P2
        if not self._selected or self._current_atc is not None:
            return SW_CONDITIONS
        if data != b"\x83\x00":  # no PDOL: an empty command template
            return SW_WRONG_DATA
        atc = self._next_atc()
        if atc is None:
            return SW_CONDITIONS
        self._current_atc = atc
        return bytes(pyemv_tlv.encode({"77": {"82": AIP, "94": AFL}})) + SW_OK

    def _next_atc(self) -> int | None:
        if self._counters is not None:
            try:
                return self._counters.next_atc(self._track.pan, self._psn)
            except ChipError:  # used up: the card refuses to start
                return None
        if self._atc >= ATC_MAX:
            return None
        self._atc += 1
        return self._atc

    def _read_record(self, record: int, p2: int, data: bytes) -> bytes:
        if p2 & 0x07 != 0x04 or p2 >> 3 != 1:
            return SW_WRONG_P1P2
        if self._current_atc is None:
            return SW_CONDITIONS
        track = self._track
        if record == 1:
            equivalent = track.encode().replace("=", "D")
            objects = {"57": bytes.fromhex(equivalent + "F" * (len(equivalent) % 2))}
        elif record == 2:
            year, month = 2000 + int(track.expiry[:2]), int(track.expiry[2:])
            last_day = calendar.monthrange(year, month)[1]
            objects = {
                "5A": _bcd_pan(track.pan),
                "5F24": bytes.fromhex(f"{track.expiry}{last_day:02d}"),
                "5F34": bytes.fromhex(self._psn),
                "8C": CDOL1,
                "8D": CDOL2,
            }
        else:
            return SW_RECORD_NOT_FOUND
        return bytes(pyemv_tlv.encode({"70": objects})) + SW_OK

    def _generate_ac(self, p1: int, p2: int, data: bytes) -> bytes:
        if p2 != 0x00 or p1 not in (0x00, 0x40, 0x80):
            return SW_WRONG_P1P2
        if self._current_atc is None or self._done:
            return SW_CONDITIONS
        if self._first is None:
            # This card always goes online: an ARQC for a TC or ARQC asked; a decline asked
            # for before the issuer was (an AAC now) is not something it does.
            if p1 == 0x00:
                return SW_CONDITIONS
            if len(data) != 29:  # CDOL1's length
                return SW_WRONG_LENGTH
            tags = self._chip.generate_arqc(_terminal_data(data), self._current_atc)
            self._first = tags
        else:
            if p1 == 0x80:
                return SW_CONDITIONS  # the second GENERATE AC gives a TC or an AAC
            if len(data) != 10:  # CDOL2's length
                return SW_WRONG_LENGTH
            arc, tag_91 = data[:2], data[2:]
            approved = p1 == 0x40 and arc == b"00"
            tags = self._chip.complete(self._first, tag_91 if any(tag_91) else None, approved)
            self._done = True
        answer = {k: tags[k] for k in ("9F27", "9F36", "9F26", "9F10")}
        return bytes(pyemv_tlv.encode({"77": answer})) + SW_OK


def _terminal_data(cdol1: bytes) -> TerminalData:
    """CDOL1's data back into what the terminal fed: amount (n12), other amount, country,
    TVR, currency, date, type, unpredictable number."""
    amount = cdol1[0:6].hex()
    return TerminalData(
        int(amount) if amount.isdigit() else 0,
        currency=cdol1[19:21].hex(),
        country=cdol1[12:14].hex(),
        date=cdol1[21:24].hex(),
        txn_type=cdol1[24:25].hex(),
        tvr=cdol1[14:19],
        unpredictable=cdol1[25:29],
    )
