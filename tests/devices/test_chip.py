"""The EMV conversation (SELECT PPSE → SELECT AID → GET PROCESSING OPTIONS → READ RECORD →
GENERATE AC) against the APDU-level simulated card, and the PC/SC adapter through a stand-in
for pyscard: the ARQC is one the sandbox issuer accepts, the same as the simulated chip's."""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from smartpos.cards.emv import SimulatedChip, TerminalData, arpc_tag91, read_icc_data, verify_arqc
from smartpos.cards.tlv import decode_tlv, encode_tlv
from smartpos.devices.chip import ChipCardReader, EmvSession, command, dol_data
from smartpos.devices.counters import ATC_MAX, CardCounters
from smartpos.devices.pcsc import INSTALL_HINT, PcscCardReader, pcsc_readers
from smartpos.devices.ports import (
    CardReader,
    ChipDeclinedError,
    ChipError,
    DeviceUnavailableError,
    NoCardError,
    NoChipError,
)
from smartpos.devices.simcard import SimulatedApduCard
from smartpos.protocol.messages import ENTRY_CHIP, ENTRY_CONTACTLESS
from tests.devices.cards import CHIP_PAN, EXPIRY, track2

CHIP_TRACK2 = track2(pan=CHIP_PAN, service_code="201")
TERMINAL = TerminalData(2000, date="260315", unpredictable=bytes.fromhex("11223344"))


def sw(answer: bytes) -> str:
    return answer[-2:].hex().upper()


class Wrapped:
    """A transport in front of the simulated card that can rewrite what passes."""

    def __init__(
        self,
        card: SimulatedApduCard,
        answer: Callable[[bytes, bytes], bytes] = lambda apdu, ans: ans,
    ) -> None:
        self.card = card
        self.answer = answer
        self.sent: list[bytes] = []

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        return self.answer(apdu, self.card.transmit(apdu))

    def close(self) -> None:
        self.card.close()


def reader_for(transport: Any, *, contactless: bool = False) -> ChipCardReader:
    return ChipCardReader(lambda timeout_s: transport, contactless=contactless)


async def read_and_arqc(reader: ChipCardReader) -> dict[str, bytes]:
    await reader.read_card(1.0)
    return await reader.generate_ac(TERMINAL)


def test_the_conversation_reads_the_card_and_its_arqc_is_the_issuers_to_accept() -> None:
    card = SimulatedApduCard(CHIP_TRACK2)
    reader = reader_for(card)

    async def go() -> tuple[Any, dict[str, bytes]]:
        read = await reader.read_card(1.0)
        return read, await reader.generate_ac(TERMINAL)

    read, icc = asyncio.run(go())
    assert (read.pan, read.expiry, read.track2, read.entry) == (
        CHIP_PAN,
        EXPIRY,
        CHIP_TRACK2,
        ENTRY_CHIP,
    )
    assert reader.psn == "01"
    assert card.commands == [
        "select",
        "select",
        "gpo",
        "read_record",
        "read_record",
        "generate_ac",
    ]
    # The same data objects, in the same order, as the sandbox's simulated chip gives the
    # engine today: field 55 does not change with the reader.
    assert list(icc.items()) == list(
        SimulatedChip(CHIP_PAN, "01").generate_arqc(TERMINAL, 1).items()
    )
    assert verify_arqc(read_icc_data(encode_tlv(icc).hex()), CHIP_PAN, "01")


def test_the_second_generate_ac_gives_a_tc_for_the_issuers_answer() -> None:
    reader = reader_for(SimulatedApduCard(CHIP_TRACK2))

    async def go() -> tuple[dict[str, bytes], dict[str, bytes]]:
        icc = await read_and_arqc(reader)
        tag91 = decode_tlv(arpc_tag91(read_icc_data(encode_tlv(icc).hex()), CHIP_PAN, "01", True))
        return icc, await reader.complete(icc, tag91["91"], approved=True)

    icc, tc = asyncio.run(go())
    assert tc["9F27"] == b"\x40"
    expected = SimulatedChip(CHIP_PAN, "01").complete(
        icc,
        decode_tlv(arpc_tag91(read_icc_data(encode_tlv(icc).hex()), CHIP_PAN, "01", True))["91"],
        True,
    )
    assert list(tc.items()) == list(expected.items())
    assert verify_arqc(read_icc_data(encode_tlv(tc).hex()), CHIP_PAN, "01")


@pytest.mark.parametrize(("tag91", "approved"), [(bytes(8), True), (None, True), ("issuer", False)])
def test_a_forged_or_missing_issuer_answer_or_a_decline_gives_an_aac(
    tag91: bytes | str | None, approved: bool
) -> None:
    reader = reader_for(SimulatedApduCard(CHIP_TRACK2))

    async def go() -> dict[str, bytes]:
        icc = await read_and_arqc(reader)
        answer = tag91
        if answer == "issuer":
            answer = decode_tlv(
                arpc_tag91(read_icc_data(encode_tlv(icc).hex()), CHIP_PAN, "01", True)
            )["91"]
        assert not isinstance(answer, str)
        return await reader.complete(icc, answer, approved=approved)

    assert asyncio.run(go())["9F27"] == b"\x00"


def test_the_cards_counter_steps_per_transaction_and_survives_the_session(tmp_path: Path) -> None:
    counters = CardCounters(tmp_path / "cards.json")

    def one_sale() -> int:
        reader = reader_for(SimulatedApduCard(CHIP_TRACK2, counters=counters))
        icc = asyncio.run(read_and_arqc(reader))
        reader.release()
        return int.from_bytes(icc["9F36"], "big")

    assert [one_sale(), one_sale(), one_sale()] == [1, 2, 3]
    assert CardCounters(tmp_path / "cards.json").atc(CHIP_PAN) == 3


def test_a_card_keeps_one_counter_whichever_simulated_reader_reads_it(tmp_path: Path) -> None:
    from smartpos.devices.cardreader import SimulatedCardReader

    path = tmp_path / "cards.json"
    simple = SimulatedCardReader(path)
    simple.insert(CHIP_TRACK2)
    asyncio.run(simple.read_card(1.0))
    assert asyncio.run(simple.generate_ac(TERMINAL))["9F36"] == b"\x00\x01"
    apdu = SimulatedApduCard(CHIP_TRACK2, counters=simple.counters)
    assert asyncio.run(read_and_arqc(reader_for(apdu)))["9F36"] == b"\x00\x02"


def test_a_used_up_card_will_not_start_a_transaction(tmp_path: Path) -> None:
    card = SimulatedApduCard(CHIP_TRACK2, atc=ATC_MAX)
    with pytest.raises(ChipError, match="refused GET PROCESSING OPTIONS \\(status 6985\\)"):
        asyncio.run(reader_for(card).read_card(1.0))


def test_a_card_without_a_directory_is_found_by_the_terminals_aid_list() -> None:
    def no_ppse(apdu: bytes, answer: bytes) -> bytes:
        return bytes.fromhex("6A82") if b"2PAY.SYS.DDF01" in apdu else answer

    transport = Wrapped(SimulatedApduCard(CHIP_TRACK2), no_ppse)
    icc = asyncio.run(read_and_arqc(reader_for(transport)))
    assert icc["84"] == bytes.fromhex("A000000333010101")
    # The terminal tried its list in order: UnionPay debit is first and the card's.
    assert transport.sent[1] == command(0x00, 0xA4, 0x04, 0x00, bytes.fromhex("A000000333010101"))


def test_t0_chaining_get_response_and_wrong_le_are_followed() -> None:
    class T0:
        """A T=0 card: answers 61xx and hands its data to GET RESPONSE; wants Le exact."""

        def __init__(self) -> None:
            self.card = SimulatedApduCard(CHIP_TRACK2)
            self.pending = b""
            self.wrong_le_once = True

        def transmit(self, apdu: bytes) -> bytes:
            if apdu[1] == 0xC0:
                data, self.pending = self.pending, b""
                return data
            if apdu[1] == 0xB2 and self.wrong_le_once:
                self.wrong_le_once = False
                return bytes([0x6C, 0x20])
            answer = self.card.transmit(apdu)
            if len(answer) > 2:
                self.pending = answer
                return bytes([0x61, len(answer) - 2])
            return answer

        def close(self) -> None:
            self.card.close()

    icc = asyncio.run(read_and_arqc(reader_for(T0())))
    assert verify_arqc(read_icc_data(encode_tlv(icc).hex()), CHIP_PAN, "01")


def test_a_card_pulled_out_mid_conversation_is_a_chip_error_and_the_reader_forgets_it() -> None:
    card = SimulatedApduCard(CHIP_TRACK2)
    reader = reader_for(card)

    async def go() -> None:
        await reader.read_card(1.0)
        card.removed = True
        with pytest.raises(
            ChipError, match=r"stopped answering \(OSError\): insert the card again"
        ):
            await reader.generate_ac(TERMINAL)

    asyncio.run(go())


def test_a_card_that_declines_by_itself_is_a_chip_declined_error() -> None:
    def aac(apdu: bytes, answer: bytes) -> bytes:
        if apdu[1] != 0xAE:
            return answer
        objects = decode_tlv(answer[:-2])
        objects["9F27"] = b"\x00"
        return (
            bytes.fromhex("77")
            + bytes([len(encode_tlv(objects))])
            + encode_tlv(objects)
            + answer[-2:]
        )

    with pytest.raises(ChipDeclinedError, match="declined the transaction itself"):
        asyncio.run(read_and_arqc(reader_for(Wrapped(SimulatedApduCard(CHIP_TRACK2), aac))))


def test_a_second_cryptogram_under_another_counter_is_refused() -> None:
    reader = reader_for(SimulatedApduCard(CHIP_TRACK2))

    async def go() -> None:
        icc = await read_and_arqc(reader)
        with pytest.raises(ChipError, match="changed its transaction counter"):
            await reader.complete({**icc, "9F36": b"\x00\x09"}, None, approved=True)

    asyncio.run(go())


@pytest.mark.parametrize(
    "answer",
    [
        bytes.fromhex("6F05840332"),  # a truncated template
        bytes.fromhex("6F"),  # a tag and nothing more
        bytes.fromhex("6F8433"),  # a length of length past the end
    ],
)
def test_malformed_answers_are_chip_errors(answer: bytes) -> None:
    def broken(apdu: bytes, real: bytes) -> bytes:
        return answer + b"\x90\x00"

    with pytest.raises(ChipError, match="insert the card again"):
        asyncio.run(reader_for(Wrapped(SimulatedApduCard(CHIP_TRACK2), broken)).read_card(1.0))


def test_the_simulated_card_answers_out_of_order_and_bad_commands_as_a_card_does() -> None:
    card = SimulatedApduCard(CHIP_TRACK2)
    gac = command(0x80, 0xAE, 0x80, 0x00, bytes(29))
    assert sw(card.transmit(gac)) == "6985"  # before GET PROCESSING OPTIONS
    assert (
        sw(card.transmit(command(0x00, 0xA4, 0x04, 0x00, bytes.fromhex("A0000000031010"))))
        == "6A82"
    )
    assert sw(card.transmit(command(0x00, 0xB0, 0x00, 0x00))) == "6D00"
    assert sw(card.transmit(command(0x90, 0xA4, 0x04, 0x00, b"x"))) == "6E00"
    assert sw(card.transmit(bytes.fromhex("00A4040009A0"))) == "6700"  # Lc says 9, 1 given
    select = command(0x00, 0xA4, 0x04, 0x00, bytes.fromhex("A000000333010101"))
    assert sw(card.transmit(select)) == "9000"
    gpo = command(0x80, 0xA8, 0x00, 0x00, bytes.fromhex("8300"))
    assert sw(card.transmit(gpo)) == "9000"
    assert sw(card.transmit(gpo)) == "6985"  # one transaction per selection
    assert sw(card.transmit(command(0x00, 0xB2, 0x03, 0x0C))) == "6A83"
    assert sw(card.transmit(command(0x80, 0xAE, 0x80, 0x00, bytes(28)))) == "6700"
    assert sw(card.transmit(command(0x80, 0xAE, 0x00, 0x00, bytes(29)))) == "6985"  # no AAC first
    assert sw(card.transmit(gac)) == "9000"
    assert sw(card.transmit(gac)) == "6985"  # the second asks for a TC or an AAC
    assert sw(card.transmit(command(0x80, 0xAE, 0x40, 0x00, bytes(10)))) == "9000"
    assert sw(card.transmit(command(0x80, 0xAE, 0x40, 0x00, bytes(10)))) == "6985"  # done


def test_dol_values_are_padded_and_cut_as_emv_says() -> None:
    dol = bytes.fromhex("9F020695059F37025F2A02")
    data = dol_data(
        dol, {"9F02": bytes.fromhex("1234"), "95": b"\x01", "9F37": bytes.fromhex("AABBCC")}
    )
    # numeric 9F02 padded left, 95 padded right, 9F37 cut right, unknown 5F2A zeros
    assert data == bytes.fromhex("0000000012340100000000AABB0000")


def test_a_session_without_a_read_has_no_chip_to_ask() -> None:
    with pytest.raises(NoChipError):
        EmvSession(SimulatedApduCard(CHIP_TRACK2)).generate_ac(TERMINAL)


def test_a_tapped_card_is_read_as_contactless_and_gone_before_the_second_ac() -> None:
    reader = reader_for(SimulatedApduCard(CHIP_TRACK2), contactless=True)

    async def go() -> None:
        card = await reader.read_card(1.0)
        assert card.entry == ENTRY_CONTACTLESS
        icc = await reader.generate_ac(TERMINAL)
        with pytest.raises(NoChipError, match="tapped card"):
            await reader.complete(icc, None, approved=True)

    asyncio.run(go())


def test_no_card_in_time_is_no_card_error() -> None:
    def never(timeout_s: float | None) -> Any:
        raise TimeoutError

    with pytest.raises(NoCardError, match="insert or tap the card"):
        asyncio.run(ChipCardReader(never).read_card(0.01))
    assert isinstance(ChipCardReader(never), CardReader)


def test_the_wait_for_a_card_goes_on_in_slices_a_given_up_sale_can_stop() -> None:
    slices: list[float | None] = []
    card = SimulatedApduCard(CHIP_TRACK2)

    def open_card(timeout_s: float | None) -> Any:
        slices.append(timeout_s)
        if len(slices) < 3:
            raise TimeoutError
        return card

    read = asyncio.run(ChipCardReader(open_card).read_card(None))
    assert read.pan == CHIP_PAN
    assert len(slices) == 3 and all(t is not None and 0 < t <= 1.0 for t in slices)


# -- PC/SC -------------------------------------------------------------------------------


def test_without_pyscard_the_module_imports_and_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [m for m in sys.modules if m == "smartcard" or m.startswith("smartcard.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "smartcard", None)  # import smartcard now fails
    with pytest.raises(
        DeviceUnavailableError, match=INSTALL_HINT.replace("[", r"\[").replace("]", r"\]")
    ):
        PcscCardReader()
    with pytest.raises(DeviceUnavailableError, match="pcscd"):
        pcsc_readers()
    assert INSTALL_HINT == "pip install 'smartpos[pcsc]'"


class _Timeout(Exception):
    pass


def fake_pyscard(monkeypatch: pytest.MonkeyPatch, card: SimulatedApduCard | None) -> list[Any]:
    """pyscard's surface as smartpos uses it: CardRequest(...).waitforcard() → a service
    whose connection connects and transmits lists of ints, answering (data, sw1, sw2)."""
    requests: list[Any] = []

    class Connection:
        def connect(self) -> None:
            pass

        def transmit(self, apdu: list[int]) -> tuple[list[int], int, int]:
            assert card is not None
            answer = card.transmit(bytes(apdu))
            return list(answer[:-2]), answer[-2], answer[-1]

        def disconnect(self) -> None:
            assert card is not None
            card.close()

    class CardRequest:
        def __init__(self, **kwargs: Any) -> None:
            requests.append(kwargs)

        def waitforcard(self) -> Any:
            if card is None:
                raise _Timeout
            return types.SimpleNamespace(connection=Connection())

    modules = {
        "smartcard": types.ModuleType("smartcard"),
        "smartcard.CardRequest": types.SimpleNamespace(CardRequest=CardRequest),
        "smartcard.CardType": types.SimpleNamespace(AnyCardType=lambda: "any"),
        "smartcard.Exceptions": types.SimpleNamespace(
            CardRequestTimeoutException=_Timeout,
            CardRequestException=RuntimeError,
            CardConnectionException=OSError,
        ),
        "smartcard.System": types.SimpleNamespace(readers=lambda: ["ACS ACR39U 00 00"]),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return requests


def test_the_pcsc_reader_runs_the_same_conversation_through_pyscard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    card = SimulatedApduCard(CHIP_TRACK2)
    requests = fake_pyscard(monkeypatch, card)
    reader = PcscCardReader("ACR39U")
    icc = asyncio.run(read_and_arqc(reader))
    assert verify_arqc(read_icc_data(encode_tlv(icc).hex()), CHIP_PAN, "01")
    assert [(r["cardType"], r["readers"]) for r in requests] == [("any", ["ACS ACR39U 00 00"])]
    assert 0 < requests[0]["timeout"] <= 1.0
    assert pcsc_readers() == ["ACS ACR39U 00 00"]
    reader.release()
    assert card.commands[-1] == "generate_ac"


def test_the_pcsc_reader_times_out_and_knows_its_readers(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_pyscard(monkeypatch, None)
    with pytest.raises(NoCardError):
        asyncio.run(PcscCardReader().read_card(0.01))
    with pytest.raises(DeviceUnavailableError, match="no PC/SC reader named like 'Omnikey'"):
        asyncio.run(PcscCardReader("Omnikey").read_card(0.01))
