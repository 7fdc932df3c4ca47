"""The PIN pad gives only the encrypted PIN block: never the PIN, in any attribute, repr,
log line or exception (message, arguments, cause, context, the locals its traceback keeps)."""

from __future__ import annotations

import asyncio
import logging
import types
from collections.abc import Iterator

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from smartpos.devices.pinpad import SimulatedPinPad, TpkFormat0
from smartpos.devices.ports import PinBlock, PinEntryError, PinPad, PinPadKeyError
from tests.devices.cards import PAN

pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")

TPK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
PIN = "918273"  # a PIN no other value in these tests contains


def clear_block(tpk: bytes, block: bytes) -> bytes:
    return Cipher(TripleDES(tpk + tpk[:8]), modes.ECB()).decryptor().update(block)


def format0(pin: str, pan: str) -> bytes:
    """ISO 9564 format 0 computed here: 0 | length | PIN | F fill, XOR 0000 | 12 PAN digits."""
    pin_field = bytes.fromhex(f"0{len(pin):X}{pin}".ljust(16, "F"))
    pan_field = bytes.fromhex("0000" + pan[-13:-1])
    return bytes(a ^ b for a, b in zip(pin_field, pan_field, strict=True))


def frames(tb: types.TracebackType | None) -> Iterator[types.FrameType]:
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next


def assert_holds_no_pin(exc: BaseException, pin: str = PIN) -> None:
    """Nothing reachable from ``exc`` a crash report would print holds the PIN: not its
    message or arguments, nor the locals of smartpos's frames in its traceback (the test's
    own frames hold the PIN it entered, of course), through its whole chain."""
    seen: BaseException | None = exc
    smartpos_frames = 0
    while seen is not None:
        assert pin not in str(seen) and pin not in repr(seen.args)
        for frame in frames(seen.__traceback__):
            if not frame.f_globals.get("__name__", "").startswith("smartpos."):
                continue
            smartpos_frames += 1
            for name, value in frame.f_locals.items():
                assert pin not in repr(value), f"{frame.f_code.co_name}: {name}"
        seen = seen.__cause__ or seen.__context__
    assert exc.__cause__ is None and exc.__context__ is None
    assert smartpos_frames > 0  # the pad's own frame was looked at


def pad(keypad: object = lambda: PIN) -> SimulatedPinPad:
    device = SimulatedPinPad(keypad)  # type: ignore[arg-type]
    device.load_key(TPK)
    return device


def test_the_pin_comes_out_only_as_a_format_0_block_under_the_tpk() -> None:
    device = pad()
    block = asyncio.run(device.pin_block(PAN))
    assert (block.format, block.ksn, len(block.encrypted)) == (0, None, 8)
    assert clear_block(TPK, block.encrypted) == format0(PIN, PAN)
    assert block.hex() == block.encrypted.hex().upper()


def test_an_async_keypad_works_too() -> None:
    async def keypad() -> str:
        await asyncio.sleep(0)
        return PIN

    block = asyncio.run(pad(keypad).pin_block(PAN))
    assert clear_block(TPK, block.encrypted) == format0(PIN, PAN)


def test_no_attribute_or_repr_holds_the_pin_or_the_block() -> None:
    device = pad()
    block = asyncio.run(device.pin_block(PAN))
    for text in (repr(device), repr(block), repr(vars(device)), repr(TpkFormat0(TPK))):
        assert PIN not in text
        assert block.encrypted.hex() not in text.lower()
        assert TPK.hex() not in text.lower()
    assert repr(block) == "PinBlock(format=0, <8 bytes encrypted>)"


@pytest.mark.parametrize(
    ("entered", "message"),
    [
        (PIN[:3], "a PIN has 4 to 12 digits"),
        (PIN + "1234567", "a PIN has 4 to 12 digits"),
        (PIN[:4] + "a1", "a PIN has 4 to 12 digits"),
        (PIN[:4] + "٣٤", "a PIN has 4 to 12 digits"),  # Arabic-Indic digits: no pad sends them
        (None, "PIN entry was cancelled"),
    ],
)
def test_a_bad_entry_is_refused_and_the_exception_keeps_nothing(
    entered: str | None, message: str
) -> None:
    with pytest.raises(PinEntryError, match=message) as caught:
        asyncio.run(pad(lambda: entered).pin_block(PAN))
    assert "ask the cardholder to enter the PIN again" in str(caught.value)
    assert_holds_no_pin(caught.value, entered or PIN)


def test_a_keypad_that_fails_with_the_digits_in_its_message_leaks_nothing() -> None:
    def keypad() -> str:
        typed = PIN[:5]
        raise RuntimeError(f"keypad unplugged after {typed}")

    with pytest.raises(PinEntryError, match="stopped answering") as caught:
        asyncio.run(pad(keypad).pin_block(PAN))
    assert_holds_no_pin(caught.value, PIN[:5])


def test_a_slow_cardholder_times_out() -> None:
    async def keypad() -> str:
        await asyncio.sleep(5)
        return PIN

    with pytest.raises(PinEntryError, match="no PIN was entered in time") as caught:
        asyncio.run(pad(keypad).pin_block(PAN, timeout_s=0.05))
    assert_holds_no_pin(caught.value)


def test_without_a_key_the_cardholder_is_not_even_asked() -> None:
    asked: list[int] = []
    device = SimulatedPinPad(lambda: asked.append(1) or PIN)  # type: ignore[func-returns-value]
    assert not device.key_loaded
    with pytest.raises(PinPadKeyError, match="sign on first"):
        asyncio.run(device.pin_block(PAN))
    assert asked == []


def test_a_wrong_key_is_refused_and_the_loaded_one_kept() -> None:
    device = pad()
    with pytest.raises(PinPadKeyError, match="double-length TDES"):
        device.load_key(TPK[:8])
    block = asyncio.run(device.pin_block(PAN))
    assert clear_block(TPK, block.encrypted) == format0(PIN, PAN)


def test_a_pan_too_short_for_a_pin_block_is_refused_before_asking() -> None:
    with pytest.raises(PinEntryError, match="13 to 19 digits"):
        asyncio.run(pad().pin_block("123456789012"))


class Format4Stub:
    """What the format 4 / DUKPT encryptor plugs in as: PIN and PAN in, PinBlock out."""

    def __init__(self) -> None:
        self.calls = 0

    def encrypt(self, pin: str, pan: str) -> PinBlock:
        self.calls += 1
        return PinBlock(bytes(16), format=4, ksn=bytes.fromhex("FFFF9876543210E00001"))


def test_the_hook_takes_another_pin_block_scheme() -> None:
    device = SimulatedPinPad(lambda: PIN)
    stub = Format4Stub()
    device.load_encryptor(stub)
    block = asyncio.run(device.pin_block(PAN))
    assert (block.format, block.ksn, stub.calls) == (4, bytes.fromhex("FFFF9876543210E00001"), 1)
    assert repr(block) == "PinBlock(format=4, <16 bytes encrypted>, ksn=FFFF9876543210E00001)"
    assert repr(device) == "SimulatedPinPad(Format4Stub)"


def test_an_encryptor_that_fails_leaks_nothing_even_to_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        def encrypt(self, pin: str, pan: str) -> PinBlock:
            raise ValueError(f"register exhausted at {pin}")

    device = SimulatedPinPad(lambda: PIN)
    device.load_encryptor(Broken())
    with (
        caplog.at_level(logging.DEBUG),
        pytest.raises(PinPadKeyError, match="sign on again") as caught,
    ):
        asyncio.run(device.pin_block(PAN))
    assert_holds_no_pin(caught.value)
    assert caplog.records and all(PIN not in r.getMessage() for r in caplog.records)


def test_pin_block_values_are_checked() -> None:
    with pytest.raises(ValueError, match="format must be"):
        PinBlock(bytes(8), format=2)
    with pytest.raises(ValueError, match="wrong length"):
        PinBlock(bytes(16), format=0)


def test_the_simulated_pad_is_the_port() -> None:
    assert isinstance(pad(), PinPad)
