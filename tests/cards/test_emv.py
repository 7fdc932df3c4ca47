"""Chip cryptograms: the simulated card and the issuer agree, and nothing else passes."""

from __future__ import annotations

import pytest

from smartpos.cards import CardError
from smartpos.cards.emv import (
    CID_AAC,
    CID_TC,
    SimulatedChip,
    TerminalData,
    arpc_tag91,
    read_icc_data,
    sandbox_application,
    verify_arqc,
)
from smartpos.cards.tlv import decode_tlv, encode_tlv

PAN = "6212340000000001"


def _f55(tags: dict[str, bytes]) -> str:
    return encode_tlv(tags).hex()


def test_arqc_and_arpc_round_trip() -> None:
    chip = SimulatedChip(PAN, "01")
    tags = chip.generate_arqc(TerminalData(1234, unpredictable=b"\x01\x02\x03\x04"), atc=3)
    data = read_icc_data(_f55(tags))
    assert (data.atc, data.amount_minor) == (3, 1234)
    assert verify_arqc(data, PAN, "01")
    assert not verify_arqc(data, PAN, "02")  # another PAN sequence number: another card
    tag91 = decode_tlv(arpc_tag91(data, PAN, "01", approved=True))["91"]
    assert chip.check_arpc(tags, tag91)
    assert not chip.check_arpc(tags, tag91[:4] + bytes(4))  # CSU altered
    assert not chip.check_arpc(tags, bytes(4) + tag91[4:])  # ARPC forged
    assert not chip.check_arpc(tags, tag91[:7])


def test_second_generate_ac_gives_a_tc_only_for_its_issuers_approval() -> None:
    chip = SimulatedChip(PAN, "01")
    tags = chip.generate_arqc(TerminalData(1234, unpredictable=b"\x05\x06\x07\x08"), atc=4)
    data = read_icc_data(_f55(tags))
    approved = decode_tlv(arpc_tag91(data, PAN, "01", approved=True))["91"]
    tc = chip.complete(tags, approved, approved=True)
    assert tc["9F27"] == CID_TC and tc["9F26"] != tags["9F26"]
    # The issuer can check the certificate later (clearing): it is this card's.
    assert verify_arqc(read_icc_data(_f55(tc)), PAN, "01")
    assert not verify_arqc(read_icc_data(_f55(tc)), "6258000000000006", "01")
    # Anything but the issuer's own approval: the card declines (AAC).
    declined = decode_tlv(arpc_tag91(data, PAN, "01", approved=False))["91"]
    for tag91, host_approved in (
        (approved[:4] + bytes(4), True),  # CSU altered
        (None, True),  # no tag 91 in the answer
        (declined, False),
    ):
        aac = chip.complete(tags, tag91, approved=host_approved)
        assert aac["9F27"] == CID_AAC and aac["9F26"] not in (tc["9F26"], tags["9F26"])


def test_sandbox_chip_applications() -> None:
    assert sandbox_application(PAN) == ("A000000333010101", "UnionPay Debit")
    assert sandbox_application("6258000000000006") == ("A000000333010102", "UnionPay Credit")
    assert sandbox_application("4761730000000003") == ("A0000000031010", "Visa Credit")
    chip = SimulatedChip(PAN, "01")
    tags = chip.generate_arqc(TerminalData(100), atc=1)
    assert tags["84"] == bytes.fromhex("A000000333010101")
    assert read_icc_data(_f55(tags)).atc == 1  # the host reads past the extra tag


def test_every_covered_tag_changes_the_cryptogram() -> None:
    chip = SimulatedChip(PAN, "01")
    tags = chip.generate_arqc(TerminalData(500, unpredictable=bytes(4)), atc=9)
    for tag in ("9F02", "9F03", "9F1A", "95", "5F2A", "9A", "9C", "9F37", "82", "9F36", "9F10"):
        changed = dict(tags)
        value = bytearray(changed[tag])
        value[-1] ^= 0x01
        changed[tag] = bytes(value)
        assert not verify_arqc(read_icc_data(_f55(changed)), PAN, "01"), tag


@pytest.mark.parametrize(
    "f55",
    ["zz", "", _f55({"9F26": bytes(8)}), _f55({"9F27": b"\x80"})],
)
def test_incomplete_or_malformed_icc_data_is_a_card_error(f55: str) -> None:
    with pytest.raises(CardError):
        read_icc_data(f55)
