"""Transaction types and the CUP-style sub-field layouts (60, 61, 48, 54) on top of the codec.

Identification of a request (DESIGN §3.1): terminal ID (41) + STAN (11) + local date (13)
within a message class (MTI with the repeat bit cleared).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from smartpos.protocol.codec import Fields, MessageError


class TxnType(StrEnum):
    SIGN_ON = "sign_on"
    ECHO = "echo"
    BALANCE = "balance"
    PURCHASE = "purchase"
    VOID = "void"
    REFUND = "refund"
    REVERSAL = "reversal"
    SETTLEMENT = "settlement"
    BATCH_UPLOAD = "batch_upload"
    TC_ADVICE = "tc_advice"


# Processing codes (field 3).
PROC_PURCHASE = "000000"
PROC_VOID = "200000"
PROC_REFUND = "200000"
PROC_BALANCE = "310000"

# Message type codes (60.1).
TYPE_NETWORK = "00"
TYPE_BALANCE = "01"
TYPE_PURCHASE = "22"
TYPE_VOID = "23"
TYPE_REFUND = "25"

# Network management codes (60.3).
NET_SIGN_ON = "003"  # double-length TDES working keys
NET_ECHO = "301"
NET_SETTLE = "201"
NET_BATCH_UPLOAD = "201"
NET_BATCH_UPLOAD_END = "202"
NET_TC_ADVICE = "203"  # an IC card's transaction certificate for an approved chip sale
NET_NONE = "000"

# POS entry modes (field 22): two digits of PAN entry + one digit of PIN capability.
ENTRY_MANUAL = "01"
ENTRY_SWIPE = "02"
ENTRY_CHIP = "05"
ENTRY_CONTACTLESS = "07"
# The chip could not be read, so a chip card was swiped (ISO 8583 / Visa convention).
ENTRY_FALLBACK = "80"
ENTRY_NAMES = {
    ENTRY_MANUAL: "manual",
    ENTRY_SWIPE: "swipe",
    ENTRY_CHIP: "chip",
    ENTRY_CONTACTLESS: "contactless",
    ENTRY_FALLBACK: "fallback",
}


def entry_mode(pan_entry: str, pin_entered: bool) -> str:
    return pan_entry + ("1" if pin_entered else "2")


def request_class(mti: str) -> str:
    """The MTI with the repeat flag cleared: 0401 → 0400, 0221 → 0220."""
    return mti[:3] + ("0" if mti[3] == "1" else mti[3])


COUNTER_MODULUS = 999_999  # traces and batch numbers run 000001..999999, then 000001 again


def trace_after(number: str, last: str) -> bool:
    """True if trace (or batch) ``number`` comes after ``last`` in a terminal's counter,
    allowing for the wrap from 999999 to 000001 (at most half the cycle ahead counts as
    after)."""
    if not (number.isdigit() and last.isdigit()):
        return False
    ahead = (int(number) - int(last)) % COUNTER_MODULUS
    return 0 < ahead < COUNTER_MODULUS // 2


# ISO 8583 message function (the MTI's third digit) of what gets an answer: a request (0)
# is answered by a request response (1), an advice (2) by an advice response (3). Every other
# function (a response, an acknowledgement, 4-9) is never answered.
_ANSWER_FUNCTION = {"0": "1", "2": "3"}


def response_mti(mti: str) -> str:
    """0200 → 0210, 0220 → 0230, 0401 → 0410. Raises MessageError for an MTI that has no
    response (not 4 digits, or not a request or advice: 0210, 0290, 0810…)."""
    if len(mti) != 4 or not mti.isdigit() or mti[2] not in _ANSWER_FUNCTION:
        raise MessageError(f"MTI {mti!r} is not a request or advice: it has no response", "t")
    return mti[:2] + _ANSWER_FUNCTION[mti[2]] + "0"


@dataclass(frozen=True, slots=True)
class F60:
    type_code: str
    batch_no: str
    net_code: str = NET_NONE

    def encode(self) -> str:
        return f"{self.type_code}{self.batch_no}{self.net_code}"

    @classmethod
    def decode(cls, text: str) -> F60:
        if len(text) < 8 or not text.isdigit():
            raise MessageError("60 must hold 60.1 (2) + 60.2 batch (6) digits", "60")
        return cls(text[:2], text[2:8], text[8:11] or NET_NONE)


@dataclass(frozen=True, slots=True)
class F61:
    """Original transaction reference: batch, trace (STAN) and local date (MMDD)."""

    batch_no: str
    stan: str
    date_mmdd: str = "0000"

    def encode(self) -> str:
        return f"{self.batch_no}{self.stan}{self.date_mmdd}"

    @classmethod
    def decode(cls, text: str) -> F61:
        if len(text) < 12 or not text.isdigit():
            raise MessageError("61 must hold original batch (6) + trace (6) digits", "61")
        return cls(text[:6], text[6:12], text[12:16] or "0000")


# What field 48's settlement totals can hold per card group (§6.5): counts n3, amounts n12.
TOTALS_COUNT_MAX = 999
TOTALS_AMOUNT_MAX_MINOR = 999_999_999_999


@dataclass(frozen=True, slots=True)
class TotalsGroup:
    """One group of settlement totals: sales (debits) and refunds (credits)."""

    debit_amount_minor: int = 0
    debit_count: int = 0
    credit_amount_minor: int = 0
    credit_count: int = 0

    def fits(self) -> bool:
        """Whether every figure fits its digits in field 48."""
        return (
            0 <= self.debit_count <= TOTALS_COUNT_MAX
            and 0 <= self.credit_count <= TOTALS_COUNT_MAX
            and 0 <= self.debit_amount_minor <= TOTALS_AMOUNT_MAX_MINOR
            and 0 <= self.credit_amount_minor <= TOTALS_AMOUNT_MAX_MINOR
        )

    def encode(self, result: str = "0", *, saturate: bool = False) -> str:
        """The group's 31 digits. A figure too large for its digits is an error — unless
        ``saturate``, when it is sent as the largest the digits hold (a host's totals of a
        batch no terminal of ours could have filled: they cannot match, and the batch is
        then uploaded and settled transaction by transaction)."""
        if not self.fits():
            if not saturate:
                raise MessageError(
                    f"settlement totals do not fit field 48 (counts ≤ {TOTALS_COUNT_MAX}, "
                    f"amounts ≤ {TOTALS_AMOUNT_MAX_MINOR}): {self}",
                    "48",
                )
            return TotalsGroup(
                min(self.debit_amount_minor, TOTALS_AMOUNT_MAX_MINOR),
                min(self.debit_count, TOTALS_COUNT_MAX),
                min(self.credit_amount_minor, TOTALS_AMOUNT_MAX_MINOR),
                min(self.credit_count, TOTALS_COUNT_MAX),
            ).encode(result)
        return (
            f"{self.debit_amount_minor:012d}{self.debit_count:03d}"
            f"{self.credit_amount_minor:012d}{self.credit_count:03d}{result}"
        )


class SettleResult(StrEnum):
    REQUEST = "0"
    BALANCED = "1"
    NOT_BALANCED = "2"
    ERROR = "3"


@dataclass(frozen=True, slots=True)
class SettlementTotals:
    """Field 48 of 0500/0510: domestic (UnionPay) group then foreign-card group, 31 digits
    each (amount 12, count 3, amount 12, count 3, result 1)."""

    domestic: TotalsGroup
    foreign: TotalsGroup

    def encode(self, result: SettleResult = SettleResult.REQUEST, *, saturate: bool = False) -> str:
        return self.domestic.encode(result, saturate=saturate) + self.foreign.encode(
            result, saturate=saturate
        )

    def fits(self) -> bool:
        return self.domestic.fits() and self.foreign.fits()

    @classmethod
    def of(cls, entries: Iterable[tuple[bool, bool, int]]) -> SettlementTotals:
        """The totals of a batch's approved sales and refunds, each given as (domestic card,
        is a refund, amount). The terminal (from its journal) and the host (from its
        request records) both count with this, so the two sides cannot count differently."""
        acc = {True: [0, 0, 0, 0], False: [0, 0, 0, 0]}
        for domestic, refund, amount_minor in entries:
            group = acc[bool(domestic)]
            group[2 if refund else 0] += amount_minor
            group[3 if refund else 1] += 1
        return cls(TotalsGroup(*acc[True]), TotalsGroup(*acc[False]))

    @classmethod
    def decode(cls, text: str) -> tuple[SettlementTotals, SettleResult]:
        if len(text) != 62 or not text.isdigit():
            raise MessageError("48 must hold 62 digits of settlement totals", "48")
        groups = []
        for part in (text[:31], text[31:]):
            groups.append(
                TotalsGroup(int(part[0:12]), int(part[12:15]), int(part[15:27]), int(part[27:30]))
            )
        try:
            result = SettleResult(text[30])
        except ValueError:
            raise MessageError("settlement result must be 0-3", "48") from None
        return cls(groups[0], groups[1]), result


def balance_f54(amount_minor: int, currency_numeric: str) -> str:
    """CUP field 54: account type (10), amount type (01 ledger), currency, sign, 12 digits."""
    sign = "C" if amount_minor >= 0 else "D"
    return f"1001{currency_numeric}{sign}{abs(amount_minor):012d}"


def parse_f54(text: str) -> int:
    if len(text) != 20 or text[7] not in "CD" or not text[8:].isdigit():
        raise MessageError("54 must be 20 characters of balance data", "54")
    value = int(text[8:])
    return value if text[7] == "C" else -value


def classify(fields: Fields) -> TxnType:
    """The transaction a request asks for, from MTI, processing code and 60.1/60.3."""
    mti = request_class(fields.get("t", ""))
    proc = fields.get("3", "")
    f60 = F60.decode(fields["60"]) if "60" in fields else None
    if mti == "0800":
        return TxnType.SIGN_ON
    if mti == "0820":
        return TxnType.ECHO
    if mti == "0400":
        return TxnType.REVERSAL
    if mti == "0500":
        return TxnType.SETTLEMENT
    if mti == "0320" and f60 is not None:
        if f60.net_code == NET_TC_ADVICE:
            return TxnType.TC_ADVICE
        if f60.net_code in (NET_BATCH_UPLOAD, NET_BATCH_UPLOAD_END):
            return TxnType.BATCH_UPLOAD
    if mti == "0200" and f60 is not None:
        if proc == PROC_BALANCE and f60.type_code == TYPE_BALANCE:
            return TxnType.BALANCE
        if proc == PROC_PURCHASE and f60.type_code == TYPE_PURCHASE:
            return TxnType.PURCHASE
        if proc == PROC_VOID and f60.type_code == TYPE_VOID:
            return TxnType.VOID
    if mti == "0220" and f60 is not None and proc == PROC_REFUND and f60.type_code == TYPE_REFUND:
        return TxnType.REFUND
    raise MessageError(
        f"unsupported transaction: MTI {fields.get('t')} processing code {proc}",
        "t",
        response_code="12",
    )


def require(fields: Fields, *names: str) -> None:
    """Raise a format error (30) naming the first missing mandatory field."""
    for name in names:
        if not fields.get(name):
            raise MessageError("mandatory field missing", name)
