"""PC/SC chip card readers (USB contact and contactless readers: ACS, Identiv, HID…), through
pyscard — an optional extra: ``pip install 'smartpos[pcsc]'`` (and the PC/SC service,
``pcscd``, on Linux).

This module imports without pyscard; only opening a reader needs it, and says how to install
it when it is missing. The EMV conversation itself is :mod:`smartpos.devices.chip`, the same
code the tests run against the simulated card of :mod:`smartpos.devices.simcard`; this module
only carries its APDUs to a real card.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from smartpos.devices.chip import KNOWN_AIDS, ChipCardReader
from smartpos.devices.ports import ChipError, DeviceUnavailableError

__all__ = ["INSTALL_HINT", "PcscCardReader", "PcscTransport", "pcsc_readers", "wait_for_card"]

INSTALL_HINT = "pip install 'smartpos[pcsc]'"
_AGAIN = "insert the card again, or swipe it if its chip still cannot be read"


def _pyscard(module: str) -> ModuleType:
    """A pyscard module (``smartcard.…``), or DeviceUnavailableError saying how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DeviceUnavailableError(
            f"PC/SC chip reader support is not installed: {INSTALL_HINT} (and start the PC/SC"
            " service, pcscd), or use another card reader"
        ) from None


def pcsc_readers() -> list[str]:
    """The names of the PC/SC readers connected now."""
    system = _pyscard("smartcard.System")
    try:
        return [str(reader) for reader in system.readers()]
    except Exception as exc:  # pcscd not running: pyscard raises its own error types
        raise DeviceUnavailableError(
            f"the PC/SC service does not answer ({type(exc).__name__}): start pcscd and plug"
            " in the reader"
        ) from None


class PcscTransport:
    """One card's connection through pyscard: APDUs as bytes in and out."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def transmit(self, apdu: bytes) -> bytes:
        data, sw1, sw2 = self._connection.transmit(list(apdu))
        return bytes(data) + bytes([sw1, sw2])

    def close(self) -> None:
        self._connection.disconnect()


def wait_for_card(timeout_s: float | None, reader_name: str | None = None) -> PcscTransport:
    """Wait up to ``timeout_s`` (None: no limit) for a card in the reader whose name holds
    ``reader_name`` (any reader if None) and connect to it. TimeoutError if none came."""
    card_request = _pyscard("smartcard.CardRequest")
    card_type = _pyscard("smartcard.CardType")
    exceptions = _pyscard("smartcard.Exceptions")
    readers = None
    if reader_name is not None:
        system = _pyscard("smartcard.System")
        readers = [r for r in system.readers() if reader_name in str(r)]
        if not readers:
            raise DeviceUnavailableError(
                f"no PC/SC reader named like {reader_name!r} is connected: plug it in, or set"
                " the reader's name"
            )
    request = card_request.CardRequest(
        timeout=timeout_s, cardType=card_type.AnyCardType(), readers=readers
    )
    try:
        service = request.waitforcard()
    except exceptions.CardRequestTimeoutException:
        raise TimeoutError from None
    except exceptions.CardRequestException as exc:
        raise DeviceUnavailableError(
            f"the PC/SC reader is not usable ({' '.join(str(exc).split())}): check its cable"
            " and pcscd"
        ) from None
    try:
        service.connection.connect()
    except Exception:  # pyscard's NoCardException, CardConnectionException…
        raise ChipError(f"the card did not power up: {_AGAIN}") from None
    return PcscTransport(service.connection)


class PcscCardReader(ChipCardReader):
    """The card reader port on a PC/SC reader (``reader_name``: part of its name, when
    several are connected). ``contactless``: a contactless reader (cards are tapped)."""

    def __init__(
        self,
        reader_name: str | None = None,
        *,
        contactless: bool = False,
        aids: tuple[bytes, ...] = KNOWN_AIDS,
    ) -> None:
        _pyscard("smartcard")  # say at once, not at the first sale, that pyscard is missing
        super().__init__(
            lambda timeout_s: wait_for_card(timeout_s, reader_name),
            contactless=contactless,
            aids=aids,
        )
