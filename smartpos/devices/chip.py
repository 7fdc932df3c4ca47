"""The EMV conversation with a chip card, at the APDU level, over any transport.

SELECT PPSE (the directory of the card's applications; the terminal's own AID list when the
card has none) → SELECT the application → GET PROCESSING OPTIONS (the card's AIP and AFL) →
READ RECORD for each record the AFL names (track 2 equivalent data, PAN, expiry, PAN
sequence number, CDOL1 and CDOL2) → GENERATE AC (ARQC) at the sale → second GENERATE AC
(TC or AAC) once the issuer answered. EMV Book 3 is the reference; the card's answers are
BER-TLV, decoded with pyemv (:mod:`smartpos.cards.tlv`).

The conversation knows nothing of how the APDUs travel: a :class:`ApduTransport` carries
them — a PC/SC reader (:mod:`smartpos.devices.pcsc`) or the simulated card of
:mod:`smartpos.devices.simcard`, so the same code runs in tests and against a real card.
:class:`ChipCardReader` is the card reader port on top of it.

What it gives the terminal is what the sandbox's simulated chip gives
(:class:`~smartpos.cards.emv.SimulatedChip`): the same data objects, in the same order, for
field 55.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from smartpos.cards.emv import TerminalData
from smartpos.cards.pan import CardError, mask_pan
from smartpos.cards.reading import CardInput
from smartpos.cards.tlv import decode_tlv
from smartpos.devices.ports import ChipDeclinedError, ChipError, NoCardError, NoChipError

__all__ = [
    "KNOWN_AIDS",
    "ApduTransport",
    "ChipApplication",
    "ChipCardReader",
    "EmvSession",
    "command",
]

PPSE = b"2PAY.SYS.DDF01"  # the proximity payment system environment (directory)
# The applications the terminal accepts, tried in turn when the card has no directory.
KNOWN_AIDS = tuple(
    bytes.fromhex(aid)
    for aid in (
        "A000000333010101",  # UnionPay debit
        "A000000333010102",  # UnionPay credit
        "A000000333010103",  # UnionPay quasi-credit
        "A0000000031010",  # Visa
        "A0000000041010",  # Mastercard
        "A00000002501",  # American Express
        "A0000000651010",  # JCB
        "A0000001523010",  # Discover
    )
)
SW_OK = 0x9000
_SW_MORE = 0x61  # T=0: that many more bytes wait; fetch them with GET RESPONSE
_SW_WRONG_LE = 0x6C  # T=0: send the command again with this Le
_SW_NOT_FOUND = (0x6A82, 0x6A81)  # file or application not found, function not supported
_CHAINING_MAX = 16  # GET RESPONSE rounds for one answer
_RECORDS_MAX = 32  # records the AFL may name
_CARD_POLL_S = 1.0  # one slice of waiting for a card
_P1_ARQC, _P1_TC, _P1_AAC = 0x80, 0x40, 0x00
_CID_TYPE = 0xC0  # bits of the cryptogram information data that say which cryptogram
_ARC_APPROVED, _ARC_DECLINED = b"00", b"05"  # authorisation response code (8A), an2
_AGAIN = "insert the card again, or swipe it if its chip still cannot be read"
# Tags whose DOL value is numeric (n): padded and cut on the left, the rest on the right.
_NUMERIC_TAGS = frozenset({"9F02", "9F03", "9F1A", "5F2A", "9A", "9C", "9F21", "5F36"})


class ApduTransport(Protocol):
    """Carries one command APDU to the card and returns its answer: data then SW1 SW2."""

    def transmit(self, apdu: bytes) -> bytes: ...

    def close(self) -> None: ...


def command(cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = 0) -> bytes:
    """A short command APDU (ISO 7816-4): header, Lc and data if any, Le if not None."""
    if len(data) > 255:
        raise ValueError("a short APDU carries at most 255 bytes")
    apdu = bytes([cla, ins, p1, p2])
    if data:
        apdu += bytes([len(data)]) + data
    if le is not None:
        apdu += bytes([le])
    return apdu


def _tags(data: bytes) -> Iterator[tuple[bytes, int]]:
    """(tag, length) pairs of a data object list (DOL), e.g. CDOL1."""
    i = 0
    while i < len(data):
        start = i
        i += 1
        if data[start] & 0x1F == 0x1F:  # the tag goes on while bit 8 is set
            while i < len(data) and data[i] & 0x80:
                i += 1
            i += 1
        if i >= len(data):
            raise ChipError(f"the chip gave a malformed data object list: {_AGAIN}")
        yield data[start:i], data[i]
        i += 1


def _items(data: bytes) -> Iterator[tuple[str, bytes]]:
    """The top-level (tag, value) items of BER-TLV ``data``, repeats kept (a directory lists
    one 61 entry per application, which a dict would fold into one)."""
    i = 0
    while i < len(data):
        start = i
        i += 1
        if data[start] & 0x1F == 0x1F:
            while i < len(data) and data[i] & 0x80:
                i += 1
            i += 1
        tag = data[start:i].hex().upper()
        if i >= len(data):
            raise ChipError(f"the chip gave a malformed answer: {_AGAIN}")
        length = data[i]
        i += 1
        if length & 0x80:
            size = length & 0x7F
            if size == 0 or size > 2 or i + size > len(data):
                raise ChipError(f"the chip gave a malformed answer: {_AGAIN}")
            length = int.from_bytes(data[i : i + size], "big")
            i += size
        if i + length > len(data):
            raise ChipError(f"the chip gave a truncated answer: {_AGAIN}")
        yield tag, data[i : i + length]
        i += length


def _flat(data: bytes) -> dict[str, bytes]:
    try:
        return decode_tlv(data)
    except CardError:
        raise ChipError(f"the chip gave a malformed answer: {_AGAIN}") from None


def dol_data(dol: bytes, values: dict[str, bytes]) -> bytes:
    """The data a card's DOL asks for, from ``values`` (EMV Book 3 5.4: numeric values are
    padded with leading zeros and cut on the left, others padded and cut on the right; a
    value the terminal does not have is zeros)."""
    out = b""
    for tag_bytes, length in _tags(dol):
        tag = tag_bytes.hex().upper()
        value = values.get(tag, b"")
        if tag in _NUMERIC_TAGS:
            value = value[-length:] if len(value) >= length else value.rjust(length, b"\0")
        else:
            value = value[:length].ljust(length, b"\0")
        out += value
    return out


@dataclass(frozen=True, repr=False)
class ChipApplication:
    """What the card's application gave while it was read: its AID and label, AIP, and the
    records' data objects (track 2 equivalent, PAN, expiry, PSN, CDOL1, CDOL2…)."""

    aid: bytes
    label: str
    aip: bytes
    records: dict[str, bytes]

    def __repr__(self) -> str:
        return f"ChipApplication({self.aid.hex().upper()}, {self.label!r})"

    @property
    def psn(self) -> str:
        """The PAN sequence number (5F34) as two digits; 00 when the card has none."""
        value = self.records.get("5F34", b"\0")
        return value.hex()[-2:]


class EmvSession:
    """One card's conversation through ``transport``: :meth:`read`, then
    :meth:`generate_ac` and :meth:`complete`. Every failure is a ChipError telling the
    cashier what to do; nothing is kept of the card beyond the session."""

    def __init__(self, transport: ApduTransport, aids: tuple[bytes, ...] = KNOWN_AIDS) -> None:
        self._transport = transport
        self._aids = aids
        self._app: ChipApplication | None = None

    # -- APDU exchange -----------------------------------------------------------------

    def _exchange(self, apdu: bytes, what: str) -> tuple[bytes, int]:
        data = b""
        for _ in range(_CHAINING_MAX):
            raw = self._transmit(apdu)
            if len(raw) < 2:
                raise ChipError(f"the chip did not answer {what}: {_AGAIN}")
            data += raw[:-2]
            sw1, sw2 = raw[-2], raw[-1]
            if sw1 == _SW_MORE:
                apdu = command(0x00, 0xC0, 0x00, 0x00, le=sw2)  # GET RESPONSE
            elif sw1 == _SW_WRONG_LE:
                apdu = apdu[:-1] + bytes([sw2])
            else:
                return data, (sw1 << 8) | sw2
        raise ChipError(f"the chip's answer to {what} never ended: {_AGAIN}")

    def _transmit(self, apdu: bytes) -> bytes:
        try:
            return self._transport.transmit(apdu)
        except ChipError:
            raise
        except Exception as exc:  # the reader's own failure: card pulled out, reader gone
            raise ChipError(
                f"the card stopped answering ({type(exc).__name__}): {_AGAIN}"
            ) from None

    def _ok(self, apdu: bytes, what: str) -> bytes:
        data, sw = self._exchange(apdu, what)
        if sw != SW_OK:
            raise ChipError(f"the chip refused {what} (status {sw:04X}): {_AGAIN}")
        return data

    # -- reading -----------------------------------------------------------------------

    def read(self) -> ChipApplication:
        """Select the card's payment application and read its records."""
        aid, label, pdol = self._select()
        gpo = command(0x80, 0xA8, 0x00, 0x00, _dol_template(pdol))
        aip, afl = _processing_options(self._ok(gpo, "GET PROCESSING OPTIONS"))
        records: dict[str, bytes] = {}
        for sfi, record in _afl_records(afl):
            answer = self._ok(command(0x00, 0xB2, record, (sfi << 3) | 4), "READ RECORD")
            items = list(_items(answer))
            if len(items) != 1 or items[0][0] != "70":
                raise ChipError(f"the chip gave a malformed record: {_AGAIN}")
            for tag, value in _flat(items[0][1]).items():
                records.setdefault(tag, value)
        if "8C" not in records or "8D" not in records:
            raise ChipError(f"the chip's application lacks its CDOL1 or CDOL2: {_AGAIN}")
        self._app = ChipApplication(aid, label, aip, records)
        return self._app

    def _select(self) -> tuple[bytes, str, bytes]:
        data, sw = self._exchange(command(0x00, 0xA4, 0x04, 0x00, PPSE), "SELECT PPSE")
        candidates = _directory(data) if sw == SW_OK else []
        if sw != SW_OK and sw not in _SW_NOT_FOUND:
            raise ChipError(f"the chip refused SELECT PPSE (status {sw:04X}): {_AGAIN}")
        wanted = candidates or list(self._aids)
        for aid in wanted:
            if candidates and not any(aid.startswith(known) for known in self._aids):
                continue  # the card offers it, the terminal does not take it
            data, sw = self._exchange(command(0x00, 0xA4, 0x04, 0x00, aid), "SELECT")
            if sw == SW_OK:
                fci = _flat(data)
                label = fci.get("50", b"").decode("ascii", "replace")
                return fci.get("84", aid), label, fci.get("9F38", b"")
            if sw not in _SW_NOT_FOUND:
                raise ChipError(f"the chip refused SELECT (status {sw:04X}): {_AGAIN}")
        raise ChipError(
            "the chip has no payment application this terminal accepts: swipe the card, or"
            " ask for another card"
        )

    # -- the cryptograms ---------------------------------------------------------------

    def generate_ac(self, terminal: TerminalData) -> dict[str, bytes]:
        """First GENERATE AC: the card's ARQC over CDOL1 filled from ``terminal``. Returns
        the data objects for field 55, as :meth:`SimulatedChip.generate_arqc` does."""
        app = self._require_app()
        tags = terminal.tags()
        data = dol_data(app.records["8C"], {**tags, "82": app.aip})
        cid, atc, ac, iad = self._generate(_P1_ARQC, data)
        if cid & _CID_TYPE != _P1_ARQC:
            raise ChipDeclinedError(
                "the card declined the transaction itself: ask for another card or another way"
                " to pay"
            )
        return {
            **tags,
            "82": app.aip,
            "9F36": atc,
            "9F10": iad,
            "9F26": ac,
            "9F27": bytes([cid]),
            "84": app.aid,
        }

    def complete(
        self, icc: dict[str, bytes], tag_91: bytes | None, approved: bool
    ) -> dict[str, bytes]:
        """Second GENERATE AC after the issuer's answer: a TC asked for if ``approved``, an
        AAC otherwise, with the issuer authentication data ``tag_91`` (CDOL2). Returns
        ``icc`` with the card's second cryptogram (9F26, 9F27, 9F10), as
        :meth:`SimulatedChip.complete` does."""
        app = self._require_app()
        values = {**icc, "8A": _ARC_APPROVED if approved else _ARC_DECLINED}
        if tag_91 is not None:
            values["91"] = tag_91
        data = dol_data(app.records["8D"], values)
        cid, atc, ac, iad = self._generate(_P1_TC if approved else _P1_AAC, data)
        if atc != icc.get("9F36"):
            raise ChipError(f"the chip changed its transaction counter mid-sale: {_AGAIN}")
        if cid & _CID_TYPE not in (_P1_TC, _P1_AAC):
            raise ChipError(f"the chip gave no TC or AAC at the end: {_AGAIN}")
        return {**icc, "9F10": iad, "9F26": ac, "9F27": bytes([cid])}

    def _generate(self, p1: int, data: bytes) -> tuple[int, bytes, bytes, bytes]:
        answer = self._ok(command(0x80, 0xAE, p1, 0x00, data), "GENERATE AC")
        items = list(_items(answer))
        if len(items) != 1:
            raise ChipError(f"the chip gave a malformed cryptogram: {_AGAIN}")
        tag, value = items[0]
        if tag == "80":  # format 1: CID, ATC, AC, then the issuer application data
            if len(value) < 11:
                raise ChipError(f"the chip gave a malformed cryptogram: {_AGAIN}")
            return value[0], value[1:3], value[3:11], value[11:]
        if tag != "77":
            raise ChipError(f"the chip gave a malformed cryptogram: {_AGAIN}")
        found = _flat(value)
        cid, atc, ac = found.get("9F27", b""), found.get("9F36", b""), found.get("9F26", b"")
        if (len(cid), len(atc), len(ac)) != (1, 2, 8):
            raise ChipError(f"the chip gave a malformed cryptogram: {_AGAIN}")
        return cid[0], atc, ac, found.get("9F10", b"")

    def _require_app(self) -> ChipApplication:
        if self._app is None:
            raise NoChipError("the card has not been read by its chip: insert the chip card")
        return self._app

    def close(self) -> None:
        """End the session (the reader powers the card down)."""
        self._app = None
        with contextlib.suppress(Exception):  # the card is gone either way
            self._transport.close()


def _dol_template(pdol: bytes) -> bytes:
    # GET PROCESSING OPTIONS carries the PDOL's data in a command template (83). The terminal
    # knows no amount yet when it reads the card: what the PDOL asks for is zeros.
    data = dol_data(pdol, {}) if pdol else b""
    return bytes([0x83, len(data)]) + data


def _directory(fci: bytes) -> list[bytes]:
    """The AIDs a PPSE answer lists, by priority (87) then as listed."""
    found: list[tuple[int, int, bytes]] = []
    for tag, value in _items(fci):
        if tag != "6F":
            continue
        for inner_tag, inner in _items(value):
            if inner_tag != "A5":
                continue
            for dir_tag, directory in _items(inner):
                if dir_tag != "BF0C":
                    continue
                for n, (entry_tag, entry) in enumerate(_items(directory)):
                    if entry_tag == "61":
                        fields = _flat(entry)
                        if "4F" in fields:
                            priority = fields.get("87", b"\x0f")[0] & 0x0F
                            found.append((priority, n, fields["4F"]))
    return [aid for _, _, aid in sorted(found)]


def _processing_options(answer: bytes) -> tuple[bytes, bytes]:
    items = list(_items(answer))
    if len(items) == 1 and items[0][0] == "80" and len(items[0][1]) >= 2:
        return items[0][1][:2], items[0][1][2:]  # format 1: AIP then AFL
    if len(items) == 1 and items[0][0] == "77":
        found = _flat(items[0][1])
        if len(found.get("82", b"")) == 2 and "94" in found:
            return found["82"], found["94"]
    raise ChipError(f"the chip gave malformed processing options: {_AGAIN}")


def _afl_records(afl: bytes) -> list[tuple[int, int]]:
    """(SFI, record number) for every record the application file locator names."""
    if not afl or len(afl) % 4:
        raise ChipError(f"the chip gave a malformed file locator: {_AGAIN}")
    records: list[tuple[int, int]] = []
    for i in range(0, len(afl), 4):
        sfi, first, last = afl[i] >> 3, afl[i + 1], afl[i + 2]
        if not 1 <= sfi <= 30 or first == 0 or last < first:
            raise ChipError(f"the chip gave a malformed file locator: {_AGAIN}")
        records += [(sfi, r) for r in range(first, last + 1)]
    if len(records) > _RECORDS_MAX:
        raise ChipError(f"the chip names more records than a payment card has: {_AGAIN}")
    return records


def card_input(app: ChipApplication, *, tap: bool) -> CardInput:
    """The terminal's view of the card read: its track 2 equivalent data (57), or its PAN
    (5A) and expiry (5F24) when the card has no track 2 equivalent."""
    track2 = app.records.get("57")
    try:
        if track2 is not None:
            card = CardInput.parse(track2.hex().upper(), chip=not tap, tap=tap)
        else:
            pan = app.records.get("5A", b"").hex().upper().rstrip("F")
            expiry = app.records.get("5F24", b"").hex()[:4] or None
            card = CardInput.parse(pan, expiry, chip=not tap, tap=tap)
    except CardError as exc:
        raise ChipError(f"the chip gave unusable card data ({exc}): {_AGAIN}") from None
    pan_record = app.records.get("5A")
    if pan_record is not None and pan_record.hex().upper().rstrip("F") != card.pan:
        raise ChipError(f"the chip's records name two card numbers: {_AGAIN}")
    return card


class ChipCardReader:
    """The card reader port on an EMV chip reader. ``open_card(timeout_s)`` waits for a
    card and returns a transport to it (a PC/SC reader, a simulated card); raising
    TimeoutError when none came. ``contactless``: cards are tapped, not inserted."""

    def __init__(
        self,
        open_card: Callable[[float | None], ApduTransport],
        *,
        contactless: bool = False,
        aids: tuple[bytes, ...] = KNOWN_AIDS,
    ) -> None:
        self._open_card = open_card
        self._tap = contactless
        self._aids = aids
        self._session: EmvSession | None = None
        self._app: ChipApplication | None = None
        self._card: CardInput | None = None

    def __repr__(self) -> str:
        card = mask_pan(self._card.pan) if self._card is not None else "no card"
        return f"ChipCardReader({card})"

    @property
    def psn(self) -> str | None:
        return self._app.psn if self._app is not None else None

    async def read_card(
        self, timeout_s: float | None = None, *, fallback: bool = False
    ) -> CardInput:
        """Wait for a card and read it by its chip (``fallback`` does not apply: a chip
        reader has no stripe to swipe)."""
        self.release()
        try:
            transport = await self._wait_for_card(timeout_s)
        except TimeoutError:
            raise NoCardError("no card was presented: insert or tap the card") from None
        session = EmvSession(transport, self._aids)
        try:
            app = await asyncio.to_thread(session.read)
            card = card_input(app, tap=self._tap)
        except BaseException:
            session.close()
            raise
        self._session, self._app, self._card = session, app, card
        return card

    async def _wait_for_card(self, timeout_s: float | None) -> ApduTransport:
        # A reader's wait for a card cannot be cancelled from outside its thread, so it waits
        # in slices: a sale given up stops waiting within one slice.
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while True:
            left = _CARD_POLL_S if deadline is None else deadline - loop.time()
            try:
                return await asyncio.to_thread(self._open_card, max(0.0, min(_CARD_POLL_S, left)))
            except TimeoutError:
                if deadline is not None and loop.time() >= deadline:
                    raise

    async def generate_ac(self, terminal: TerminalData) -> dict[str, bytes]:
        return await asyncio.to_thread(self._require_session().generate_ac, terminal)

    async def complete(
        self, icc: dict[str, bytes], tag_91: bytes | None, approved: bool
    ) -> dict[str, bytes]:
        if self._tap:
            raise NoChipError(
                "a tapped card is no longer in the reader: insert the chip card to finish by chip"
            )
        session = self._require_session()
        return await asyncio.to_thread(session.complete, icc, tag_91, approved)

    def release(self) -> None:
        """Power the card down and forget it."""
        if self._session is not None:
            self._session.close()
        self._session = self._app = self._card = None

    def _require_session(self) -> EmvSession:
        if self._session is None:
            raise NoChipError("no chip card is in the reader: insert the chip card")
        return self._session
