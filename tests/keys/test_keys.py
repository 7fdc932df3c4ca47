"""Key hierarchy: check values, wrapping, sign-on field 62."""

from __future__ import annotations

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from smartpos.keys import (
    KeyCheckError,
    WorkingKeys,
    generate_key,
    kcv,
    pack_f62,
    unpack_f62,
    unwrap_key,
    wrap_key,
)
from smartpos.keys.keys import signon_mac_key

pytestmark = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning:psec"
)

KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


def ref_tdes_ecb(key16: bytes, data: bytes) -> bytes:
    """Independent two-key TDES-ECB: K1 K2 K1 as an explicit three-key bundle."""
    return Cipher(TripleDES(key16 + key16[:8]), modes.ECB()).encryptor().update(data)


def odd_parity(byte: int) -> bool:
    return bin(byte).count("1") % 2 == 1


def test_kcv_known_value() -> None:
    # 08D7 is the published two-byte KCV of this key (psec docs, common HSM examples).
    assert kcv(KEY) == bytes.fromhex("08D7B4FB")
    assert kcv(KEY) == ref_tdes_ecb(KEY, bytes(8))[:4]


def test_kcv_rejects_malformed_key() -> None:
    with pytest.raises(KeyCheckError):
        kcv(KEY[:8])
    with pytest.raises(KeyCheckError):
        kcv(KEY + KEY[:8])


def test_generate_key_is_double_length_odd_parity_and_fresh() -> None:
    keys = {generate_key() for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert len(key) == 16
        assert all(odd_parity(b) for b in key)
        assert key[:8] != key[8:]


def test_wrap_key_known_answer_and_round_trip() -> None:
    clear = bytes.fromhex("89B07B35A1B3F47E1A2A3D4C5E0B1A2C")
    wrapped = wrap_key(KEY, clear)
    assert wrapped == ref_tdes_ecb(KEY, clear)
    assert wrapped != clear
    assert unwrap_key(KEY, wrapped) == clear
    # psec's documented vector for TDES-ECB under this key.
    assert wrap_key(KEY, b"12345678") == bytes.fromhex("41D2FFBA3CDC15FE")


@pytest.mark.parametrize("bad", [b"", b"1234567", b"123456789"])
def test_wrap_rejects_partial_blocks(bad: bytes) -> None:
    with pytest.raises(KeyCheckError):
        wrap_key(KEY, bad)
    with pytest.raises(KeyCheckError):
        unwrap_key(KEY, bad)


def test_wrap_rejects_bad_kek() -> None:
    with pytest.raises(KeyCheckError):
        wrap_key(KEY[:15], KEY)


def test_f62_layout_and_round_trip() -> None:
    tmk, tpk, tak = generate_key(), generate_key(), generate_key()
    f62 = pack_f62(tmk, WorkingKeys(tpk=tpk, tak=tak))
    assert len(f62) == 40
    assert f62[0:16] == ref_tdes_ecb(tmk, tpk)
    assert f62[16:20] == ref_tdes_ecb(tpk, bytes(8))[:4]
    assert f62[20:36] == ref_tdes_ecb(tmk, tak)
    assert f62[36:40] == ref_tdes_ecb(tak, bytes(8))[:4]
    assert unpack_f62(tmk, f62) == WorkingKeys(tpk=tpk, tak=tak)


def test_f62_any_flipped_bit_is_detected() -> None:
    tmk = generate_key()
    f62 = pack_f62(tmk, WorkingKeys(tpk=generate_key(), tak=generate_key()))
    for bit in range(len(f62) * 8):
        tampered = bytearray(f62)
        tampered[bit // 8] ^= 0x80 >> (bit % 8)
        with pytest.raises(KeyCheckError):
            unpack_f62(tmk, bytes(tampered))


def test_f62_under_wrong_tmk_is_rejected() -> None:
    f62 = pack_f62(generate_key(), WorkingKeys(tpk=generate_key(), tak=generate_key()))
    with pytest.raises(KeyCheckError, match="check value"):
        unpack_f62(generate_key(), f62)


@pytest.mark.parametrize("length", [0, 20, 39, 41, 48])
def test_f62_wrong_length_is_rejected(length: int) -> None:
    with pytest.raises(KeyCheckError):
        unpack_f62(generate_key(), bytes(length))


def test_working_keys_validate_and_hide_material() -> None:
    tpk, tak = generate_key(), generate_key()
    text = repr(WorkingKeys(tpk=tpk, tak=tak))
    assert tpk.hex() not in text.lower() and repr(tpk) not in text
    with pytest.raises(KeyCheckError):
        WorkingKeys(tpk=tpk[:8], tak=tak)


@settings(max_examples=50)
@given(key=st.binary(min_size=16, max_size=16), kek=st.binary(min_size=16, max_size=16))
def test_wrap_unwrap_round_trips(key: bytes, kek: bytes) -> None:
    assert unwrap_key(kek, wrap_key(kek, key)) == key


def test_signon_key_is_the_tmk_with_variant_8() -> None:
    # Vector from docs/protocol.md §11: the first byte of each half XORed with 0x40.
    tmk = bytes.fromhex("89ABCDEF01234567FEDCBA9876543210")
    key = signon_mac_key(tmk)
    assert key.hex().upper() == "C9ABCDEF01234567BEDCBA9876543210"
    expected = bytearray(tmk)
    expected[0] ^= 0x40
    expected[8] ^= 0x40
    assert key == bytes(expected)
    assert kcv(key) != kcv(tmk)
