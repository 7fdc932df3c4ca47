"""What the cashier app stands on: the settings, the terminal service, the POS database and
its services, the devices — one object handed to every route (``smartpos.bootstrap.pos_app``
builds it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from smartpos.web.events import EventHub
from smartpos.web.pinentry import PinEntries

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from smartpos.cards.reading import CardInput
    from smartpos.config import Settings
    from smartpos.services.selftest import SelfTestReport
    from smartpos.services.terminal import TerminalService
    from smartpos.store.catalog import Catalog
    from smartpos.store.orders import Orders
    from smartpos.store.payments import Payments
    from smartpos.store.shifts import Shifts

__all__ = ["ApprovedScreen", "Pos", "PresentedCard"]


@dataclass
class PresentedCard:
    """The card the customer presented on one screen, kept in memory until the payment is
    made or cancelled (never stored: it may hold track data)."""

    card: CardInput
    entry: str  # swipe | insert | tap | keyed
    masked: str
    order_id: str

    def __repr__(self) -> str:
        return f"PresentedCard({self.masked}, {self.entry})"


@dataclass(frozen=True)
class ApprovedScreen:
    """What the approved screen of a session's last payment showed, so that the same submit
    arriving again (a double tap, a queued request, a re-posted form) answers that screen
    instead of starting on the next, empty order."""

    order_id: str
    receipt_no: str | None
    amount_minor: int
    preview: str
    auth_code: str = ""
    change_minor: int | None = None


@dataclass
class Pos:
    settings: Settings
    terminal: TerminalService
    db: Engine
    catalog: Catalog
    orders: Orders
    payments: Payments
    shifts: Shifts
    security: Any
    identity: tuple[str, str, str]  # tid, mid, merchant name
    events: EventHub = field(default_factory=EventHub)
    pins: PinEntries = field(default_factory=PinEntries)
    presented: dict[str, PresentedCard] = field(default_factory=dict)
    # Per session: the last payment's approved screen, until the next payment starts.
    approved: dict[str, ApprovedScreen] = field(default_factory=dict)
    # The last power-on self-test: card payment is offered only while it allows it.
    last_selftest: SelfTestReport | None = None
    test_cards: list[Any] = field(default_factory=list)  # the sandbox's, for the simulated reader
    # The on-screen PIN pad's keys in a new random order for each entry (the merchant's
    # choice: it defeats shoulder-surfing and smudge reading, at some cost in speed).
    pin_pad_shuffled: bool = False
    # The demo: its logins on the login screen, its SMS outbox on the second-factor screen.
    demo_logins: list[str] = field(default_factory=list)
    show_outbox: bool = False

    def start_payment(self, token: str) -> None:
        """A payment starts on this session's screen (or it logs out): the card presented,
        the PIN being entered and the last approved screen are forgotten."""
        self.presented.pop(token, None)
        self.pins.cancel(token)
        self.approved.pop(token, None)

    def sms_outbox_lines(self) -> list[str]:
        if not self.show_outbox:
            return []
        return [f"{m.phone}: {m.text}" for m in self.security.sms_outbox(limit=5)]

    @property
    def card_payments(self) -> bool:
        return self.last_selftest is None or self.last_selftest.card_payments
