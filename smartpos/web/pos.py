"""What the cashier app stands on: the settings, the terminal service, the POS database and
the devices — one object handed to every route (``smartpos.bootstrap.pos_app`` builds it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from smartpos.web.events import EventHub

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from smartpos.config import Settings
    from smartpos.services.selftest import SelfTestReport
    from smartpos.services.terminal import TerminalService

__all__ = ["Pos"]


@dataclass
class Pos:
    settings: Settings
    terminal: TerminalService
    db: Engine
    events: EventHub = field(default_factory=EventHub)
    # The last power-on self-test: card payment is offered only while it allows it.
    last_selftest: SelfTestReport | None = None

    @property
    def card_payments(self) -> bool:
        return self.last_selftest is None or self.last_selftest.card_payments
