"""Keyboard-wedge devices (USB barcode scanners, magstripe readers): told from a person typing
by key timing, the way Odoo's barcode service does it.

A wedge "types" what it reads, much faster than a person: keys at most ``max_gap_ms``
(100 ms) apart belong to one burst; Enter or Tab ends a scan (several in a row, as with a
CR LF suffix, count as one); a configured prefix and suffix are removed. Everything else is
typing and is handed on as typed text, in order — no key is lost, including the first key of
a scan, which cannot be told from typing until the second arrives (so nothing is handed on
before its burst ends).

A burst that stops without its terminator (or configured suffix) is a *partial* scan when it
came at machine speed (on average at most ``machine_gap_ms``, 30 ms a key, as onscan.js
uses): the scanner's Enter was lost, so the code may be cut — it is reported, never guessed.
With no terminator configured (a magstripe reader, whose swipe holds line breaks), silence
ends a burst.

The key source is a :class:`KeyQueue`: whatever sees the keys (the browser's key events, the
Linux input device, a test) puts ``(char, at_ms)`` events in; timestamps come from the source
and are only compared with each other.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from smartpos.devices.handoff import Handoff

__all__ = [
    "MAX_GAP_MS",
    "Burst",
    "KeyEvent",
    "KeyQueue",
    "KeyTiming",
    "WedgeInput",
]

MAX_GAP_MS = 100.0  # Odoo's barcode service: keys of one scan are at most 100 ms apart
MACHINE_GAP_MS = 30.0  # onscan.js: a scanner types at most 30 ms a character on average
MIN_SCAN_CHARS = 3  # Odoo's minimum barcode length
TERMINATORS = "\r\n\t"  # Enter (CR or LF) or Tab ends a scan
KEY_QUEUE_LIMIT = 4096  # keys waiting unread: far more than any scan or swipe


@dataclass(frozen=True, slots=True)
class KeyEvent:
    """One key the wedge (or a person) typed: the character and when, in milliseconds."""

    char: str
    at_ms: float

    def __post_init__(self) -> None:
        if len(self.char) != 1:
            raise ValueError("a key event carries exactly one character")


@dataclass(frozen=True, slots=True)
class Burst:
    """What the timing made of a run of keys.

    ``scan``: a complete machine burst (prefix and suffix removed); ``partial``: a machine
    burst that stopped before its end; ``typed``: a person's keys, exactly as typed."""

    kind: Literal["scan", "partial", "typed"]
    text: str


class KeyTiming:
    """Splits a stream of key events into scans, partial scans and typed text.

    ``feed`` takes each key as it comes and returns the bursts it ended; ``end`` is called
    when the source has been quiet for ``max_gap_ms`` and returns what was pending.
    Concatenating every burst's text (with prefix, suffix and terminators of scans) gives
    back every key fed, in order."""

    def __init__(
        self,
        *,
        max_gap_ms: float = MAX_GAP_MS,
        machine_gap_ms: float = MACHINE_GAP_MS,
        min_length: int = MIN_SCAN_CHARS,
        terminators: str = TERMINATORS,
        prefix: str = "",
        suffix: str = "",
    ) -> None:
        if min_length < 1:
            raise ValueError("min_length must be at least 1")
        if any(t in prefix + suffix for t in terminators):
            raise ValueError("prefix and suffix must not contain a terminator")
        self.max_gap_ms = max_gap_ms
        self._machine_gap_ms = machine_gap_ms
        self._min_length = min_length
        self._terminators = terminators
        self._prefix = prefix
        self._suffix = suffix
        self._keys: list[KeyEvent] = []
        self._scan_ended_ms: float | None = None  # a terminator just ended a scan

    @property
    def pending(self) -> bool:
        """Keys wait for their burst to end."""
        return bool(self._keys)

    def feed(self, char: str, at_ms: float) -> list[Burst]:
        """Take one key; return the bursts it ended (oldest first)."""
        out: list[Burst] = []
        if self._keys and at_ms - self._keys[-1].at_ms > self.max_gap_ms:
            out += self._close("", self._keys[-1].at_ms)
        if char in self._terminators:
            ended = self._scan_ended_ms
            if not self._keys and ended is not None and at_ms - ended <= self.max_gap_ms:
                self._scan_ended_ms = at_ms  # CR LF, or Enter after Tab: one end of scan
                return out
            out += self._close(char, at_ms)
            return out
        self._scan_ended_ms = None
        self._keys.append(KeyEvent(char, at_ms))
        return out

    def end(self) -> list[Burst]:
        """The source went quiet: end the pending burst."""
        return self._close("", self._keys[-1].at_ms) if self._keys else []

    def _close(self, terminator: str, at_ms: float) -> list[Burst]:
        keys, self._keys = self._keys, []
        text = "".join(k.char for k in keys)
        out: list[Burst] = []
        # A prefix inside the burst: what came before it was a person's key, pressed just
        # before the scan started.
        cut = text.find(self._prefix) if self._prefix else 0
        if cut > 0:
            out.append(Burst("typed", text[:cut]))
            text, keys = text[cut:], keys[cut:]
        core = text.removeprefix(self._prefix) if self._prefix else text
        suffixed = bool(self._suffix) and core.endswith(self._suffix)
        if suffixed:
            core = core[: -len(self._suffix)]
        complete = bool(terminator) or suffixed or not self._terminators
        if len(core) >= self._min_length and complete:
            out.append(Burst("scan", core))
            self._scan_ended_ms = at_ms
        elif len(core) >= self._min_length and self._machine_speed(keys):
            out.append(Burst("partial", core))
        elif text or terminator:
            out.append(Burst("typed", text + terminator))
        return out

    def _machine_speed(self, keys: list[KeyEvent]) -> bool:
        if len(keys) < 2:
            return False
        span_ms = keys[-1].at_ms - keys[0].at_ms
        return span_ms <= self._machine_gap_ms * (len(keys) - 1)


class KeyQueue:
    """Where a wedge's keys arrive: ``put`` them as they are typed; an adapter reads them."""

    def __init__(self, limit: int = KEY_QUEUE_LIMIT) -> None:
        self._keys: Handoff[KeyEvent] = Handoff(limit, "keyboard wedge")

    def put(self, char: str, at_ms: float | None = None) -> None:
        """One key, stamped ``at_ms`` by the source (default: now, monotonic)."""
        stamp = time.monotonic() * 1000.0 if at_ms is None else at_ms
        self._keys.give(KeyEvent(char, stamp))

    def put_text(self, text: str, *, start_ms: float | None = None, gap_ms: float = 5.0) -> None:
        """Type ``text`` at machine speed (``gap_ms`` a key): what a wedge does, for the demo,
        training and tests."""
        start = time.monotonic() * 1000.0 if start_ms is None else start_ms
        for i, char in enumerate(text):
            self.put(char, start + i * gap_ms)

    async def get(self, timeout_s: float | None = None) -> KeyEvent:
        """The next key; TimeoutError if none comes within ``timeout_s``."""
        return await self._keys.take(timeout_s)


class WedgeInput:
    """Machine bursts from a key queue: typed text goes to ``on_typed`` as it is recognised
    (the field that has the focus), scans and partial scans are returned."""

    def __init__(
        self,
        keys: KeyQueue,
        timing: KeyTiming,
        on_typed: Callable[[str], None] | None = None,
    ) -> None:
        self._keys = keys
        self._timing = timing
        self._on_typed = on_typed
        self._ready: deque[Burst] = deque()

    async def next_burst(self, timeout_s: float | None = None) -> Burst:
        """The next scan or partial scan; TimeoutError if none ends within ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            while True:
                while self._ready:
                    burst = self._ready.popleft()
                    if burst.kind != "typed":
                        return burst
                    if self._on_typed is not None:
                        self._on_typed(burst.text)
                if self._timing.pending:
                    # A burst is open: it ends when the source stays quiet for the gap.
                    try:
                        key = await self._keys.get(self._timing.max_gap_ms / 1000.0)
                    except TimeoutError:
                        self._ready.extend(self._timing.end())
                        continue
                else:
                    key = await self._keys.get()
                self._ready.extend(self._timing.feed(key.char, key.at_ms))
