"""The simulated card reader (its chip cards and their counters, kept private and without a
PAN) and the keyboard-wedge magstripe reader."""

from __future__ import annotations

import asyncio
import json
import re
import stat
import threading
from pathlib import Path

import pytest

from smartpos.cards.emv import SimulatedChip, TerminalData, arpc_tag91, read_icc_data, verify_arqc
from smartpos.cards.pan import PanTokenizer
from smartpos.cards.tlv import decode_tlv, encode_tlv
from smartpos.devices.cardreader import SimulatedCardReader, WedgeCardReader, default_state_path
from smartpos.devices.counters import ATC_MAX, CardCounters
from smartpos.devices.ports import (
    CardReader,
    CardReadError,
    ChipError,
    DeviceStateError,
    NoCardError,
    NoChipError,
    UseChipError,
)
from smartpos.devices.wedge import KeyQueue
from smartpos.protocol.messages import (
    ENTRY_CHIP,
    ENTRY_CONTACTLESS,
    ENTRY_FALLBACK,
    ENTRY_MANUAL,
    ENTRY_SWIPE,
)
from tests.devices.cards import CHIP_PAN, EXPIRY, PAN, track1, track2

CHIP_TRACK2 = track2(pan=CHIP_PAN, service_code="201")
TERMINAL = TerminalData(1234, date="260315", unpredictable=bytes.fromhex("0A1B2C3D"))


def state(tmp_path: Path) -> Path:
    return default_state_path(tmp_path / "home")


def atc_of(icc: dict[str, bytes]) -> int:
    return int.from_bytes(icc["9F36"], "big")


async def insert_and_arqc(reader: SimulatedCardReader, card: str = CHIP_TRACK2) -> dict[str, bytes]:
    reader.insert(card)
    await reader.read_card(1.0)
    return await reader.generate_ac(TERMINAL)


def test_an_inserted_card_gives_the_simulated_chips_arqc_and_the_issuer_accepts_it(
    tmp_path: Path,
) -> None:
    reader = SimulatedCardReader(state(tmp_path))

    async def go() -> dict[str, bytes]:
        reader.insert(CHIP_TRACK2)
        card = await reader.read_card(1.0)
        assert (card.pan, card.entry, card.track2) == (CHIP_PAN, ENTRY_CHIP, CHIP_TRACK2)
        assert reader.psn == "01"
        return await reader.generate_ac(TERMINAL)

    icc = asyncio.run(go())
    # Exactly what the engine computed itself (same objects, same order: field 55's bytes).
    expected = SimulatedChip(CHIP_PAN, "01").generate_arqc(TERMINAL, 1)
    assert list(icc.items()) == list(expected.items())
    assert verify_arqc(read_icc_data(encode_tlv(icc).hex()), CHIP_PAN, "01")


def test_each_generate_ac_steps_the_cards_counter_from_1(tmp_path: Path) -> None:
    reader = SimulatedCardReader(state(tmp_path))

    async def go() -> list[int]:
        return [atc_of(await insert_and_arqc(reader)) for _ in range(3)]

    assert asyncio.run(go()) == [1, 2, 3]
    assert reader.counters.atc(CHIP_PAN) == 3
    assert reader.counters.atc(PAN) == 0  # another card keeps its own


def test_the_counter_survives_a_new_reader_and_the_file_is_private_without_a_pan(
    tmp_path: Path,
) -> None:
    path = state(tmp_path)
    asyncio.run(insert_and_arqc(SimulatedCardReader(path)))
    asyncio.run(insert_and_arqc(SimulatedCardReader(path), CHIP_PAN))  # by PAN: same card
    again = asyncio.run(insert_and_arqc(SimulatedCardReader(path)))
    assert atc_of(again) == 3

    for made in (path, path.with_name(path.name + ".key"), path.with_name(path.name + ".lock")):
        assert stat.S_IMODE(made.stat().st_mode) == 0o600, made
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
    text = path.read_text()
    assert CHIP_PAN not in text and CHIP_PAN[-4:] + "=" not in text
    assert not re.search(r"[0-9]{13,}", text)
    assert json.loads(text)["counters"] == {json.loads(text)["counters"].popitem()[0]: 3}


def test_with_the_terminals_token_key_its_chip_counters_carry_over(tmp_path: Path) -> None:
    key = bytes(range(32))
    token = PanTokenizer(key).token(CHIP_PAN)  # chip_counters.pan_token
    reader = SimulatedCardReader(state(tmp_path), token_key=key)
    assert reader.counters.import_counters({token: 41}) == 1
    assert reader.counters.import_counters({token: 7}) == 0  # never back
    assert atc_of(asyncio.run(insert_and_arqc(reader))) == 42
    assert not state(tmp_path).with_name(state(tmp_path).name + ".key").exists()
    with pytest.raises(DeviceStateError, match="nothing was imported"):
        reader.counters.import_counters({CHIP_PAN: 1})  # a PAN is no token
    assert reader.counters.atc(CHIP_PAN) == 42


def test_a_used_up_counter_refuses_the_card_and_changes_nothing(tmp_path: Path) -> None:
    key = bytes(range(32))
    reader = SimulatedCardReader(state(tmp_path), token_key=key)
    # The old table could hold 65536: the terminal stepped past the end before refusing.
    reader.counters.import_counters({PanTokenizer(key).token(CHIP_PAN): ATC_MAX + 1})
    before = state(tmp_path).read_bytes()
    with pytest.raises(ChipError, match="ask for another card"):
        asyncio.run(insert_and_arqc(reader))
    assert state(tmp_path).read_bytes() == before
    assert reader.counters.atc(CHIP_PAN) == ATC_MAX


def test_a_damaged_state_file_stops_the_reader_instead_of_starting_afresh(tmp_path: Path) -> None:
    path = state(tmp_path)
    asyncio.run(insert_and_arqc(SimulatedCardReader(path)))
    path.write_text('{"format": 1, "counters": {"abc": "x"}}')
    with pytest.raises(DeviceStateError, match="damaged") as caught:
        asyncio.run(insert_and_arqc(SimulatedCardReader(path)))
    assert "restore it from a backup" in str(caught.value)
    assert path.read_text() == '{"format": 1, "counters": {"abc": "x"}}'


def test_counters_stepped_from_two_threads_never_repeat(tmp_path: Path) -> None:
    path = state(tmp_path)
    CardCounters(path).next_atc(PAN)  # the key file exists before the race
    seen: list[int] = []

    def step() -> None:
        counters = CardCounters(path)  # each its own instance, as two processes would
        seen.extend(counters.next_atc(PAN) for _ in range(20))

    threads = [threading.Thread(target=step) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == list(range(2, 62))


def test_the_second_generate_ac_gives_a_tc_for_the_issuers_answer_else_an_aac(
    tmp_path: Path,
) -> None:
    reader = SimulatedCardReader(state(tmp_path))

    async def go() -> tuple[dict[str, bytes], dict[str, bytes], dict[str, bytes]]:
        icc = await insert_and_arqc(reader)
        data = read_icc_data(encode_tlv(icc).hex())
        tag91 = decode_tlv(arpc_tag91(data, CHIP_PAN, "01", approved=True))["91"]
        tc = await reader.complete(icc, tag91, approved=True)
        forged = await reader.complete(icc, bytes(8), approved=True)
        declined = await reader.complete(icc, tag91, approved=False)
        return tc, forged, declined

    tc, forged, declined = asyncio.run(go())
    assert (tc["9F27"], forged["9F27"], declined["9F27"]) == (b"\x40", b"\x00", b"\x00")
    assert verify_arqc(read_icc_data(encode_tlv(tc).hex()), CHIP_PAN, "01")


def test_a_tapped_card_gives_an_arqc_but_has_left_before_the_second(tmp_path: Path) -> None:
    reader = SimulatedCardReader(state(tmp_path))

    async def go() -> None:
        reader.tap(CHIP_PAN)
        card = await reader.read_card(1.0)
        assert card.entry == ENTRY_CONTACTLESS
        icc = await reader.generate_ac(TERMINAL)
        assert atc_of(icc) == 1
        with pytest.raises(NoChipError, match="insert the chip card"):
            await reader.complete(icc, None, approved=True)

    asyncio.run(go())


def test_swiped_and_keyed_cards_have_no_chip_to_ask(tmp_path: Path) -> None:
    reader = SimulatedCardReader(state(tmp_path))

    async def go() -> None:
        reader.swipe(f"%{track1()}?;{track2()}?\r")
        card = await reader.read_card(1.0)
        assert (card.pan, card.entry, reader.psn) == (PAN, ENTRY_SWIPE, None)
        with pytest.raises(NoChipError, match="insert the chip card"):
            await reader.generate_ac(TERMINAL)
        reader.key_in(PAN, "12/30")
        keyed = await reader.read_card(1.0)
        assert (keyed.entry, keyed.expiry, keyed.track2) == (ENTRY_MANUAL, EXPIRY, None)

    asyncio.run(go())
    assert not state(tmp_path).exists()  # no counter was touched


def test_a_chip_that_fails_leads_to_a_fallback_swipe(tmp_path: Path) -> None:
    reader = SimulatedCardReader(state(tmp_path))

    async def go() -> None:
        reader.insert(CHIP_TRACK2, chip_fails=True)
        with pytest.raises(ChipError, match="swipe it if its chip still cannot be read"):
            await reader.read_card(1.0)
        reader.swipe(f";{CHIP_TRACK2}?\r")
        with pytest.raises(UseChipError, match="insert it or tap it"):
            await reader.read_card(1.0)
        reader.swipe(f";{CHIP_TRACK2}?\r")
        card = await reader.read_card(1.0, fallback=True)
        assert (card.entry, card.chip_card) == (ENTRY_FALLBACK, True)

    asyncio.run(go())


def test_bad_cards_are_refused_and_leave_the_reader_empty(tmp_path: Path) -> None:
    reader = SimulatedCardReader(state(tmp_path))

    async def go() -> None:
        await insert_and_arqc(reader)
        reader.swipe(f";{PAN}={EXPIRY}1010000\r")  # cut off
        with pytest.raises(CardReadError, match="swipe the card again"):
            await reader.read_card(1.0)
        assert reader.psn is None
        with pytest.raises(NoChipError):
            await reader.generate_ac(TERMINAL)
        reader.key_in(PAN[:-1] + "0")
        with pytest.raises(CardReadError, match="key it in again"):
            await reader.read_card(1.0)
        reader.insert("62123400000000A1")
        with pytest.raises(ChipError, match="present it again"):
            await reader.read_card(1.0)

    asyncio.run(go())
    assert reader.counters.atc(CHIP_PAN) == 1


def test_no_card_in_time_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(NoCardError, match="swipe, insert or tap the card"):
        asyncio.run(SimulatedCardReader(state(tmp_path)).read_card(0.05))


def test_a_waiting_reader_takes_the_card_presented_later(tmp_path: Path) -> None:
    reader = SimulatedCardReader(state(tmp_path))

    async def go() -> str:
        waiting = asyncio.create_task(reader.read_card(2.0))
        await asyncio.sleep(0.01)
        reader.tap(PAN)
        return (await waiting).pan

    assert asyncio.run(go()) == PAN


def test_the_reader_repr_masks_the_card(tmp_path: Path) -> None:
    reader = SimulatedCardReader(state(tmp_path))
    asyncio.run(insert_and_arqc(reader))
    assert CHIP_PAN not in repr(reader) and CHIP_PAN[-4:] in repr(reader)
    reader.release()
    assert repr(reader) == "SimulatedCardReader(no card)"


def test_the_wedge_reader_reads_swipes_and_passes_typing_on() -> None:
    typed: list[str] = []

    async def go() -> None:
        keys = KeyQueue()
        reader = WedgeCardReader(keys, on_typed=typed.append, max_gap_ms=20)
        keys.put("1", 0.0)
        keys.put_text(f"%{track1()}?\r\n;{track2()}?\r\n", start_ms=1_000, gap_ms=2)
        card = await reader.read_card(1.0)
        assert (card.pan, card.entry, card.track2, reader.psn) == (PAN, ENTRY_SWIPE, track2(), None)
        keys.put_text(f";{PAN[:8]}", start_ms=5_000, gap_ms=2)  # pulled through half-way
        with pytest.raises(CardReadError, match=r"cut off\): swipe the card again"):
            await reader.read_card(1.0)
        with pytest.raises(NoChipError):
            await reader.generate_ac(TERMINAL)
        with pytest.raises(NoCardError):
            await reader.read_card(0.05)

    asyncio.run(go())
    assert typed == ["1"]


def test_both_readers_are_the_port(tmp_path: Path) -> None:
    assert isinstance(SimulatedCardReader(state(tmp_path)), CardReader)
    assert isinstance(WedgeCardReader(KeyQueue()), CardReader)
