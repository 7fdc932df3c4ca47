"""The simulated chip cards' application transaction counters (ATC, EMV tag 9F36).

A real card keeps its own counter; a simulated card's counter lives with the simulated reader
that holds it, in a private state file (0600 in a 0700 directory, ``smartpos.files``). The
issuer refuses an ATC it has seen before, so the counter must never go back: each step is
written and synced before the cryptogram that uses it leaves, and a damaged file stops the
reader instead of starting the cards from zero.

Cards are named in the file by a keyed token of the PAN (HMAC-SHA256, as
:class:`~smartpos.cards.pan.PanTokenizer`), never by the PAN: under the reader's own key,
kept in a second private file beside the state, or under a key the caller gives — the
terminal's PAN token key gives the tokens of its old ``chip_counters`` table, so those
counters can be carried over with :meth:`CardCounters.import_counters`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from smartpos.cards.pan import CardError, PanTokenizer
from smartpos.devices.ports import ChipError, DeviceStateError
from smartpos.files import UnsafeFileError, check_private, make_private_dirs, open_private

__all__ = ["ATC_MAX", "CardCounters"]

log = logging.getLogger(__name__)

ATC_MAX = 0xFFFF  # the ATC is two bytes; a card whose counter reached it is used up
_FORMAT = 1
_KEY_BYTES = 32
_STATE_MAX_BYTES = 16 * 1024 * 1024  # ~300,000 cards: far beyond any simulation
_PSN_DEFAULT = "01"
_TOKEN = re.compile(r"[0-9a-f]{32}")


class CardCounters:
    """ATCs of simulated cards, by (PAN, PAN sequence number), in the state file ``path``.

    ``token_key``: the key that names cards in the file; without one the counters keep their
    own random key in ``<path>.key``. Safe across processes (an exclusive lock on
    ``<path>.lock`` around each change)."""

    def __init__(self, path: Path, *, token_key: bytes | None = None) -> None:
        self.path = path
        self._key_path = path.with_name(path.name + ".key")
        self._lock_path = path.with_name(path.name + ".lock")
        self._tokens = PanTokenizer(token_key) if token_key is not None else None

    def __repr__(self) -> str:
        return f"CardCounters({str(self.path)!r})"

    def atc(self, pan: str, psn: str = _PSN_DEFAULT) -> int:
        """The card's counter as its last transaction left it (0: never used)."""
        with self._locked():
            return self._read().get(self._token(pan, psn), 0)

    def next_atc(self, pan: str, psn: str = _PSN_DEFAULT) -> int:
        """Step the card's counter and return it (1 for a new card), written and synced
        before returning. Raises ChipError, changing nothing, once it reached 65535."""
        with self._locked():
            counters = self._read()
            token = self._token(pan, psn)
            atc = counters.get(token, 0)
            if atc >= ATC_MAX:
                raise ChipError(
                    "this card's chip has used up its transaction counter and cannot pay by"
                    " chip any more: ask for another card"
                )
            counters[token] = atc + 1
            self._write(counters)
            return atc + 1

    def import_counters(self, counters: Mapping[str, int]) -> int:
        """Take over counters named by token (the terminal's ``chip_counters`` rows, PSN 01,
        when this store has the terminal's token key): each card keeps the higher of its two
        counters, so none goes back. Returns how many changed."""
        # The terminal stepped a counter past 65535 before refusing the card: used up.
        wanted = {t: min(a, ATC_MAX) if isinstance(a, int) else a for t, a in counters.items()}
        try:
            for token, atc in wanted.items():
                _check_entry(token, atc, "an imported counter")
        except ValueError as exc:
            raise DeviceStateError(f"{exc}: nothing was imported") from None
        with self._locked():
            current = self._read()
            changed = {t: a for t, a in wanted.items() if a > current.get(t, 0)}
            if changed:
                self._write({**current, **changed})
            return len(changed)

    # -- the files ---------------------------------------------------------------------

    def _token(self, pan: str, psn: str) -> str:
        if self._tokens is None:
            self._tokens = PanTokenizer(self._key())
        tokens = self._tokens
        try:
            if psn == _PSN_DEFAULT:
                return tokens.token(pan)  # the terminal's own PAN token, for the carry-over
            return tokens.digest("atc", f"{tokens.token(pan)}/{psn}")[:32]
        except CardError as exc:
            raise ChipError(f"the chip gave an unusable card number ({exc})") from None

    def _key(self) -> bytes:
        fd = _open_existing(self._key_path)
        if fd is None:
            return self._new_key()
        with os.fdopen(fd, "rb") as handle:
            key = handle.read(_KEY_BYTES + 1)
        if len(key) != _KEY_BYTES:
            raise DeviceStateError(
                f"{self._key_path} is damaged (not a {_KEY_BYTES}-byte key): the simulated"
                " cards' counters cannot be read; restore it from a backup"
            )
        return key

    def _new_key(self) -> bytes:
        key = secrets.token_bytes(_KEY_BYTES)
        try:
            fd = open_private(self._key_path, os.O_WRONLY | os.O_EXCL)
        except FileExistsError:  # another process made it meanwhile: use theirs
            return self._key()
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
        return key

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            make_private_dirs(self.path.parent)
            handle = os.fdopen(open_private(self._lock_path), "a")
        except (OSError, UnsafeFileError) as exc:
            raise DeviceStateError(
                f"cannot use the simulated card reader's state in {self.path.parent}: {exc}"
            ) from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self) -> dict[str, int]:
        fd = _open_existing(self.path)
        if fd is None:
            return {}
        with os.fdopen(fd, "rb") as handle:
            raw = handle.read(_STATE_MAX_BYTES + 1)
        try:
            if len(raw) > _STATE_MAX_BYTES:
                raise ValueError("too large")
            state: Any = json.loads(raw)
            if state.get("format") != _FORMAT:
                raise ValueError("unknown format")
            counters = state["counters"]
            for token, atc in counters.items():
                _check_entry(token, atc, "a counter")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise DeviceStateError(
                f"{self.path} is damaged ({exc}): the simulated cards' counters would go back"
                " and the issuer would refuse their chip sales; restore it from a backup, or"
                " move it away to start every simulated card afresh"
            ) from None
        return dict(counters)

    def _write(self, counters: dict[str, int]) -> None:
        data = json.dumps({"format": _FORMAT, "counters": counters}, sort_keys=True).encode()
        temp = self.path.with_name(self.path.name + ".new")
        fd = open_private(temp, os.O_WRONLY | os.O_TRUNC)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself must survive a crash
        finally:
            os.close(directory)


def _open_existing(path: Path) -> int | None:
    """A descriptor to read ``path``, None if it does not exist; DeviceStateError if it is
    not ours (``open_private`` would create a missing file: here missing means new)."""
    try:
        if not path.exists():
            return None
        if check_private(path):
            log.warning("%s was open to other users: now 0600", path)
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except (OSError, UnsafeFileError) as exc:
        raise DeviceStateError(f"cannot read {path}: {exc}") from None


def _check_entry(token: object, atc: object, what: str) -> None:
    if not (isinstance(token, str) and _TOKEN.fullmatch(token)):
        raise ValueError(f"{what} is not named by a 32-character token")
    if not (isinstance(atc, int) and not isinstance(atc, bool) and 0 <= atc <= ATC_MAX):
        raise ValueError(f"{what} is not a transaction counter 0..{ATC_MAX}")
