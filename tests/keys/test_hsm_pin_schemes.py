"""Soft HSM: PIN verification under format 4 (AES PIN key), TDES DUKPT and AES DUKPT.

The DUKPT cases use the standards' own encrypted PIN blocks: a host holding the published
test BDK must accept them (ANSI X9.24-1:2009 A.4.2; ANSI X9.24-3-2017 supplement).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartpos.keys import (
    KeyCheckError,
    PinCheck,
    PinError,
    SoftHsm,
    Vault,
    encrypt_pin_block,
    generate_key,
)
from smartpos.keys.dukpt import (
    AesDukptRegister,
    DukptError,
    TdesDukptRegister,
    aes_kcv,
)
from smartpos.keys.hsm import BdkKind, PinScheme
from smartpos.keys.keys import kcv
from smartpos.keys.pinblock import encrypt_pin_block_iso4
from tests.keys.test_dukpt import (
    AES128_IK,
    AES256_IK,
    AES_BDK,
    AES_IKID,
    TDES_BDK,
    TDES_INITIAL_KSN,
    TDES_INITIAL_SEQUENCE,
    TDES_IPEK,
    TDES_PAN,
)
from tests.keys.test_pin_format4 import X924_3_FORMAT4

pytestmark = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning:psec"
)

TID = "12345678"
PIN = "1234"
AES_PAN = "4111111111111111"
CARD_PAN = "6222021234567890123"


def published_bdks(purpose: str) -> bytes:
    """The standards' test BDKs instead of fresh ones; fresh TDES keys for the rest."""
    published = {"bdk-tdes": TDES_BDK, "bdk-aes128": AES_BDK, "bdk-aes256": AES_BDK * 2}
    return published.get(purpose) or generate_key()


@pytest.fixture(scope="module")
def vault() -> Vault:
    return Vault(bytes(range(32)))


@pytest.fixture(scope="module")
def hsm(vault: Vault) -> SoftHsm:
    return SoftHsm(vault)


@pytest.fixture(scope="module")
def test_hsm(vault: Vault) -> SoftHsm:
    return SoftHsm(vault, key_source=published_bdks)


def card(hsm: SoftHsm, pan: str, pin: str = PIN) -> tuple[bytes, str]:
    sealed_pvk = hsm.new_pvk()
    return sealed_pvk, hsm.issue_pin(sealed_pvk, pan, pin)


# --- TPK_ISO0 is verify_pin --------------------------------------------------------------


def test_tpk_scheme_is_verify_pin(hsm: SoftHsm) -> None:
    sealed_tmk, _, _ = hsm.new_tmk(TID)
    from smartpos.keys import unpack_f62

    sealed_tpk, _, f62 = hsm.new_working_keys(TID, sealed_tmk)
    tmk = hsm._unseal(b"tmk:" + TID.encode(), sealed_tmk)
    tpk = unpack_f62(tmk, f62).tpk
    sealed_pvk, pvv = card(hsm, CARD_PAN)
    for pin in (PIN, "4321"):
        block = encrypt_pin_block(tpk, pin, CARD_PAN)
        want = hsm.verify_pin(TID, sealed_tpk, block, CARD_PAN, sealed_pvk, pvv)
        got = hsm.verify_pin_under(
            PinScheme.TPK_ISO0, sealed_tpk, block, CARD_PAN, sealed_pvk, pvv, tid=TID
        )
        assert got is want
    with pytest.raises(PinError):
        hsm.verify_pin_under(PinScheme.TPK_ISO0, sealed_tpk, block, CARD_PAN, sealed_pvk, pvv)


# --- Format 4 under a terminal's AES PIN key ---------------------------------------------


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_new_aes_pin_key_is_sealed_for_its_terminal(vault: Vault, hsm: SoftHsm, bits: int) -> None:
    sealed, clear, check = hsm.new_aes_pin_key(TID, bits)
    assert len(clear) == bits // 8
    assert clear not in sealed
    assert check == aes_kcv(clear)
    assert vault.unseal(sealed, b"tpk-aes:" + TID.encode()) == clear
    with pytest.raises(KeyCheckError):
        vault.unseal(sealed, b"tpk-aes:87654321")


def test_aes_pin_key_sizes_are_aes_ones(hsm: SoftHsm) -> None:
    with pytest.raises(KeyCheckError):
        hsm.new_aes_pin_key(TID, 64)


def test_format4_under_aes_pin_key(hsm: SoftHsm) -> None:
    sealed, clear, _ = hsm.new_aes_pin_key(TID, 256)
    sealed_pvk, pvv = card(hsm, CARD_PAN)

    def verify(block: bytes, pan: str = CARD_PAN) -> PinCheck:
        return hsm.verify_pin_under(
            PinScheme.AES_ISO4, sealed, block, pan, sealed_pvk, pvv, tid=TID
        )

    right = encrypt_pin_block_iso4(clear, PIN, CARD_PAN)
    assert verify(right) is PinCheck.OK
    assert verify(encrypt_pin_block_iso4(clear, "4321", CARD_PAN)) is PinCheck.WRONG
    assert verify(encrypt_pin_block_iso4(clear, PIN + "5", CARD_PAN)) is PinCheck.WRONG
    # A block for another card, or under another key, does not decode as format 4.
    assert verify(encrypt_pin_block_iso4(clear, PIN, "6222029999999999993")) is (
        PinCheck.FORMAT_ERROR
    )
    assert verify(encrypt_pin_block_iso4(bytes(32), PIN, CARD_PAN)) is PinCheck.FORMAT_ERROR
    for block in (right[:8], right[:15], right + b"\x00", right * 2, b""):
        assert verify(block) is PinCheck.FORMAT_ERROR
    for pan in ("", "123", "62220212345678901x3"):
        assert verify(right, pan) is PinCheck.FORMAT_ERROR


def test_aes_pin_key_is_bound_to_its_terminal_and_purpose(hsm: SoftHsm) -> None:
    sealed, clear, _ = hsm.new_aes_pin_key(TID)
    sealed_pvk, pvv = card(hsm, CARD_PAN)
    block = encrypt_pin_block_iso4(clear, PIN, CARD_PAN)
    with pytest.raises(KeyCheckError):
        hsm.verify_pin_under(
            PinScheme.AES_ISO4, sealed, block, CARD_PAN, sealed_pvk, pvv, tid="87654321"
        )
    sealed_tmk, _, _ = hsm.new_tmk(TID)
    with pytest.raises(KeyCheckError):
        hsm.verify_pin_under(
            PinScheme.AES_ISO4, sealed_tmk, block, CARD_PAN, sealed_pvk, pvv, tid=TID
        )
    with pytest.raises(PinError):
        hsm.verify_pin_under(PinScheme.AES_ISO4, sealed, block, CARD_PAN, sealed_pvk, pvv)
    with pytest.raises(PinError):
        hsm.verify_pin_under(
            PinScheme.AES_ISO4, sealed, block, CARD_PAN, sealed_pvk, "12a4", tid=TID
        )


# --- BDKs and initial keys ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "family", "length"),
    [(BdkKind.TDES, "tdes", 16), (BdkKind.AES128, "aes", 16), (BdkKind.AES256, "aes", 32)],
)
def test_new_bdk_is_sealed_for_its_family(
    vault: Vault, hsm: SoftHsm, kind: BdkKind, family: str, length: int
) -> None:
    sealed, check = hsm.new_bdk(kind)
    bdk = vault.unseal(sealed, f"bdk:{family}".encode())
    assert len(bdk) == length
    assert check == (kcv(bdk) if kind is BdkKind.TDES else aes_kcv(bdk))


def test_initial_keys_from_the_published_bdks(test_hsm: SoftHsm) -> None:
    sealed_tdes, check = test_hsm.new_bdk(BdkKind.TDES)
    assert check == kcv(TDES_BDK)
    assert test_hsm.derive_initial_key(BdkKind.TDES, sealed_tdes, TDES_INITIAL_KSN) == (
        TDES_IPEK,
        kcv(TDES_IPEK),
    )
    sealed_aes, _ = test_hsm.new_bdk(BdkKind.AES128)
    assert test_hsm.derive_initial_key(BdkKind.AES128, sealed_aes, AES_IKID) == (
        AES128_IK,
        aes_kcv(AES128_IK),
    )
    sealed_aes256, _ = test_hsm.new_bdk(BdkKind.AES256)
    assert test_hsm.derive_initial_key(BdkKind.AES256, sealed_aes256, AES_IKID)[0] == AES256_IK


def test_initial_key_needs_the_right_bdk_and_serial(test_hsm: SoftHsm) -> None:
    sealed_tdes, _ = test_hsm.new_bdk(BdkKind.TDES)
    sealed_aes256, _ = test_hsm.new_bdk(BdkKind.AES256)
    with pytest.raises(KeyCheckError):
        test_hsm.derive_initial_key(BdkKind.AES128, sealed_tdes, AES_IKID)
    with pytest.raises(KeyCheckError):
        test_hsm.derive_initial_key(BdkKind.AES128, sealed_aes256, AES_IKID)
    with pytest.raises(DukptError):
        test_hsm.derive_initial_key(
            BdkKind.TDES, sealed_tdes, bytes.fromhex("FFFF9876543210E00001")
        )
    with pytest.raises(DukptError):
        test_hsm.derive_initial_key(BdkKind.TDES, sealed_tdes, AES_IKID)
    with pytest.raises(DukptError):
        test_hsm.derive_initial_key(BdkKind.AES256, sealed_aes256, TDES_INITIAL_KSN)


# --- TDES DUKPT, format 0 ----------------------------------------------------------------


@pytest.mark.parametrize(("ksn", "pin_block"), [(row[0], row[2]) for row in TDES_INITIAL_SEQUENCE])
def test_published_tdes_dukpt_blocks_verify(test_hsm: SoftHsm, ksn: str, pin_block: str) -> None:
    sealed_bdk, _ = test_hsm.new_bdk(BdkKind.TDES)
    sealed_pvk, pvv = card(test_hsm, TDES_PAN)
    result = test_hsm.verify_pin_under(
        PinScheme.TDES_DUKPT_ISO0,
        sealed_bdk,
        bytes.fromhex(pin_block),
        TDES_PAN,
        sealed_pvk,
        pvv,
        ksn=bytes.fromhex(ksn),
    )
    assert result is PinCheck.OK


def test_tdes_dukpt_verdicts(test_hsm: SoftHsm) -> None:
    sealed_bdk, _ = test_hsm.new_bdk(BdkKind.TDES)
    ipek, _ = test_hsm.derive_initial_key(BdkKind.TDES, sealed_bdk, TDES_INITIAL_KSN)
    register = TdesDukptRegister.load(ipek, TDES_INITIAL_KSN)
    sealed_pvk, pvv = card(test_hsm, CARD_PAN)

    def verify(block: bytes, ksn: bytes | None, pan: str = CARD_PAN) -> PinCheck:
        return test_hsm.verify_pin_under(
            PinScheme.TDES_DUKPT_ISO0, sealed_bdk, block, pan, sealed_pvk, pvv, ksn=ksn
        )

    txn = register.next_transaction()
    right = txn.encrypt_pin(PIN, CARD_PAN)
    assert verify(right, txn.ksn) is PinCheck.OK
    wrong = register.next_transaction()
    assert verify(wrong.encrypt_pin("4321", CARD_PAN), wrong.ksn) is PinCheck.WRONG
    # The block under one transaction's key with another transaction's KSN: another key.
    assert verify(right, wrong.ksn) in (PinCheck.FORMAT_ERROR, PinCheck.WRONG)
    assert verify(right, txn.ksn, "6222029999999999993") in (PinCheck.FORMAT_ERROR, PinCheck.WRONG)
    for ksn in (
        txn.ksn[:9],
        txn.ksn + b"\x00",
        TDES_INITIAL_KSN,  # counter zero
        bytes.fromhex("FFFF9876543210E007FF"),  # eleven one-bits
    ):
        assert verify(right, ksn) is PinCheck.FORMAT_ERROR
    for block in (right[:7], right + b"\x00", bytes(16)):
        assert verify(block, txn.ksn) is PinCheck.FORMAT_ERROR
    with pytest.raises(PinError):
        verify(right, None)


def test_tdes_dukpt_needs_a_tdes_bdk(test_hsm: SoftHsm) -> None:
    sealed_aes, _ = test_hsm.new_bdk(BdkKind.AES128)
    sealed_pvk, pvv = card(test_hsm, CARD_PAN)
    with pytest.raises(KeyCheckError):
        test_hsm.verify_pin_under(
            PinScheme.TDES_DUKPT_ISO0,
            sealed_aes,
            bytes(8),
            CARD_PAN,
            sealed_pvk,
            pvv,
            ksn=TDES_INITIAL_KSN,
        )


# --- AES DUKPT, format 4 -----------------------------------------------------------------


@pytest.mark.parametrize("counter", range(1, 9))
def test_published_aes_dukpt_blocks_verify(test_hsm: SoftHsm, counter: int) -> None:
    sealed_bdk, _ = test_hsm.new_bdk(BdkKind.AES128)
    sealed_pvk, pvv = card(test_hsm, AES_PAN)
    block = bytes.fromhex(X924_3_FORMAT4[counter - 1][1])
    ksn = AES_IKID + counter.to_bytes(4, "big")
    result = test_hsm.verify_pin_under(
        PinScheme.AES_DUKPT_ISO4, sealed_bdk, block, AES_PAN, sealed_pvk, pvv, ksn=ksn
    )
    assert result is PinCheck.OK


@pytest.mark.parametrize("kind", [BdkKind.AES128, BdkKind.AES256])
def test_aes_dukpt_verdicts(hsm: SoftHsm, kind: BdkKind) -> None:
    sealed_bdk, _ = hsm.new_bdk(kind)
    initial_key, _ = hsm.derive_initial_key(kind, sealed_bdk, AES_IKID)
    register = AesDukptRegister.load(initial_key, AES_IKID)
    sealed_pvk, pvv = card(hsm, CARD_PAN)

    def verify(block: bytes, ksn: bytes | None, pan: str = CARD_PAN) -> PinCheck:
        return hsm.verify_pin_under(
            PinScheme.AES_DUKPT_ISO4, sealed_bdk, block, pan, sealed_pvk, pvv, ksn=ksn
        )

    txn = register.next_transaction()
    right = txn.encrypt_pin(PIN, CARD_PAN)
    assert verify(right, txn.ksn) is PinCheck.OK
    other = register.next_transaction()
    assert verify(other.encrypt_pin("4321", CARD_PAN), other.ksn) is PinCheck.WRONG
    assert verify(right, other.ksn) is PinCheck.FORMAT_ERROR
    assert verify(right, txn.ksn, "6222029999999999993") is PinCheck.FORMAT_ERROR
    for ksn in (txn.ksn[:11], txn.ksn + b"\x00", AES_IKID + bytes(4), AES_IKID + b"\xff" * 4):
        assert verify(right, ksn) is PinCheck.FORMAT_ERROR
    for block in (right[:8], right + b"\x00", bytes(8)):
        assert verify(block, txn.ksn) is PinCheck.FORMAT_ERROR


# --- Properties: the verdict, never an exception ------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    pin=st.text(alphabet="0123456789", min_size=4, max_size=12),
    other=st.text(alphabet="0123456789", min_size=4, max_size=12),
    pan=st.text(alphabet="0123456789", min_size=13, max_size=19),
    steps=st.integers(min_value=0, max_value=12),
)
def test_dukpt_round_trips(pin: str, other: str, pan: str, steps: int) -> None:
    hsm = SoftHsm(Vault(bytes(32)))
    sealed_pvk, pvv = card(hsm, pan, pin)
    same = len(other) == len(pin) and hsm.issue_pin(sealed_pvk, pan, other) == pvv
    for kind, scheme, serial, load in (
        (BdkKind.TDES, PinScheme.TDES_DUKPT_ISO0, TDES_INITIAL_KSN, TdesDukptRegister.load),
        (BdkKind.AES128, PinScheme.AES_DUKPT_ISO4, AES_IKID, AesDukptRegister.load),
    ):
        sealed_bdk, _ = hsm.new_bdk(kind)
        register = load(hsm.derive_initial_key(kind, sealed_bdk, serial)[0], serial)  # type: ignore[operator]
        for _ in range(steps):
            register.next_transaction()
        txn = register.next_transaction()
        for candidate, want in (
            (pin, PinCheck.OK),
            (other, PinCheck.OK if same else PinCheck.WRONG),
        ):
            block = txn.encrypt_pin(candidate, pan)
            got = hsm.verify_pin_under(scheme, sealed_bdk, block, pan, sealed_pvk, pvv, ksn=txn.ksn)
            assert got is want


@settings(max_examples=60, deadline=None)
@given(
    scheme=st.sampled_from([PinScheme.TDES_DUKPT_ISO0, PinScheme.AES_DUKPT_ISO4]),
    block=st.binary(max_size=33),
    ksn=st.binary(max_size=13),
    pan=st.text(alphabet="0123456789x", max_size=20),
)
def test_garbage_from_a_terminal_is_a_verdict(
    test_hsm: SoftHsm, scheme: PinScheme, block: bytes, ksn: bytes, pan: str
) -> None:
    kind = BdkKind.TDES if scheme is PinScheme.TDES_DUKPT_ISO0 else BdkKind.AES128
    sealed_bdk, _ = test_hsm.new_bdk(kind)
    sealed_pvk, pvv = card(test_hsm, CARD_PAN)
    result = test_hsm.verify_pin_under(scheme, sealed_bdk, block, pan, sealed_pvk, pvv, ksn=ksn)
    # Random bytes almost never decode; when they do the PIN is wrong. Either way a bare
    # verdict comes back: nothing that carries digits.
    assert result in (PinCheck.FORMAT_ERROR, PinCheck.WRONG)
    assert str(result) in {"format_error", "wrong"}
