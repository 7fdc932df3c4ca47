"""Sending SMS codes: a small port (:class:`SmsSender`) and its default adapter.

The default, :class:`OutboxSmsSender`, sends nothing: it writes each message to the
``sms_outbox`` table, which the demo shows on the second-factor screen in place of a phone.
A store plugs in its SMS gateway's adapter instead; that one keeps nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import Engine, delete, insert, select

from smartpos.security.tables import sms_outbox
from smartpos.store.orders import Clock, utc

__all__ = ["OUTBOX_KEEP", "SMS_TEXT_MAX_CHARS", "OutboxSmsSender", "SmsMessage", "SmsSender"]

SMS_TEXT_MAX_CHARS = 200
OUTBOX_KEEP = 200  # the newest messages kept in the outbox; older ones are deleted


def _now_utc() -> datetime:
    return datetime.now(UTC)


class SmsSender(Protocol):
    def send(self, phone: str, text: str) -> None:
        """Send ``text`` to ``phone``; raise if it could not be handed to the network."""


@dataclass(frozen=True)
class SmsMessage:
    id: int
    phone: str
    text: str
    at: datetime


class OutboxSmsSender:
    """An :class:`SmsSender` that writes to the ``sms_outbox`` table of ``engine``."""

    def __init__(self, engine: Engine, *, clock: Clock = _now_utc) -> None:
        self.engine = engine
        self.clock = clock

    def send(self, phone: str, text: str) -> None:
        if len(text) > SMS_TEXT_MAX_CHARS:
            raise ValueError(f"an SMS has at most {SMS_TEXT_MAX_CHARS} characters")
        with self.engine.begin() as conn:
            new_id = conn.execute(
                insert(sms_outbox)
                .values(phone=phone, text=text, at=self.clock())
                .returning(sms_outbox.c.id)
            ).scalar_one()
            conn.execute(delete(sms_outbox).where(sms_outbox.c.id <= new_id - OUTBOX_KEEP))

    def messages(self, limit: int = 5) -> list[SmsMessage]:
        """The newest ``limit`` messages, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(sms_outbox).order_by(sms_outbox.c.id.desc()).limit(max(0, limit))
            ).all()
        return [SmsMessage(r.id, r.phone, r.text, utc(r.at) or r.at) for r in rows]
