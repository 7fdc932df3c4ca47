"""The per-request context passed through the host pipeline (jPOS style: participants hold
no per-transaction state; everything about one request lives here)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from smartpos.protocol.codec import Fields
from smartpos.protocol.messages import TxnType


class Decline(Exception):
    """A participant's verdict: answer with ``response_code`` and stop processing."""

    def __init__(self, response_code: str, reason: str = ""):
        super().__init__(f"{response_code} {reason}".strip())
        self.response_code = response_code
        self.reason = reason


class Unrecorded(Decline):
    """A verdict that is answered but leaves nothing behind, not even the request's identity:
    the request is not what it claims to be about (a reversal naming a trace under which the
    host holds another request), so it must not take that identity either."""


@dataclass(frozen=True, slots=True)
class TerminalKeys:
    tid: str
    mid: str
    status: str
    sealed_tmk: bytes
    sealed_tpk: bytes | None
    sealed_tak: bytes | None

    def with_working_keys(self, keys: tuple[bytes, bytes]) -> TerminalKeys:
        """This terminal after a sign-on that gave it (sealed TPK, sealed TAK)."""
        return replace(self, sealed_tpk=keys[0], sealed_tak=keys[1])


@dataclass(frozen=True, slots=True)
class CardRead:
    """A request's card data, parsed once before the writer sees it (in memory only)."""

    pan: str | None  # None: the request carries no card data (or it did not parse)
    expiry: str | None
    token: str | None
    error: str | None  # why the card data did not parse (answered 14)
    chip_card: bool = False  # track 2's service code says the card has a chip (2xx, 6xx)


@dataclass
class Context:
    fields: Fields
    kind: TxnType
    message: bytes
    terminal: TerminalKeys
    fingerprint: str = ""
    response_code: str = "96"
    response: Fields = field(default_factory=dict)
    # In memory only, for this request: never persisted or logged.
    pan: str | None = None
    card: Any = None
    original: Any = None
    status: str = "declined"
    transfer_id: str | None = None
    replayed: bool = False
    # The "no answer" test card: processed and recorded, but never answered.
    silent: bool = False
    new_keys: tuple[bytes, bytes] | None = None
    # Set by Processor.prepare (outside the writer) or on first use.
    card_read: CardRead | None = None
    # A chip card's verified ICC data and PAN sequence number: the answer carries tag 91.
    chip: Any = None
    # The card's row, read together with the request's identity (one round trip on
    # PostgreSQL); None: not read yet.
    card_row: tuple[Any] | None = None
    # Requests already stored under this TID + STAN + date, by message class (one lookup
    # serves de-duplication and the reversal tombstone check).
    siblings: dict[str, Any] = field(default_factory=dict)
