"""EMV chip cryptograms for the sandbox: the card's ARQC, the issuer's check and its ARPC.

The sandbox's chip cards follow cryptogram version 18 (pyemv's ``VisaCVN18``, the EMV
common-core scheme): the ICC master key is derived from the issuer master key with the PAN and
PAN sequence number as EMV Book 2 Annex A1.4 prescribes — option A for a PAN of up to 16
digits, option B (SHA-1 based) for a longer one (pyemv's ``derive_icc_mk_b`` does both);
each transaction's session key from the ATC (common session key derivation); the ARQC is a
MAC over amount, other amount, country, TVR, currency, date, type, unpredictable number,
AIP, ATC and issuer application data; the issuer's answer is ARPC method 2 over the ARQC and
a card status update (CSU). Tag 91 (issuer authentication data) = ARPC ‖ CSU.

The sandbox issuer master keys are **public test keys** (docs/test-cards.md), as the test
cards' PINs are: anyone may personalise a simulated card with them. A production issuer
keeps them in an HSM.
"""

from __future__ import annotations

import hmac
import os
import warnings
from dataclasses import dataclass, field

from cryptography.utils import CryptographyDeprecationWarning
from psec.des import adjust_key_parity
from pyemv.cvn import VisaCVN18

from smartpos.cards.pan import Brand, CardError, brand_of
from smartpos.cards.tlv import decode_tlv, encode_tlv

# pyemv, like psec, drives two-key TDES through cryptography's deprecated path: the standard's
# keys are double-length, so the warning is not actionable per call (see keys/keys.py).
warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning, module=r"pyemv\.")

__all__ = [
    "ARQC_TAGS",
    "ChipCardData",
    "SimulatedChip",
    "TerminalData",
    "arpc_tag91",
    "read_icc_data",
    "sandbox_application",
    "verify_arqc",
]

TEST_IMK_AC = adjust_key_parity(bytes.fromhex("9E15204313F7318ACB79B90BD986AD29"))
TEST_IMK_SMI = adjust_key_parity(bytes.fromhex("4664942FE615FB02E5D57F292AA2B3B6"))
TEST_IMK_SMC = adjust_key_parity(bytes.fromhex("CE293B8CC12A977379EF256D76109492"))

AIP = bytes.fromhex("3900")  # SDA not used, cardholder verification, terminal risk management
# Issuer application data: length 6, key index 01, CVN 0x12 (18), then the card verification
# results (CVR: length 03, then bits b8-b7 = second GENERATE AC 00 AAC / 01 TC / 10 not
# requested, b6-b5 = first GENERATE AC 00 AAC / 01 TC / 10 ARQC).
IAD = bytes.fromhex("06011203A00000")  # first GENERATE AC: ARQC, second not yet requested
IAD_TC = bytes.fromhex("06011203600000")  # second GENERATE AC: TC after an ARQC
IAD_AAC = bytes.fromhex("06011203200000")  # second GENERATE AC: AAC after an ARQC
CID_ARQC = b"\x80"
CID_TC = b"\x40"
CID_AAC = b"\x00"
CSU_APPROVED = bytes.fromhex("00820000")  # issuer approved, proprietary bits zero
CSU_DECLINED = bytes.fromhex("00020000")

# Tags the terminal sends in field 55 and the issuer needs to check the ARQC.
ARQC_TAGS = (
    "9F26",  # application cryptogram (ARQC)
    "9F27",  # cryptogram information data
    "9F10",  # issuer application data
    "9F37",  # unpredictable number
    "9F36",  # application transaction counter
    "95",  # terminal verification results
    "9A",  # transaction date YYMMDD
    "9C",  # transaction type
    "9F02",  # amount, authorised (n12)
    "9F03",  # amount, other
    "5F2A",  # transaction currency code
    "82",  # application interchange profile
    "9F1A",  # terminal country code
)


# The application each sandbox chip card carries (its AID, 84, and application label, 50),
# by scheme. UnionPay's AID tells debit (…01) from credit (…02): the sandbox issues its
# UnionPay credit cards in BIN 6258 (docs/test-cards.md), every other 62 card is debit.
_APPLICATIONS: dict[Brand, tuple[str, str]] = {
    Brand.UNIONPAY: ("A000000333010101", "UnionPay Debit"),
    Brand.VISA: ("A0000000031010", "Visa Credit"),
    Brand.MASTERCARD: ("A0000000041010", "Mastercard"),
    Brand.AMEX: ("A00000002501", "American Express"),
    Brand.JCB: ("A0000000651010", "JCB"),
    Brand.DISCOVER: ("A0000001523010", "Discover"),
}
_UNIONPAY_CREDIT = ("A000000333010102", "UnionPay Credit")


def sandbox_application(pan: str) -> tuple[str, str]:
    """(AID as hex, application label) of the sandbox's simulated chip for ``pan``."""
    brand = brand_of(pan)
    if brand is Brand.UNIONPAY and pan.startswith("6258"):
        return _UNIONPAY_CREDIT
    return _APPLICATIONS.get(brand, ("A0000000000000", "Unknown"))


def _bcd(digits: str) -> bytes:
    return bytes.fromhex(digits if len(digits) % 2 == 0 else "0" + digits)


@dataclass(frozen=True)
class TerminalData:
    """What the terminal feeds the card for GENERATE AC."""

    amount_minor: int
    currency: str = "156"  # ISO 4217 numeric
    country: str = "156"  # ISO 3166 numeric
    date: str = "261123"  # YYMMDD
    txn_type: str = "00"  # 00 goods and services
    tvr: bytes = bytes(5)
    unpredictable: bytes = field(default_factory=lambda: os.urandom(4))

    def tags(self) -> dict[str, bytes]:
        return {
            "9F02": _bcd(f"{self.amount_minor:012d}"),
            "9F03": bytes(6),
            "9F1A": _bcd(self.country.zfill(4)),
            "95": self.tvr,
            "5F2A": _bcd(self.currency.zfill(4)),
            "9A": _bcd(self.date),
            "9C": _bcd(self.txn_type),
            "9F37": self.unpredictable,
        }


def _issuer(pan: str, psn: str) -> VisaCVN18:
    return VisaCVN18(TEST_IMK_AC, TEST_IMK_SMI, TEST_IMK_SMC, pan, psn)


def _ac(cvn: VisaCVN18, tags: dict[str, bytes]) -> bytes:
    return cvn.generate_ac(
        tag_9f02=tags["9F02"],
        tag_9f03=tags["9F03"],
        tag_9f1a=tags["9F1A"],
        tag_95=tags["95"],
        tag_5f2a=tags["5F2A"],
        tag_9a=tags["9A"],
        tag_9c=tags["9C"],
        tag_9f37=tags["9F37"],
        tag_82=tags["82"],
        tag_9f36=tags["9F36"],
        tag_9f10=tags["9F10"],
    )


class SimulatedChip:
    """A sandbox chip card: personalised from the public test issuer keys, it answers
    GENERATE AC with an ARQC and checks the issuer's ARPC, as the card's chip does."""

    def __init__(self, pan: str, psn: str = "01") -> None:
        self.pan, self.psn = pan, psn
        self._cvn = _issuer(pan, psn)
        self.aid = bytes.fromhex(sandbox_application(pan)[0])

    def generate_arqc(self, terminal: TerminalData, atc: int) -> dict[str, bytes]:
        """Field 55's data objects for an online authorisation at transaction counter
        ``atc`` (1..65535)."""
        if not 0 < atc < 0x10000:
            raise CardError("ATC must be 1..65535")
        tags = {**terminal.tags(), "82": AIP, "9F36": atc.to_bytes(2, "big"), "9F10": IAD}
        tags["9F26"] = _ac(self._cvn, tags)
        tags["9F27"] = CID_ARQC
        tags["84"] = self.aid  # the application the terminal selected (dedicated file name)
        return tags

    def complete(
        self, icc: dict[str, bytes], tag_91: bytes | None, approved: bool
    ) -> dict[str, bytes]:
        """The second GENERATE AC, once the issuer answered the ARQC in ``icc``: a TC
        (transaction certificate: the card accepts) if the issuer approved and its tag 91
        proves it is the card's issuer, else an AAC (the card declines). Returns the data
        objects as for field 55, with 9F27 telling which."""
        accepted = approved and tag_91 is not None and self.check_arpc(icc, tag_91)
        tags = {**icc, "9F10": IAD_TC if accepted else IAD_AAC}
        tags["9F26"] = _ac(self._cvn, tags)
        tags["9F27"] = CID_TC if accepted else CID_AAC
        return tags

    def check_arpc(self, icc: dict[str, bytes], tag_91: bytes) -> bool:
        """True if issuer authentication data ``tag_91`` answers this card's ARQC in
        ``icc`` (the second GENERATE AC's check)."""
        if len(tag_91) != 8:
            return False
        arpc, csu = tag_91[:4], tag_91[4:]
        expected = self._cvn.generate_arpc(icc["9F26"], icc["9F36"], csu)
        return hmac.compare_digest(expected, arpc)


@dataclass(frozen=True)
class ChipCardData:
    """What the issuer reads from a request's field 55."""

    tags: dict[str, bytes]
    atc: int
    amount_minor: int


def read_icc_data(f55_hex: str) -> ChipCardData:
    """Decode field 55 and check that it carries everything an ARQC check needs. Raises
    CardError for malformed or incomplete ICC data."""
    try:
        raw = bytes.fromhex(f55_hex)
    except ValueError:
        raise CardError("field 55 is not hex") from None
    tags = decode_tlv(raw)
    missing = [t for t in ARQC_TAGS if t not in tags]
    if missing:
        raise CardError(f"ICC data lacks {', '.join(missing)}")
    if len(tags["9F26"]) != 8 or len(tags["9F36"]) != 2 or len(tags["9F02"]) != 6:
        raise CardError("ICC data has a malformed cryptogram, ATC or amount")
    amount = tags["9F02"].hex()
    if not amount.isdigit():
        raise CardError("ICC amount is not BCD")
    return ChipCardData(tags, int.from_bytes(tags["9F36"], "big"), int(amount))


def verify_arqc(data: ChipCardData, pan: str, psn: str) -> bool:
    """True if the cryptogram in ``data`` (an ARQC, or a TC / AAC from the second GENERATE
    AC) was made by the chip of card ``pan``/``psn``."""
    expected = _ac(_issuer(pan, psn), data.tags)
    return hmac.compare_digest(expected, data.tags["9F26"])


def arpc_tag91(data: ChipCardData, pan: str, psn: str, approved: bool) -> bytes:
    """Field 55 of the answer: tag 91 = ARPC ‖ CSU for the card to check."""
    csu = CSU_APPROVED if approved else CSU_DECLINED
    arpc = _issuer(pan, psn).generate_arpc(data.tags["9F26"], data.tags["9F36"], csu)
    return encode_tlv({"91": arpc + csu})
