"""ISO 9564 format 0 PIN block encryption (terminal side)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from smartpos.keys import KeyCheckError, PinError, encrypt_pin_block, generate_key

pytestmark = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning:psec"
)

KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


def ref_tdes_decrypt(key16: bytes, data: bytes) -> bytes:
    return Cipher(TripleDES(key16 + key16[:8]), modes.ECB()).decryptor().update(data)


def ref_format0(pin: str, pan: str) -> bytes:
    """Independent format 0 encoding: 0 | len | PIN | F-fill, XOR 0000 | 12 PAN digits."""
    pin_field = bytes.fromhex(f"0{len(pin):X}{pin}".ljust(16, "F"))
    pan_field = bytes.fromhex("0000" + pan[-13:-1])
    return bytes(a ^ b for a, b in zip(pin_field, pan_field, strict=True))


def test_known_clear_block() -> None:
    block = encrypt_pin_block(KEY, "1234", "5544332211009966")
    # Published psec / ISO 9564 example of the clear format 0 block.
    assert ref_tdes_decrypt(KEY, block) == bytes.fromhex("041277CDDEEFF669")


@settings(max_examples=100)
@given(
    pin=st.text(alphabet="0123456789", min_size=4, max_size=12),
    pan=st.text(alphabet="0123456789", min_size=13, max_size=19),
)
def test_block_matches_independent_encoding(pin: str, pan: str) -> None:
    tpk = generate_key()
    block = encrypt_pin_block(tpk, pin, pan)
    assert len(block) == 8
    assert ref_tdes_decrypt(tpk, block) == ref_format0(pin, pan)


@pytest.mark.parametrize("pin", ["", "123", "1234567890123", "12a4", "12 34", "١٢٣٤"])
def test_malformed_pin_is_rejected_without_echoing_it(pin: str) -> None:
    with pytest.raises(PinError) as caught:
        encrypt_pin_block(KEY, pin, "5544332211009966")
    if pin:
        assert pin not in str(caught.value)


@pytest.mark.parametrize("pan", ["", "554433221100", "55443322110099661234", "5544x32211009966"])
def test_malformed_pan_is_rejected(pan: str) -> None:
    with pytest.raises(PinError):
        encrypt_pin_block(KEY, "1234", pan)


def test_malformed_tpk_is_rejected() -> None:
    with pytest.raises(KeyCheckError):
        encrypt_pin_block(KEY[:8], "1234", "5544332211009966")
