"""The cached-context TDES operations give exactly what psec (the reference) gives — also for
many messages in a row under one key, where a wrongly carried CBC chain would show."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psec.des import decrypt_tdes_ecb, encrypt_tdes_ecb
from psec.mac import generate_retail_mac
from psec.pin import generate_ibm3624_offset

from smartpos.keys.hsm import _offset
from smartpos.keys.tdes import TdesKey, tdes_key

pytestmark = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning:psec"
)

keys16 = st.binary(min_size=16, max_size=16)
blocks = st.integers(min_value=1, max_value=40).flatmap(
    lambda n: st.binary(min_size=8 * n, max_size=8 * n)
)


@given(keys16, st.lists(blocks, min_size=1, max_size=8))
@settings(max_examples=150)
def test_retail_mac_matches_psec_message_after_message(key: bytes, messages: list[bytes]) -> None:
    cached = TdesKey(key)
    for data in messages:
        assert cached.retail_mac(data) == generate_retail_mac(key[:8], key[8:], data, 1, 8)


@given(st.lists(st.tuples(st.sampled_from([0, 1, 2]), blocks), min_size=2, max_size=20))
@settings(max_examples=60)
def test_interleaved_keys_keep_their_own_chain(calls: list[tuple[int, bytes]]) -> None:
    keys = [bytes([i + 1]) * 8 + bytes([0x40 + i]) * 8 for i in range(3)]
    cached = [TdesKey(k) for k in keys]
    for i, data in calls:
        k = keys[i]
        assert cached[i].retail_mac(data) == generate_retail_mac(k[:8], k[8:], data, 1, 8)


@given(keys16, blocks)
def test_ecb_both_ways_match_psec(key: bytes, data: bytes) -> None:
    cached = tdes_key(key)
    assert cached.encrypt_ecb(data) == encrypt_tdes_ecb(key, data)
    assert cached.decrypt_ecb(data) == decrypt_tdes_ecb(key, data)
    assert cached.decrypt_ecb(cached.encrypt_ecb(data)) == data


@given(
    keys16,
    st.text("0123456789", min_size=4, max_size=12),
    st.text("0123456789", min_size=13, max_size=19),
)
def test_ibm3624_offset_matches_psec(pvk: bytes, pin: str, pan: str) -> None:
    start = max(0, len(pan) - 13)
    expected = generate_ibm3624_offset(
        pvk, "0123456789012345", pin, pan, start, min(12, len(pan) - 1), "F"
    )
    assert _offset(pvk, pin, pan) == expected


def test_partial_and_empty_data_are_refused() -> None:
    cached = TdesKey(bytes(range(16)))
    for bad in (b"", b"1234567", b"123456789"):
        with pytest.raises(ValueError, match="multiple of 8"):
            cached.retail_mac(bad)
        with pytest.raises(ValueError, match="multiple of 8"):
            cached.encrypt_ecb(bad)
    with pytest.raises(ValueError, match="16 bytes"):
        TdesKey(bytes(8))


def test_threads_sharing_one_key_get_correct_macs() -> None:
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    cached = tdes_key(key)
    messages = [bytes([i]) * (8 * (1 + i % 7)) for i in range(64)]
    expected = [generate_retail_mac(key[:8], key[8:], m, 1, 8) for m in messages]
    wrong: list[int] = []

    def work() -> None:
        for _ in range(50):
            for i, m in enumerate(messages):
                if cached.retail_mac(m) != expected[i]:
                    wrong.append(i)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
