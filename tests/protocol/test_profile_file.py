"""Profile files: what a user writes becomes a profile, and whatever is wrong in it is said
once, precisely — the file, the profile, the key — with nothing loaded."""

from __future__ import annotations

import datetime
import functools
import re
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from smartpos.keys.hsm import PinScheme
from smartpos.keys.mac import MacAlgorithm
from smartpos.protocol import codec
from smartpos.protocol.framing import LengthPrefix, Tpdu
from smartpos.protocol.profiles import (
    PROFILES,
    AcquirerProfile,
    KeyDelivery,
    ProfileError,
    TlsTrust,
    get_profile,
    load_profiles,
    resolve_profile,
)
from tests.protocol.test_dialects import ISO87B

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "profiles.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ProfileError) as failed:
        load_profiles(path)
    return str(failed.value)


# -- the built-ins ----------------------------------------------------------------------------


def test_the_built_in_profiles_are_what_they_were() -> None:
    """The four profiles that were Python before the file, setting for setting."""
    before = {
        "sandbox": AcquirerProfile("sandbox"),
        "sandbox-plain": AcquirerProfile("sandbox-plain", tls=False),
        "cup-ecb": AcquirerProfile(
            "cup-ecb", app_header_hex=None, mac_algorithm=MacAlgorithm.CUP_ECB
        ),
        "no-mac": AcquirerProfile("no-mac", mac_required=False),
    }
    for name, old in before.items():
        assert replace(get_profile(name), description="") == old, name
        assert get_profile(name).codec is codec.DEFAULT


def test_iso87_plain_is_plain() -> None:
    p = get_profile("iso87-plain")
    assert (p.tls, p.tpdu, p.app_header_hex, p.mac_required) == (False, False, None, False)
    assert p.key_delivery == KeyDelivery.NONE and p.length_prefix == LengthPrefix.BINARY_2
    assert p.dialect.dictionary == "iso87"
    assert p.framing.request(b"0800") == b"\x00\x040800"  # no TPDU, no header


@pytest.mark.parametrize(
    "first", ["smartpos.protocol.profile_file", "smartpos.protocol.profiles", "smartpos.cli"]
)
def test_the_modules_import_in_any_order(first: str) -> None:
    code = f"import {first}; from smartpos.protocol.profiles import get_profile as g; g('sandbox')"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# -- a user's file ----------------------------------------------------------------------------


def test_a_file_of_profiles_with_bases_in_it_and_built_in(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [profile.acme]
        base = "sandbox"
        description = "ACME bank"
        acquirer_id = "00012345"
        response_timeout_ms = 30000
        frame.host_nii = 0x0012
        frame.header = false
        mac.algorithm = "cup-ecb"

        [profile.acme.fields.48]
        type = "ans"
        encoding = "ascii"
        max = 999

        [profile.acme-test]
        base = "acme"
        tls.enabled = false
        frame.length = "ascii-4"

        [profile.acme-test.fields.48]
        max = 500
        """,
    )
    profiles = load_profiles(path)
    assert sorted(profiles) == ["acme", "acme-test"]
    acme, test = profiles["acme"], profiles["acme-test"]
    assert (acme.acquirer_id, acme.response_timeout_ms, acme.host_nii) == ("00012345", 30000, 18)
    assert acme.app_header_hex is None and acme.mac_algorithm == MacAlgorithm.CUP_ECB
    assert acme.source == str(path) and acme.tls
    assert acme.dialect.fields["48"].max == 999 and acme.dialect.fields["48"].type == "ans"
    # The child keeps everything of its base it does not change, field 48's type included.
    assert not test.tls and test.length_prefix == LengthPrefix.ASCII_4
    assert (test.acquirer_id, test.app_header_hex, test.host_nii) == ("00012345", None, 18)
    assert test.dialect.fields["48"].type == "ans" and test.dialect.fields["48"].max == 500
    assert test.framing.tpdu == Tpdu(0x0012, 0x0000)
    assert test.framing.request(b"MSG")[:4] == b"0008"  # 5 TPDU bytes + 3


def test_every_setting_of_the_file_reaches_the_profile(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text(_ca_pem())
    path = write(
        tmp_path,
        """
        [profile.full]
        base = "iso87-plain"
        connect_timeout_ms = 2000
        reversal_attempts_max = 5
        reversal_backoff_ms = 0
        contactless_no_cvm_limit_minor = 30000
        batch_max_transactions = 200
        tls = { enabled = true, trust = "ca", ca_file = "ca.pem", server_name = "acq.example" }
        frame = { length = "bcd-2", tpdu = true, host_nii = 3, terminal_nii = 4, header = "AB" }
        mac = { enabled = true, algorithm = "x9.19" }
        keys.delivery = "provisioning"
        pin = { scheme = "aes-dukpt-iso4", ksn_field = 63 }
        [profile.full.fields.52]
        max = 16
        """,
    )
    p = load_profiles(path)["full"]
    assert (p.connect_timeout_ms, p.reversal_attempts_max, p.reversal_backoff_ms) == (2000, 5, 0)
    assert (p.contactless_no_cvm_limit_minor, p.batch_max_transactions) == (30000, 200)
    assert p.tls and p.tls_trust == TlsTrust.CA and p.tls_server_name == "acq.example"
    assert p.tls_ca_file == str(ca.resolve())
    assert p.length_prefix == LengthPrefix.BCD_2 and p.framing.header == b"\xab"
    assert (p.tpdu, p.host_nii, p.terminal_nii) == (True, 3, 4)
    assert p.mac_required and p.key_delivery == KeyDelivery.PROVISIONING
    assert p.pin_scheme == PinScheme.AES_DUKPT_ISO4 and p.ksn_field == 63
    assert p.framing.request(b"0800") == bytes.fromhex("0010 6000030004 AB") + b"0800"


def test_a_pinned_fingerprint_may_be_written_as_openssl_prints_it(tmp_path: Path) -> None:
    colons = ":".join(["AB"] * 32)
    path = write(tmp_path, f'[profile.p]\nbase = "sandbox"\ntls.fingerprint = "{colons}"\n')
    assert load_profiles(path)["p"].tls_fingerprint == "ab" * 32


# -- what is wrong is named -------------------------------------------------------------------

BAD = [
    ("[profile.x]\nconnect_timeout = 1\n", "profile 'x': connect_timeout: unknown key"),
    ("[profile.x]\ntls.enable = false\n", "profile 'x': tls.enable: unknown key"),
    ('[profile.x]\nconnect_timeout_ms = "5000"\n', "connect_timeout_ms: must be a whole number"),
    ("[profile.x]\nconnect_timeout_ms = 0\n", "connect_timeout_ms: must be at least 1, not 0"),
    ("[profile.x]\nmac.enabled = 1\n", "mac.enabled: must be true or false, not 1"),
    ('[profile.x]\nframe.length = "ascii-2"\n', "frame.length: 'ascii-2' is not one of"),
    ('[profile.x]\nframe.header = "6031000"\n', "frame.header: the header is 1 to 32 bytes"),
    ("[profile.x]\nframe.header = true\n", "frame.header: give the header's bytes in hex"),
    ("[profile.x]\nframe.host_nii = 70000\n", "frame.host_nii: an NII is 2 bytes"),
    ('[profile.x]\nmac.algorithm = "cmac"\n', "mac.algorithm: 'cmac' is not one of"),
    ('[profile.x]\nkeys.delivery = "none"\n', "mac.enabled: a MAC needs a MAC key"),
    ('[profile.x]\npin.scheme = "aes-iso4"\n', "pin.scheme: aes-iso4 PIN blocks are 16 bytes"),
    ('[profile.x]\npin.scheme = "iso0"\n', "pin.scheme: 'iso0' is not one of ['tpk-iso0',"),
    ('[profile.x]\npin.block = "iso0"\n', "pin.block: unknown key"),
    ('[profile.x]\npin.scheme = "tdes-dukpt-iso0"\n', "pin.ksn_field: tdes-dukpt-iso0 PIN"),
    ("[profile.x]\npin.ksn_field = 53\n", "pin.ksn_field: a key serial number goes with a DUKPT"),
    (
        '[profile.x]\npin.scheme = "tdes-dukpt-iso0"\npin.ksn_field = 53\n',
        "field 53 (n, max 16) cannot hold them",
    ),
    ('[profile.x]\ntls.trust = "ca"\n', "tls.ca_file: trust = \"ca\" needs the CA"),
    ('[profile.x]\ntls.trust = "ca"\ntls.ca_file = "nope.pem"\n', "tls.ca_file: no such file"),
    ('[profile.x]\ntls.server_name = "a.example"\n', "tls.server_name: CA certificates and"),
    ('[profile.x]\ntls.fingerprint = "abc"\n', "tls.fingerprint: a SHA-256 fingerprint is 64"),
    ('[profile.x]\nacquirer_id = "12AB"\n', "acquirer_id: digits only"),
    ("[profile.x]\nbatch_max_transactions = 1000\n", "batch_max_transactions must be 1..999"),
    ('[profile.x]\nmessage.dictionary = "iso93"\n', "message.dictionary: unknown field dictionary"),
    ('[profile.x]\nmessage.mti = "binary"\n', "message.mti: 'binary' is not one of"),
    ('[profile.x]\nmessage.bcd = "yes"\n', "message.bcd: unknown key"),
    ('[profile.x.fields.41]\nencoding = "bcd"\n', "fields.41.encoding: an ans field is text"),
    ('[profile.x.fields.3]\nprefix = "ascii"\n', "fields.3.prefix: a fixed-length field has no"),
    ('[profile.x.fields.2]\ncounts = "bytes"\n', "fields.2.counts: a BCD length counts digits"),
    ("[profile.x.fields.99]\nmax = 1\n", "fields.99: fields 2–64 only"),
    ("[profile.x.fields.7]\nmax = 10\n", "fields.7.type: the field is not in the dictionary"),
    ("[profile.x]\nfields.3 = 6\n", "fields: field overrides are tables"),
    ('[profile.x.fields.64]\ntype = "ans"\n', "fields.64: field 64 must be an 8-byte b field"),
    ('[profile.x.fields.62]\ntype = "ans"\n', "keys.delivery: the sign-on answer carries"),
    ('[profile.x]\nbase = "nope"\n', "base: no profile 'nope' to start from; known: ["),
    ("[profile.x]\nbase = 3\n", "base: must be a string, not 3"),
    ('[profile.a]\nbase = "b"\n[profile.b]\nbase = "a"\n', "in a circle: a -> b -> a"),
    ('[profile.a]\nbase = "a"\n', "base: profiles inherit in a circle: a -> a"),
    ('[profile.sandbox]\nmac.enabled = false\n', "profile 'sandbox': the name is a built-in"),
    ('[profile."a b"]\n', "profile 'a b': a name is letters, digits"),
    ("[profiles.x]\n", "unknown top-level key 'profiles'"),
    ("[profile]\nx = 1\n", "profile 'x': must be a table"),
    ("[profile.x\n", "not valid TOML"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_a_defect_is_named_with_file_profile_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    message = error_of(path)
    assert message.startswith(f"{path}: "), message
    assert expected in message, message


def test_one_bad_profile_loads_nothing(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [profile.good]
        base = "sandbox"
        [profile.bad]
        base = "sandbox"
        mac.enabled = "no"
        """,
    )
    assert "profile 'bad': mac.enabled: must be true or false" in error_of(path)


def test_an_inherited_defect_names_the_profile_that_wrote_it(tmp_path: Path) -> None:
    path = write(tmp_path, '[profile.a]\nconnect_timeout_ms = -1\n[profile.b]\nbase = "a"\n')
    assert "profile 'a': connect_timeout_ms" in error_of(path)


def test_a_missing_or_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "none.toml"
    assert error_of(missing) == f"{missing}: no such profile file"
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe[profile.x]")
    assert error_of(binary) == f"{binary}: not UTF-8 text (byte 0)"


def test_an_empty_file_holds_no_profiles(tmp_path: Path) -> None:
    assert load_profiles(write(tmp_path, "# nothing yet\n")) == {}


# -- resolve_profile: built-ins and the user's file -------------------------------------------


def test_resolve_finds_built_ins_and_the_users_profiles(tmp_path: Path) -> None:
    assert resolve_profile("sandbox", tmp_path) is PROFILES["sandbox"]  # no file: built-ins
    write(tmp_path, '[profile.mine]\nbase = "iso87-plain"\nframe.length = "ascii-4"\n')
    assert resolve_profile("mine", tmp_path).length_prefix == LengthPrefix.ASCII_4
    assert resolve_profile("no-mac", tmp_path) is PROFILES["no-mac"]
    with pytest.raises(ProfileError, match=r"unknown acquirer profile 'other'.*\['mine'\]"):
        resolve_profile("other", tmp_path)
    with pytest.raises(ProfileError, match=r"unknown acquirer profile 'other'"):
        resolve_profile("other", None)


def test_resolve_with_a_file_named_by_a_setting(tmp_path: Path) -> None:
    path = write(tmp_path, '[profile.elsewhere]\nbase = "sandbox"\n', name="acq.toml")
    assert resolve_profile("elsewhere", None, profiles_file=path).source == str(path)
    with pytest.raises(ProfileError, match="no such profile file"):
        resolve_profile("sandbox", None, profiles_file=tmp_path / "gone.toml")


def test_a_broken_user_file_is_an_error_even_for_a_built_in_name(tmp_path: Path) -> None:
    write(tmp_path, "[profile.mine]\nmac.enabled = 3\n")
    with pytest.raises(ProfileError, match=r"profile 'mine': mac\.enabled"):
        resolve_profile("sandbox", tmp_path)


# -- docs/profiles.md -------------------------------------------------------------------------


def _toml_blocks() -> list[str]:
    text = (ROOT / "docs" / "profiles.md").read_text(encoding="utf-8")
    return re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL)


def test_every_example_in_the_profiles_document_loads(tmp_path: Path) -> None:
    blocks = _toml_blocks()
    assert len(blocks) >= 4
    (tmp_path / "acquirer-ca.pem").write_text(_ca_pem())
    loaded = {}
    for i, block in enumerate(blocks):
        path = write(tmp_path, block, name=f"example{i}.toml")
        profiles = load_profiles(path)
        assert profiles, block
        loaded.update(profiles)
    # The BCD example is the dialect the codec tests hold to jPOS's ISO87BPackager.
    assert loaded["iso87-bcd"].dialect == ISO87B
    assert loaded["plain-test-host"].codec is get_profile("iso87-plain").codec
    assert loaded["plain-test-host-in-full"].dialect == get_profile("iso87-plain").dialect


@functools.cache
def _ca_pem() -> str:
    """A self-signed CA certificate (the loader checks that the file holds a usable one)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test acquirer root")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()
