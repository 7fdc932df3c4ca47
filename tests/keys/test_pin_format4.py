"""ISO 9564 format 4 PIN blocks (AES), terminal side, against published vectors.

Format 4 fills the PIN field with 8 random bytes, so a vector is reproduced by giving psec
the vector's fill; everything else is checked by decrypting.
"""

from __future__ import annotations

import psec.pinblock
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st
from psec.pinblock import decipher_pinblock_iso_4, encode_pan_field_iso_4

from smartpos.keys import KeyCheckError, PinError
from smartpos.keys.pinblock import (
    PIN_BLOCK_ISO4_LEN,
    PIN_BLOCK_LEN,
    PinBlockFormat,
    encrypt_pin_block_iso4,
)

# ANSI X9.24-3-2017 test vector supplement, "Calculation of AES PIN Block Format 4" (as
# reproduced in openemv/dukpt test/dukpt_aes128_test.c): PIN 1234, PAN 4111111111111111,
# the PIN field and PAN field below, and for each of the first eight AES-128 DUKPT PIN keys
# the encrypted block.
PIN = "1234"
PAN = "4111111111111111"
PIN_FIELD = bytes.fromhex("441234AAAAAAAAAA2F69ADDE2E9E7ACE")
PAN_FIELD = bytes.fromhex("44111111111111111000000000000000")
X924_3_FORMAT4 = [
    ("AF8CB133A78F8DC2D1359F18527593FB", "A912150391AB65A67E52883D81CE2D15"),
    ("D30BDC73EC9714B000BEC66BDB7B6D09", "52A00503BD34BA1383F6A7EE9FE2547F"),
    ("7D69F01F3B45449F62C7816ECE723268", "A5A27E82B43A9A866A93D7ABE89CEF93"),
    ("91A0588318EC2673214271F70137896E", "71B3D0528669498777555A8BE6698E44"),
    ("35A43BC9EFEB09C756204B57E3FB7D4D", "881A7F77A2E04E5BEA985E342FD0B628"),
    ("02DCC6CD1201A3A2CA7099559C862123", "BDC1C3871AFB0B340AA5B5CEFD08695E"),
    ("6ECF912F3B18CA11A7A27BB60705FD09", "4A8E6B8C7DBEE6CBA6DC774F0CB83396"),
    ("4D9DF3FBEE3448FC3E676D04320A90F5", "8308BB857C17F390369F761F8EB358FA"),
]

# ep2 EFT/POS 2000 Security Specification 8.0.0, 8.4 (as in psec's own test suite).
EP2_KEY = bytes.fromhex("C1D0F8FB4958670DBA40AB1F3752EF0D")
EP2_BLOCK = bytes.fromhex("CC17F65586BFD0953010226C4FC5B3CA")
EP2_PAN = "432198765432109870"


def aes_decrypt(key: bytes, block: bytes) -> bytes:
    return Cipher(algorithms.AES(key), modes.ECB()).decryptor().update(block)


def clear_pin_field(key: bytes, block: bytes, pan: str) -> bytes:
    """Independent format 4 decryption: D(K, D(K, block) XOR PAN field)."""
    pan_field = bytes.fromhex(f"{max(0, len(pan) - 12)}{pan.rjust(12, '0')}".ljust(32, "0"))
    middle = bytes(a ^ b for a, b in zip(aes_decrypt(key, block), pan_field, strict=True))
    return aes_decrypt(key, middle)


@pytest.mark.parametrize(("pin_key", "block"), X924_3_FORMAT4)
def test_standard_vector_byte_for_byte(
    monkeypatch: pytest.MonkeyPatch, pin_key: str, block: str
) -> None:
    # psec draws the fill from its module-level _urandom; give it the vector's.
    monkeypatch.setattr(psec.pinblock, "_urandom", lambda n: PIN_FIELD[8 : 8 + n])
    assert encrypt_pin_block_iso4(bytes.fromhex(pin_key), PIN, PAN) == bytes.fromhex(block)


def test_psec_fields_are_the_standards() -> None:
    assert encode_pan_field_iso_4(PAN) == PAN_FIELD
    key = bytes.fromhex(X924_3_FORMAT4[0][0])
    assert clear_pin_field(key, bytes.fromhex(X924_3_FORMAT4[0][1]), PAN) == PIN_FIELD


@pytest.mark.parametrize(("pin_key", "block"), X924_3_FORMAT4)
def test_standard_blocks_decrypt_to_the_pin(pin_key: str, block: str) -> None:
    assert decipher_pinblock_iso_4(bytes.fromhex(pin_key), bytes.fromhex(block), PAN) == PIN


def test_ep2_vector_decrypts_to_the_pin() -> None:
    assert decipher_pinblock_iso_4(EP2_KEY, EP2_BLOCK, EP2_PAN) == "1234"
    assert clear_pin_field(EP2_KEY, EP2_BLOCK, EP2_PAN)[:8] == bytes.fromhex("441234AAAAAAAAAA")


def test_random_fill_differs_each_time() -> None:
    key = bytes(range(16))
    blocks = {encrypt_pin_block_iso4(key, PIN, PAN) for _ in range(8)}
    assert len(blocks) == 8
    fills = {clear_pin_field(key, b, PAN)[8:] for b in blocks}
    assert len(fills) == 8


@settings(max_examples=100, deadline=None)
@given(
    key=st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    pin=st.text(alphabet="0123456789", min_size=4, max_size=12),
    pan=st.text(alphabet="0123456789", min_size=13, max_size=19),
)
def test_round_trip_and_fixed_part(key: bytes, pin: str, pan: str) -> None:
    block = encrypt_pin_block_iso4(key, pin, pan)
    assert len(block) == PIN_BLOCK_ISO4_LEN
    assert decipher_pinblock_iso_4(key, block, pan) == pin
    fixed = f"4{len(pin):X}{pin}".ljust(16, "A")
    assert clear_pin_field(key, block, pan)[:8] == bytes.fromhex(fixed)


@settings(max_examples=50, deadline=None)
@given(
    pin=st.text(alphabet="0123456789", min_size=4, max_size=12),
    pan=st.text(alphabet="0123456789", min_size=13, max_size=19),
    other=st.text(alphabet="0123456789", min_size=13, max_size=19),
)
def test_another_pan_or_key_does_not_decode(pin: str, pan: str, other: str) -> None:
    # A wrong key or PAN scrambles the whole PIN field (AES, not XOR), so the control nibble,
    # length and fill fail to decode — by chance they pass about once in 10**7.
    key = bytes(range(16))
    block = encrypt_pin_block_iso4(key, pin, pan)
    with pytest.raises(ValueError):
        decipher_pinblock_iso_4(bytes(range(1, 17)), block, pan)
    if other != pan:
        with pytest.raises(ValueError):
            decipher_pinblock_iso_4(key, block, other)


@pytest.mark.parametrize("pin", ["", "123", "1234567890123", "12a4", "١٢٣٤"])
def test_malformed_pin_is_rejected_without_echoing_it(pin: str) -> None:
    with pytest.raises(PinError) as caught:
        encrypt_pin_block_iso4(bytes(16), pin, PAN)
    if pin:
        assert pin not in str(caught.value)


@pytest.mark.parametrize("pan", ["", "411111111111", "41111111111111112222", "4111x11111111111"])
def test_malformed_pan_is_rejected(pan: str) -> None:
    with pytest.raises(PinError):
        encrypt_pin_block_iso4(bytes(16), PIN, pan)


@pytest.mark.parametrize("length", [0, 8, 15, 17, 31, 33])
def test_key_must_be_aes(length: int) -> None:
    with pytest.raises(KeyCheckError):
        encrypt_pin_block_iso4(bytes(length), PIN, PAN)


def test_formats_name_their_block_lengths() -> None:
    assert PinBlockFormat("iso0").block_len == PIN_BLOCK_LEN == 8
    assert PinBlockFormat("iso4").block_len == PIN_BLOCK_ISO4_LEN == 16
