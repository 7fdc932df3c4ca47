"""The sandbox's test-card catalogue (documented in docs/test-cards.md).

Every card is Luhn-valid; the PAN is built from a readable prefix plus the check digit.
"""

from __future__ import annotations

from dataclasses import dataclass

from smartpos.cards import luhn_check_digit


@dataclass(frozen=True, slots=True)
class TestCard:
    __test__ = False  # not a pytest class

    body: str  # PAN without its check digit
    label: str
    outcome: str  # what a sale with it gives
    card_kind: str = "debit"
    status: str = "active"
    balance_minor: int = 10_000_000  # 100,000.00
    pin: str = "123456"
    expiry: str = "3012"
    service_code: str = "101"
    pin_required: bool = True

    @property
    def pan(self) -> str:
        return self.body + luhn_check_digit(self.body)

    @property
    def track2(self) -> str:
        return f"{self.pan}={self.expiry}{self.service_code}0000000000"


CATALOGUE: tuple[TestCard, ...] = (
    TestCard("621234000000000", "UnionPay debit", "approved (00)"),
    TestCard(
        "625800000000000",
        "UnionPay credit",
        "approved (00)",
        card_kind="credit",
        balance_minor=5_000_000,
    ),
    TestCard(
        "476173000000000",
        "Visa credit",
        "approved (00), no PIN needed",
        card_kind="credit",
        balance_minor=5_000_000,
        pin_required=False,
    ),
    TestCard(
        "545454000000000",
        "Mastercard credit",
        "approved (00), no PIN needed",
        card_kind="credit",
        balance_minor=5_000_000,
        pin_required=False,
    ),
    TestCard("222100000000000", "Mastercard 2-series debit", "approved (00)"),
    TestCard(
        "621234000000020",
        "UnionPay debit, chip card (service code 201)",
        "swiped: use the chip (45); inserted, tapped or fallback swipe: approved (00)",
        service_code="201",
    ),
    TestCard(
        "621234000000051",
        "UnionPay debit, balance 10.00",
        "insufficient funds (51) above 10.00",
        balance_minor=1_000,
    ),
    TestCard(
        "621234000000055", "UnionPay debit for PIN tries", "wrong PIN (55); 75 after 3 wrong tries"
    ),
    TestCard(
        "621234000000054", "UnionPay debit, expired 01/20", "expired card (54)", expiry="2001"
    ),
    TestCard("621234000000041", "UnionPay debit, reported lost", "lost card (41)", status="lost"),
    TestCard(
        "621234000000043", "UnionPay debit, reported stolen", "stolen card (43)", status="stolen"
    ),
    TestCard(
        "621234000000005",
        "UnionPay debit, issuer refuses",
        "do not honor (05)",
        status="do_not_honor",
    ),
    TestCard(
        "621234000000062", "UnionPay debit, restricted", "restricted card (62)", status="restricted"
    ),
    TestCard(
        "621234000000098",
        "UnionPay debit, issuer silent",
        "no answer: the terminal times out and reverses",
        status="no_answer",
    ),
)


def by_label_prefix(prefix: str) -> TestCard:
    for card in CATALOGUE:
        if card.label.startswith(prefix):
            return card
    raise KeyError(prefix)
