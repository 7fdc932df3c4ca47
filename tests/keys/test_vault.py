"""Keys at rest: AES-256-GCM sealing and the on-disk key-encrypting key."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from smartpos.keys import KeyCheckError, Vault

SECRET = b"\x11" * 16


@pytest.fixture
def vault() -> Vault:
    return Vault(bytes(range(32)))


def test_seal_round_trip_and_layout(vault: Vault) -> None:
    blob = vault.seal(SECRET, b"tmk:12345678")
    assert blob[0] == 0x01
    assert len(blob) == 1 + 12 + len(SECRET) + 16
    assert SECRET not in blob
    assert vault.unseal(blob, b"tmk:12345678") == SECRET


def test_nonces_are_fresh(vault: Vault) -> None:
    blobs = {vault.seal(SECRET) for _ in range(20)}
    assert len(blobs) == 20
    assert len({blob[1:13] for blob in blobs}) == 20


def test_every_flipped_byte_is_detected(vault: Vault) -> None:
    blob = vault.seal(SECRET, b"tak:1")
    for index in range(len(blob)):
        tampered = bytearray(blob)
        tampered[index] ^= 0x01
        with pytest.raises(KeyCheckError):
            vault.unseal(bytes(tampered), b"tak:1")


def test_wrong_aad_is_rejected(vault: Vault) -> None:
    blob = vault.seal(SECRET, b"tmk:12345678")
    for aad in (b"", b"tmk:12345679", b"tpk:12345678"):
        with pytest.raises(KeyCheckError):
            vault.unseal(blob, aad)


def test_wrong_vault_key_is_rejected(vault: Vault) -> None:
    blob = vault.seal(SECRET)
    with pytest.raises(KeyCheckError):
        Vault(bytes(32)).unseal(blob)


@pytest.mark.parametrize("blob", [b"", b"\x01", b"\x01" + bytes(27)])
def test_truncated_blob_is_rejected(vault: Vault, blob: bytes) -> None:
    with pytest.raises(KeyCheckError):
        vault.unseal(blob)


@pytest.mark.parametrize("length", [0, 16, 24, 31, 33])
def test_vault_key_must_be_aes256(length: int) -> None:
    with pytest.raises(KeyCheckError):
        Vault(bytes(length))


def test_repr_hides_key() -> None:
    assert "000102" not in repr(Vault(bytes(range(32))))


def test_open_dir_creates_private_key_file_and_reuses_it(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "keys"
    first = Vault.open_dir(directory)
    kek = directory / "kek.bin"
    assert stat.S_IMODE(kek.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert len(kek.read_bytes()) == 32
    assert [p.name for p in directory.iterdir()] == ["kek.bin"]

    blob = first.seal(SECRET, b"pvk")
    assert Vault.open_dir(directory).unseal(blob, b"pvk") == SECRET
    assert Vault(kek.read_bytes()).unseal(blob, b"pvk") == SECRET


def test_open_dir_rejects_corrupt_key_file(tmp_path: Path) -> None:
    (tmp_path / "kek.bin").write_bytes(b"short")
    with pytest.raises(KeyCheckError):
        Vault.open_dir(tmp_path)


def test_concurrent_first_open_agrees_on_one_key(tmp_path: Path) -> None:
    vaults: list[Vault] = []
    barrier = threading.Barrier(8)

    def open_vault() -> None:
        barrier.wait()
        vaults.append(Vault.open_dir(tmp_path))

    threads = [threading.Thread(target=open_vault) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    blob = vaults[0].seal(SECRET)
    assert all(v.unseal(blob) == SECRET for v in vaults)
