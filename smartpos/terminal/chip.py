"""The terminal's side of a chip (or contactless) card: the first GENERATE AC before the
request (its ARQC into field 55, the PAN sequence number into 23) and the second after an
approval (TC or AAC), through the card reader port. The card's counter is the card's: a
simulated reader keeps it in its own state file (smartpos.devices.counters), and counters an
earlier version kept in the terminal's database move over at the first chip card."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from smartpos.cards import CardError
from smartpos.cards.emv import TerminalData
from smartpos.cards.reading import CardInput
from smartpos.cards.tlv import decode_tlv, encode_tlv
from smartpos.devices.ports import CardReader, DeviceError
from smartpos.protocol.codec import Fields
from smartpos.protocol.messages import (
    ENTRY_CONTACTLESS,
)
from smartpos.terminal.errors import Refusal, TerminalError

CHIP_PSN = "01"  # PAN sequence number of the sandbox's simulated chip cards

if TYPE_CHECKING:
    from smartpos.terminal.engine import Terminal


async def add_arqc(
    t: Terminal, fields: Fields, card: CardInput, amount_minor: int, txn_type: str = "00"
) -> dict[str, bytes]:
    """First GENERATE AC on the card in the reader: its next transaction counter (the
    card's own, kept by the reader), an ARQC over this terminal's data for this amount;
    its data objects go into field 55 (and the PAN sequence number into 23) and are
    returned."""
    reader = await t._reader_with(card)
    terminal_data = TerminalData(
        amount_minor,
        currency=t.ccy(),
        date=t.clock().strftime("%y%m%d"),
        txn_type=txn_type,
        unpredictable=t.unpredictable(),
    )
    try:
        icc = await reader.generate_ac(terminal_data)
    except DeviceError as exc:
        raise TerminalError(Refusal.CARD_NOT_ACCEPTED, reason=str(exc)) from None
    fields["23"] = f"0{reader.psn or CHIP_PSN}"
    fields["55"] = encode_tlv(icc).hex().upper()
    return icc


async def reader_with(t: Terminal, card: CardInput) -> CardReader:
    """The reader holding ``card`` by its chip. A simulated reader is handed the card
    here when the caller read it elsewhere (the command line's prompt, a test)."""
    # Imported here: a terminal that never reads a chip card never loads the reader.
    from smartpos.devices.cardreader import SimulatedCardReader

    reader = t.reader
    if reader is None:
        reader = t.reader = SimulatedCardReader(t._simulated_state(), token_key=t._token_key)
    if isinstance(reader, SimulatedCardReader) and not t._counters_carried:
        # Counters an earlier version kept in the terminal's database move to the
        # reader's cards (never backwards), then leave the database.
        old = t.journal.chip_counters()
        if old:
            await asyncio.to_thread(reader.counters.import_counters, old)
            t.journal.forget_chip_counters(old)
        t._counters_carried = True
    if isinstance(reader, SimulatedCardReader) and reader.card != card:
        present = reader.tap if card.entry == ENTRY_CONTACTLESS else reader.insert
        present(card.track2 or card.pan)
        try:
            await reader.read_card(timeout_s=1)
        except DeviceError as exc:
            raise TerminalError(Refusal.CARD_NOT_ACCEPTED, reason=str(exc)) from None
    return reader


def simulated_state(t: Terminal) -> Path:
    """Where a simulated reader built by the terminal keeps its cards' counters: in the
    data directory, else beside the terminal's SQLite database."""
    from smartpos.devices.cardreader import default_state_path

    if t._home is not None:
        return default_state_path(t._home)
    database = t.engine.url.database if t.engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        raise TerminalError(
            Refusal.CARD_NOT_ACCEPTED, reason="no card reader is attached for chip cards"
        )
    return default_state_path(Path(database).parent)


async def second_generate_ac(
    t: Terminal, icc: dict[str, bytes], card: CardInput, resp: Fields
) -> dict[str, bytes]:
    """The card's verdict on an approval: TC if tag 91 is its issuer's answer, else AAC
    (a card that cannot give one — pulled out — refuses: AAC)."""
    try:
        tag91: bytes | None = decode_tlv(bytes.fromhex(resp.get("55", "")))["91"]
    except (ValueError, KeyError, CardError):
        tag91 = None
    reader = await t._reader_with(card)
    try:
        return await reader.complete(icc, tag91, approved=True)
    except DeviceError:
        return {**icc, "9F27": b"\x00"}
