"""Soft HSM: key issuance, sign-on keys, MAC and PIN verification over sealed keys."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartpos.keys import (
    KeyCheckError,
    MacAlgorithm,
    PinCheck,
    PinError,
    SoftHsm,
    Vault,
    WorkingKeys,
    compute_mac,
    encrypt_pin_block,
    generate_key,
    kcv,
    unpack_f62,
    wrap_key,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning:psec"
)

TID = "12345678"
PAN = "6222021234567890123"
PIN = "4321"


class Terminal:
    """What the terminal side holds after provisioning and sign-on."""

    def __init__(self, hsm: SoftHsm, tid: str = TID) -> None:
        self.sealed_tmk, self.tmk, self.tmk_kcv = hsm.new_tmk(tid)
        self.sealed_tpk, self.sealed_tak, f62 = hsm.new_working_keys(tid, self.sealed_tmk)
        self.keys: WorkingKeys = unpack_f62(self.tmk, f62)


@pytest.fixture(scope="module")
def vault() -> Vault:
    return Vault(bytes(range(32)))


@pytest.fixture(scope="module")
def hsm(vault: Vault) -> SoftHsm:
    return SoftHsm(vault)


@pytest.fixture(scope="module")
def terminal(hsm: SoftHsm) -> Terminal:
    return Terminal(hsm)


@pytest.fixture(scope="module")
def card(hsm: SoftHsm) -> tuple[bytes, str]:
    sealed_pvk = hsm.new_pvk()
    return sealed_pvk, hsm.issue_pin(sealed_pvk, PAN, PIN)


def test_new_tmk_is_sealed_for_its_terminal(vault: Vault, hsm: SoftHsm) -> None:
    sealed, clear, check = hsm.new_tmk(TID)
    assert check == kcv(clear)
    assert clear not in sealed
    assert vault.unseal(sealed, b"tmk:" + TID.encode()) == clear
    with pytest.raises(KeyCheckError):
        vault.unseal(sealed, b"tmk:87654321")


def test_sign_on_delivers_the_sealed_working_keys(vault: Vault, terminal: Terminal) -> None:
    assert vault.unseal(terminal.sealed_tpk, b"tpk:" + TID.encode()) == terminal.keys.tpk
    assert vault.unseal(terminal.sealed_tak, b"tak:" + TID.encode()) == terminal.keys.tak
    assert terminal.keys.tpk != terminal.keys.tak


def test_working_keys_need_the_terminals_own_tmk(hsm: SoftHsm, terminal: Terminal) -> None:
    with pytest.raises(KeyCheckError):
        hsm.new_working_keys("87654321", terminal.sealed_tmk)


def test_issue_pin_is_the_ibm3624_offset(vault: Vault, hsm: SoftHsm) -> None:
    # Cross-check with psec's IBM 3624 offset over the 12 PAN digits left of the check digit.
    from psec.pin import generate_ibm3624_offset

    pvk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    sealed_pvk = vault.seal(pvk, b"pvk")
    pan = "6212340000000000017"
    want = generate_ibm3624_offset(pvk, "0123456789012345", "123456", pan, 6, 12, "F")
    assert hsm.issue_pin(sealed_pvk, pan, "123456") == want
    assert len(want) == 6


def test_six_digit_pins_verify(hsm: SoftHsm, terminal: Terminal) -> None:
    sealed_pvk = hsm.new_pvk()
    offset = hsm.issue_pin(sealed_pvk, PAN, "123456")
    good = encrypt_pin_block(terminal.keys.tpk, "123456", PAN)
    bad = encrypt_pin_block(terminal.keys.tpk, "123457", PAN)
    short = encrypt_pin_block(terminal.keys.tpk, "1234", PAN)
    assert hsm.verify_pin(TID, terminal.sealed_tpk, good, PAN, sealed_pvk, offset) is PinCheck.OK
    assert hsm.verify_pin(TID, terminal.sealed_tpk, bad, PAN, sealed_pvk, offset) is PinCheck.WRONG
    assert hsm.verify_pin(TID, terminal.sealed_tpk, short, PAN, sealed_pvk, offset) is (
        PinCheck.WRONG
    )


@pytest.mark.parametrize("pin", ["123", "1234567890123", "12a4"])
def test_issue_pin_needs_4_to_12_digits(hsm: SoftHsm, card: tuple[bytes, str], pin: str) -> None:
    with pytest.raises(PinError):
        hsm.issue_pin(card[0], PAN, pin)


@pytest.mark.parametrize("algorithm", list(MacAlgorithm))
def test_mac_from_terminal_verifies_at_host(
    hsm: SoftHsm, terminal: Terminal, algorithm: MacAlgorithm
) -> None:
    data = b"\x02\x00" + b"purchase 000000001234"
    mac = compute_mac(algorithm, terminal.keys.tak, data)
    assert hsm.generate_mac(TID, terminal.sealed_tak, algorithm, data) == mac
    assert hsm.verify_mac(TID, terminal.sealed_tak, algorithm, data, mac)
    tampered = data[:-1] + b"5"
    assert not hsm.verify_mac(TID, terminal.sealed_tak, algorithm, tampered, mac)
    assert not hsm.verify_mac(TID, terminal.sealed_tak, algorithm, data, mac[:4])


def test_keys_cannot_swap_slots_even_when_cached(
    hsm: SoftHsm, terminal: Terminal, card: tuple[bytes, str]
) -> None:
    sealed_pvk, pvv = card
    block = encrypt_pin_block(terminal.keys.tak, PIN, PAN)
    # Warm the cache with the TAK blob in its rightful slot first.
    hsm.generate_mac(TID, terminal.sealed_tak, MacAlgorithm.X919, b"x")
    with pytest.raises(KeyCheckError):
        hsm.verify_pin(TID, terminal.sealed_tak, block, PAN, sealed_pvk, pvv)
    with pytest.raises(KeyCheckError):
        hsm.verify_mac("87654321", terminal.sealed_tak, MacAlgorithm.X919, b"x", bytes(8))
    with pytest.raises(KeyCheckError):
        hsm.verify_pin(TID, terminal.sealed_tpk, block, PAN, terminal.sealed_tmk, pvv)


def test_tampered_sealed_key_is_rejected(hsm: SoftHsm, terminal: Terminal) -> None:
    tampered = bytearray(terminal.sealed_tak)
    tampered[-1] ^= 1
    with pytest.raises(KeyCheckError):
        hsm.verify_mac(TID, bytes(tampered), MacAlgorithm.X919, b"x", bytes(8))


def test_right_pin_is_ok_wrong_pin_is_wrong(
    hsm: SoftHsm, terminal: Terminal, card: tuple[bytes, str]
) -> None:
    sealed_pvk, pvv = card
    right = encrypt_pin_block(terminal.keys.tpk, PIN, PAN)
    wrong = encrypt_pin_block(terminal.keys.tpk, "4322", PAN)
    longer = encrypt_pin_block(terminal.keys.tpk, PIN + "00", PAN)
    args = (PAN, sealed_pvk, pvv)
    assert hsm.verify_pin(TID, terminal.sealed_tpk, right, *args) is PinCheck.OK
    assert hsm.verify_pin(TID, terminal.sealed_tpk, wrong, *args) is PinCheck.WRONG
    assert hsm.verify_pin(TID, terminal.sealed_tpk, longer, *args) is PinCheck.WRONG


def test_malformed_blocks_are_format_errors(
    hsm: SoftHsm, terminal: Terminal, card: tuple[bytes, str]
) -> None:
    sealed_pvk, pvv = card
    tpk = terminal.keys.tpk
    pan_field = bytes.fromhex("0000" + PAN[-13:-1])

    def clear_block(hex_block: str) -> bytes:
        clear = bytes(a ^ b for a, b in zip(bytes.fromhex(hex_block), pan_field, strict=True))
        return wrap_key(tpk, clear)  # TDES-ECB under the TPK, as a terminal would send it

    cases = {
        "right PIN, wrong control nibble": clear_block("144321FFFFFFFFFF"),
        "PIN length 3": clear_block("03432FFFFFFFFFFF"),
        "PIN length 13": clear_block("0D4321432143214F"),
        "bad filler": clear_block("044321FFFFFFFFFE"),
        "non-digit PIN": clear_block("04432AFFFFFFFFFF"),
        "seven bytes": encrypt_pin_block(tpk, PIN, PAN)[:7],
        "nine bytes": encrypt_pin_block(tpk, PIN, PAN) + b"\x00",
    }
    assert (
        hsm.verify_pin(
            TID, terminal.sealed_tpk, clear_block("044321FFFFFFFFFF"), PAN, sealed_pvk, pvv
        )
        is PinCheck.OK
    )  # the helper itself builds valid blocks
    for name, block in cases.items():
        result = hsm.verify_pin(TID, terminal.sealed_tpk, block, PAN, sealed_pvk, pvv)
        assert result is PinCheck.FORMAT_ERROR, name


def test_malformed_pan_is_a_format_error(
    hsm: SoftHsm, terminal: Terminal, card: tuple[bytes, str]
) -> None:
    sealed_pvk, pvv = card
    block = encrypt_pin_block(terminal.keys.tpk, PIN, PAN)
    for pan in ("", "123", "62220212345678901x3"):
        result = hsm.verify_pin(TID, terminal.sealed_tpk, block, pan, sealed_pvk, pvv)
        assert result is PinCheck.FORMAT_ERROR


def test_block_for_another_pan_or_key_never_passes(
    hsm: SoftHsm, terminal: Terminal, card: tuple[bytes, str]
) -> None:
    sealed_pvk, pvv = card
    other_pan = encrypt_pin_block(terminal.keys.tpk, PIN, "6222029999999999993")
    other_key = encrypt_pin_block(generate_key(), PIN, PAN)
    for block in (other_pan, other_key):
        result = hsm.verify_pin(TID, terminal.sealed_tpk, block, PAN, sealed_pvk, pvv)
        assert result in (PinCheck.WRONG, PinCheck.FORMAT_ERROR)


def test_bad_issuer_data_raises(hsm: SoftHsm, terminal: Terminal, card: tuple[bytes, str]) -> None:
    sealed_pvk, pvv = card
    block = encrypt_pin_block(terminal.keys.tpk, PIN, PAN)
    with pytest.raises(PinError):
        hsm.verify_pin(TID, terminal.sealed_tpk, block, PAN, sealed_pvk, "12a4")
    with pytest.raises(PinError):
        hsm.verify_pin(TID, terminal.sealed_tpk, block, PAN, sealed_pvk, pvv, pvki="10")


def test_format_error_leaks_nothing(
    hsm: SoftHsm, terminal: Terminal, card: tuple[bytes, str]
) -> None:
    # The result is a bare enum value: no message, no chained exception carrying digits.
    sealed_pvk, pvv = card
    garbage = bytes(8)
    result = hsm.verify_pin(TID, terminal.sealed_tpk, garbage, PAN, sealed_pvk, pvv)
    assert result in (PinCheck.FORMAT_ERROR, PinCheck.WRONG)
    assert str(result) in {"format_error", "wrong"}


@settings(max_examples=40, deadline=None)
@given(
    pin=st.text(alphabet="0123456789", min_size=4, max_size=12),
    other=st.text(alphabet="0123456789", min_size=4, max_size=12),
    pan=st.text(alphabet="0123456789", min_size=16, max_size=19),
)
def test_pin_verification_property(pin: str, other: str, pan: str) -> None:
    hsm = SoftHsm(Vault(bytes(32)))
    terminal = Terminal(hsm, tid="PROP0001")
    sealed_pvk = hsm.new_pvk()
    pvv = hsm.issue_pin(sealed_pvk, pan, pin)
    block = encrypt_pin_block(terminal.keys.tpk, pin, pan)
    assert hsm.verify_pin("PROP0001", terminal.sealed_tpk, block, pan, sealed_pvk, pvv) is (
        PinCheck.OK
    )
    other_block = encrypt_pin_block(terminal.keys.tpk, other, pan)
    same = len(other) == len(pin) and hsm.issue_pin(sealed_pvk, pan, other) == pvv
    expected = PinCheck.OK if same else PinCheck.WRONG
    result = hsm.verify_pin("PROP0001", terminal.sealed_tpk, other_block, pan, sealed_pvk, pvv)
    assert result is expected
