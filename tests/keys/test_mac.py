"""MAC algorithms: published vectors, independent re-implementations, tamper detection."""

from __future__ import annotations

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from smartpos.keys import KeyCheckError, MacAlgorithm, compute_mac, verify_mac

pytestmark = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning:psec"
)

KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
NOW_IS_THE_TIME = b"Now is the time for all "

keys16 = st.binary(min_size=16, max_size=16)
algorithms = st.sampled_from(list(MacAlgorithm))


def des_encrypt(key8: bytes, block: bytes) -> bytes:
    return Cipher(TripleDES(key8 * 3), modes.ECB()).encryptor().update(block)


def des_decrypt(key8: bytes, block: bytes) -> bytes:
    return Cipher(TripleDES(key8 * 3), modes.ECB()).decryptor().update(block)


def tdes_encrypt(key16: bytes, block: bytes) -> bytes:
    return Cipher(TripleDES(key16 + key16[:8]), modes.ECB()).encryptor().update(block)


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def zero_pad(data: bytes) -> bytes:
    padded = data + b"\x00" * (-len(data) % 8)
    return padded or bytes(8)


def ref_x919(key16: bytes, data: bytes) -> bytes:
    """ISO 9797-1 algorithm 3 written out: single-DES CBC under K1, then D(K2), E(K1)."""
    k1, k2 = key16[:8], key16[8:]
    state = bytes(8)
    padded = zero_pad(data)
    for i in range(0, len(padded), 8):
        state = des_encrypt(k1, xor(state, padded[i : i + 8]))
    return des_encrypt(k1, des_decrypt(k2, state))


def ref_cup_ecb(key16: bytes, data: bytes) -> bytes:
    """The CUP POS ECB MAC, step by step as the acquirer specs describe it."""
    padded = zero_pad(data)
    folded = bytes(8)
    for i in range(0, len(padded), 8):
        folded = xor(folded, padded[i : i + 8])
    digest = folded.hex().upper().encode()
    step1 = tdes_encrypt(key16, digest[:8])
    step2 = tdes_encrypt(key16, xor(step1, digest[8:]))
    return step2.hex().upper().encode()[:8]


def test_x919_published_vector() -> None:
    # ANSI X9.19 example: K = 0123456789ABCDEF FEDCBA9876543210, "Now is the time for all ".
    assert compute_mac(MacAlgorithm.X919, KEY, NOW_IS_THE_TIME) == bytes.fromhex("A1C72E74EA3FA9B6")
    assert ref_x919(KEY, NOW_IS_THE_TIME) == bytes.fromhex("A1C72E74EA3FA9B6")


def test_x919_with_equal_halves_is_the_x99_vector() -> None:
    # With K1 = K2 the retail MAC collapses to single-DES CBC-MAC: the ANSI X9.9 example.
    key = bytes.fromhex("0123456789ABCDEF") * 2
    assert compute_mac(MacAlgorithm.X919, key, NOW_IS_THE_TIME) == bytes.fromhex("70A30640CC76DD8B")


def test_cup_ecb_known_shape_and_reference() -> None:
    mac = compute_mac(MacAlgorithm.CUP_ECB, KEY, NOW_IS_THE_TIME)
    assert mac == ref_cup_ecb(KEY, NOW_IS_THE_TIME)
    assert len(mac) == 8
    assert all(c in b"0123456789ABCDEF" for c in mac)


def test_algorithms_differ() -> None:
    assert compute_mac(MacAlgorithm.X919, KEY, NOW_IS_THE_TIME) != compute_mac(
        MacAlgorithm.CUP_ECB, KEY, NOW_IS_THE_TIME
    )


@pytest.mark.parametrize("algorithm", list(MacAlgorithm))
def test_empty_data_is_macable(algorithm: MacAlgorithm) -> None:
    mac = compute_mac(algorithm, KEY, b"")
    assert len(mac) == 8
    assert verify_mac(algorithm, KEY, b"", mac)


def test_algorithm_accepts_string_value() -> None:
    assert compute_mac("cup-ecb", KEY, b"abc") == compute_mac(  # type: ignore[arg-type]
        MacAlgorithm.CUP_ECB, KEY, b"abc"
    )


@pytest.mark.parametrize("algorithm", list(MacAlgorithm))
def test_verify_true_false_and_flipped_bit(algorithm: MacAlgorithm) -> None:
    data = b"0200" + bytes(range(64))
    mac = compute_mac(algorithm, KEY, data)
    assert verify_mac(algorithm, KEY, data, mac)
    flipped = bytearray(data)
    flipped[10] ^= 0x01
    assert not verify_mac(algorithm, KEY, bytes(flipped), mac)
    assert not verify_mac(algorithm, KEY, data, mac[:7])
    assert not verify_mac(algorithm, KEY, data, mac + b"\x00")
    assert not verify_mac(algorithm, KEY, data, b"")


def test_bad_tak_is_rejected() -> None:
    with pytest.raises(KeyCheckError):
        compute_mac(MacAlgorithm.X919, KEY[:8], b"data")


@settings(max_examples=150)
@given(algorithm=algorithms, tak=keys16, data=st.binary(max_size=300))
def test_matches_independent_implementation(
    algorithm: MacAlgorithm, tak: bytes, data: bytes
) -> None:
    reference = ref_x919 if algorithm == MacAlgorithm.X919 else ref_cup_ecb
    mac = compute_mac(algorithm, tak, data)
    assert mac == reference(tak, data)
    assert verify_mac(algorithm, tak, data, mac)


@settings(max_examples=150)
@given(
    algorithm=algorithms,
    tak=keys16,
    data=st.binary(min_size=1, max_size=200),
    position=st.integers(min_value=0),
    new_byte=st.integers(min_value=0, max_value=255),
)
def test_any_single_byte_change_fails(
    algorithm: MacAlgorithm, tak: bytes, data: bytes, position: int, new_byte: int
) -> None:
    mac = compute_mac(algorithm, tak, data)
    index = position % len(data)
    assume(data[index] != new_byte)
    changed = bytearray(data)
    changed[index] = new_byte
    assert not verify_mac(algorithm, tak, bytes(changed), mac)

    changed_mac = bytearray(mac)
    changed_mac[position % 8] ^= 1 + new_byte % 255
    assert not verify_mac(algorithm, tak, data, bytes(changed_mac))
