"""Chip cryptograms: the simulated card and the issuer agree, and nothing else passes."""

from __future__ import annotations

import hashlib

import pytest
from psec.des import adjust_key_parity, encrypt_tdes_ecb
from pyemv import ac, kd

from smartpos.cards import CardError, luhn_check_digit
from smartpos.cards.emv import (
    CID_AAC,
    CID_TC,
    TEST_IMK_AC,
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


def _option_a(imk: bytes, pan: str, psn: str) -> bytes:
    """EMV Book 2 Annex A1.4.1, written out: the rightmost 16 digits of PAN ‖ PSN."""
    data_a = bytes.fromhex((pan + psn)[-16:].zfill(16))
    return adjust_key_parity(encrypt_tdes_ecb(imk, data_a + bytes(b ^ 0xFF for b in data_a)))


def _option_b(imk: bytes, pan: str, psn: str) -> bytes:
    """EMV Book 2 Annex A1.4.2, written out: for a PAN of more than 16 digits, the first 16
    decimal digits of SHA-1(PAN ‖ PSN) (hex letters a–f as 0–5 if there are fewer)."""
    if len(pan) <= 16:
        return _option_a(imk, pan, psn)
    digits = pan + psn
    digest = hashlib.sha1(bytes.fromhex(digits.zfill(len(digits) + len(digits) % 2))).hexdigest()
    decimal = [d for d in digest if d.isdigit()]
    decimal += [str("abcdef".index(d)) for d in digest if d in "abcdef"]
    data_a = bytes.fromhex("".join(decimal[:16]))
    return adjust_key_parity(encrypt_tdes_ecb(imk, data_a + bytes(b ^ 0xFF for b in data_a)))


def test_option_b_as_written_gives_pyemvs_published_keys() -> None:
    """The written-out derivation above against the vectors pyemv publishes for option B
    (its documentation, issuer key 0123456789ABCDEFFEDCBA9876543210)."""
    imk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    assert _option_b(imk, "12345678901234567", "01").hex().upper() == (
        "AD406D7F6D7570916D75E5DCAB8CF737"
    )
    assert _option_b(imk, "99012345678901234", "45").hex().upper() == (
        "985EC4FD3EDF6162E31AF1C7D0543416"
    )
    assert _option_a(imk, "99012345678901234", "45").hex().upper() == (
        "67F8292358083E5EA7AB7FDA58D53B6B"
    )


@pytest.mark.parametrize(
    ("pan", "option"),
    [
        (PAN, "A"),  # 16 digits: option A (option B is option A here)
        ("621234000000000001" + luhn_check_digit("621234000000000001"), "B"),  # 19 digits
    ],
)
def test_the_chip_key_is_derived_by_option_a_up_to_16_digits_and_option_b_beyond(
    pan: str, option: str
) -> None:
    """EMV Book 2 Annex A1.4: option A only for PANs of up to 16 digits, option B for
    longer ones. The card's ARQC is recomputed from the ICC master key that option gives
    (common session key from the ATC, EMV padding) — and the other option's key does not
    give it for a 19-digit PAN."""
    chip = SimulatedChip(pan, "01")
    tags = chip.generate_arqc(TerminalData(2500, unpredictable=bytes.fromhex("0A0B0C0D")), atc=7)
    # The data objects the cryptogram covers, in their order (§6.7).
    order = ("9F02", "9F03", "9F1A", "95", "5F2A", "9A", "9C", "9F37", "82", "9F36", "9F10")
    covered = b"".join(tags[t] for t in order)

    def arqc(icc_mk: bytes) -> bytes:
        session = kd.derive_common_sk(icc_mk, tags["9F36"] + bytes(6))
        return ac.generate_ac(session, covered, ac.PaddingType.EMV, 8)

    by_a, by_b = _option_a(TEST_IMK_AC, pan, "01"), _option_b(TEST_IMK_AC, pan, "01")
    assert tags["9F26"] == arqc(by_b if option == "B" else by_a)
    assert (by_a == by_b) == (option == "A")
    if option == "B":
        assert tags["9F26"] != arqc(by_a)
    assert verify_arqc(read_icc_data(_f55(tags)), pan, "01")  # the issuer's check agrees
