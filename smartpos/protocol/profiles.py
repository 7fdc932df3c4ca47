"""Acquirer profiles: what real acquirers differ in, kept as data.

A profile says how the terminal reaches its acquirer and how the two talk: TLS and whom to
trust, the frame (length prefix, TPDU, application header), the MAC, how working keys
arrive, the PIN block, timeouts and limits, and the dialect — which ISO 8583 fields exist
and how each travels (:mod:`smartpos.protocol.dialect`). The built-in profiles live in
``builtin_profiles.toml`` beside this module; a user adds their own in
``SMARTPOS_HOME/profiles.toml`` in the same format (docs/profiles.md), and
:func:`resolve_profile` finds a name in either. A profile is checked whole when it is made,
from a file or in Python: a combination that cannot work (a MAC with no keys to compute it,
a 16-byte format 4 PIN block in an 8-byte field 52) is a :class:`ProfileError` naming the setting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from smartpos.keys.dukpt import AES_KSN_LEN, TDES_KSN_LEN
from smartpos.keys.hsm import PinScheme
from smartpos.keys.mac import MacAlgorithm
from smartpos.protocol.codec import Codec, codec_for
from smartpos.protocol.dialect import DEFAULT_DIALECT, Dialect
from smartpos.protocol.formats import FieldType, LengthType
from smartpos.protocol.framing import MAX_FRAME_BYTES, Framing, LengthPrefix, Tpdu
from smartpos.protocol.messages import TOTALS_COUNT_MAX

USER_PROFILES_FILE = "profiles.toml"
HEADER_MAX_BYTES = 32
# What each PIN scheme puts in field 52, and the key serial number DUKPT sends beside it.
PIN_BLOCK_BYTES = {
    PinScheme.TPK_ISO0: 8,
    PinScheme.AES_ISO4: 16,
    PinScheme.TDES_DUKPT_ISO0: 8,
    PinScheme.AES_DUKPT_ISO4: 16,
}
KSN_BYTES = {PinScheme.TDES_DUKPT_ISO0: TDES_KSN_LEN, PinScheme.AES_DUKPT_ISO4: AES_KSN_LEN}
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


class ProfileError(ValueError):
    """A profile that cannot be used. ``key`` names the setting at fault, as a profile file
    writes it (``mac.enabled``, ``fields.35.counts``), when there is one."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message if key is None else f"{key}: {message}")
        self.key = key
        self.reason = message


class KeyDelivery(StrEnum):
    """How the terminal gets its working keys (TPK for PINs, TAK for MACs)."""

    SIGNON_F62 = "signon-f62"  # under the TMK in the sign-on answer's field 62 (CUP)
    PROVISIONING = "provisioning"  # loaded with the TMK when the terminal is provisioned
    NONE = "none"  # none: no MAC, and PINs only under a scheme that needs none (DUKPT)


class TlsTrust(StrEnum):
    """Whom the terminal trusts at the handshake."""

    PINNED = "pinned"  # the host certificate's SHA-256 fingerprint (self-signed hosts)
    CA = "ca"  # a chain to the CA certificates in ``tls_ca_file``, and the host name


@dataclass(frozen=True, slots=True)
class AcquirerProfile:
    name: str
    # TPDU NIIs: the terminal sends to ``host_nii`` from ``terminal_nii``.
    host_nii: int = 0x0001
    terminal_nii: int = 0x0000
    # Application header (hex) sent after the TPDU; None = no header.
    app_header_hex: str | None = "603100000000"
    mac_required: bool = True
    mac_algorithm: MacAlgorithm = MacAlgorithm.X919
    # Field 32 acquiring institution code.
    acquirer_id: str = "00049999"
    connect_timeout_ms: int = 5_000
    response_timeout_ms: int = 10_000
    reversal_attempts_max: int = 3
    reversal_backoff_ms: int = 500
    # TLS on the link (real acquirers: always; a plain local bench may turn it off).
    tls: bool = True
    # Contactless (QuickPass) sales up to this amount need no PIN and no signature
    # (UnionPay's small-amount no-PIN/no-signature service, 小额免密免签: CNY 1,000.00).
    contactless_no_cvm_limit_minor: int = 100_000
    # Sales and refunds a batch holds before the terminal settles it by itself: field 48
    # counts each group's sales and refunds in three digits (protocol.md §6.5), and a batch
    # the host cannot total is one it cannot settle.
    batch_max_transactions: int = 500
    # The frame: a 5-byte TPDU after the length prefix, or none.
    tpdu: bool = True
    length_prefix: LengthPrefix = LengthPrefix.BINARY_2
    # TLS trust. Pinned: ``tls_fingerprint`` if the profile pins one, else the fingerprint
    # the terminal was set up with. CA: ``tls_ca_file`` and the host name (or
    # ``tls_server_name``) are checked as browsers do.
    tls_trust: TlsTrust = TlsTrust.PINNED
    tls_fingerprint: str | None = None
    tls_ca_file: str | None = None
    tls_server_name: str | None = None
    key_delivery: KeyDelivery = KeyDelivery.SIGNON_F62
    # How PIN blocks are made and encrypted (docs/pin-security.md).
    pin_scheme: PinScheme = PinScheme.TPK_ISO0
    # The field that carries the DUKPT key serial number (DUKPT schemes only).
    ksn_field: int | None = None
    dialect: Dialect = DEFAULT_DIALECT
    description: str = ""
    # Where the profile was defined: "built-in" or the file's path (named in errors).
    source: str = "built-in"
    codec: Codec = field(init=False, repr=False, compare=False)
    framing: Framing = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.batch_max_transactions <= TOTALS_COUNT_MAX:
            raise ProfileError(
                f"batch_max_transactions must be 1..{TOTALS_COUNT_MAX} (field 48 counts in "
                f"three digits), not {self.batch_max_transactions}"
            )
        self._check_numbers()
        self._check_frame()
        self._check_tls()
        codec = codec_for(self.dialect)
        self._check_keys(codec)
        object.__setattr__(self, "codec", codec)
        object.__setattr__(
            self,
            "framing",
            Framing(
                self.length_prefix,
                Tpdu(self.host_nii, self.terminal_nii) if self.tpdu else None,
                self.app_header,
                MAX_FRAME_BYTES,
            ),
        )

    @property
    def header_len(self) -> int:
        return 0 if self.app_header_hex is None else len(bytes.fromhex(self.app_header_hex))

    @property
    def app_header(self) -> bytes:
        return b"" if self.app_header_hex is None else bytes.fromhex(self.app_header_hex)

    def _check_numbers(self) -> None:
        for key, value, low in (
            ("connect_timeout_ms", self.connect_timeout_ms, 1),
            ("response_timeout_ms", self.response_timeout_ms, 1),
            ("reversal_attempts_max", self.reversal_attempts_max, 1),
            ("reversal_backoff_ms", self.reversal_backoff_ms, 0),
            ("contactless_no_cvm_limit_minor", self.contactless_no_cvm_limit_minor, 0),
        ):
            if value < low:
                raise ProfileError(f"must be at least {low}, not {value}", key=key)
        if not (self.acquirer_id.isascii() and self.acquirer_id.isdigit()):
            raise ProfileError(
                f"digits only (field 32), not {self.acquirer_id!r}", key="acquirer_id"
            )
        f32 = self.dialect.fields.get("32")
        if f32 is not None and len(self.acquirer_id) > f32.max:
            raise ProfileError(
                f"field 32 holds at most {f32.max} digits, not {len(self.acquirer_id)}",
                key="acquirer_id",
            )

    def _check_frame(self) -> None:
        for key, nii in (
            ("frame.host_nii", self.host_nii),
            ("frame.terminal_nii", self.terminal_nii),
        ):
            if not 0 <= nii <= 0xFFFF:
                raise ProfileError(f"an NII is 2 bytes (0 to 0xFFFF), not {nii}", key=key)
        if self.app_header_hex is not None:
            text = self.app_header_hex
            hex_only = re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", text) is not None
            if not hex_only or len(text) > 2 * HEADER_MAX_BYTES:
                raise ProfileError(
                    f"the header is 1 to {HEADER_MAX_BYTES} bytes written in hex (or false "
                    f"for none), not {self.app_header_hex!r}",
                    key="frame.header",
                )

    def _check_tls(self) -> None:
        if self.tls_fingerprint is not None and not _FINGERPRINT.fullmatch(self.tls_fingerprint):
            raise ProfileError(
                "a SHA-256 fingerprint is 64 lower-case hex digits", key="tls.fingerprint"
            )
        if self.tls_trust == TlsTrust.CA:
            if not self.tls_ca_file:
                raise ProfileError(
                    'trust = "ca" needs the CA certificates (tls.ca_file)', key="tls.ca_file"
                )
            if self.tls_fingerprint is not None:
                raise ProfileError('a fingerprint is for trust = "pinned"', key="tls.fingerprint")
        elif self.tls_ca_file is not None or self.tls_server_name is not None:
            key = "tls.ca_file" if self.tls_ca_file is not None else "tls.server_name"
            raise ProfileError('CA certificates and a server name are for trust = "ca"', key=key)

    def _check_keys(self, codec: Codec) -> None:
        formats = self.dialect.fields
        if self.mac_required:
            if self.key_delivery == KeyDelivery.NONE:
                raise ProfileError(
                    'a MAC needs a MAC key: keys.delivery "signon-f62" or "provisioning", '
                    "or mac.enabled = false",
                    key="mac.enabled",
                )
            if not codec.carries_mac:
                raise ProfileError(
                    "field 64 must be an 8-byte b field to carry the MAC", key="fields.64"
                )
        if self.key_delivery == KeyDelivery.SIGNON_F62:
            f62 = formats.get("62")
            if f62 is None or f62.type != FieldType.B or f62.length == LengthType.FIXED:
                raise ProfileError(
                    "the sign-on answer carries the keys as bytes in field 62: make it a "
                    'variable b field ([fields.62] type = "b")',
                    key="keys.delivery",
                )
        pin = self.pin_scheme
        size = PIN_BLOCK_BYTES[pin]
        f52 = formats.get("52")
        if (
            f52 is None
            or f52.type != FieldType.B
            or f52.length != LengthType.FIXED
            or f52.max != size
        ):
            raise ProfileError(
                f"{pin} PIN blocks are {size} bytes: field 52 must be b, fixed, max = {size}",
                key="pin.scheme",
            )
        if pin not in KSN_BYTES:
            if self.ksn_field is not None:
                raise ProfileError(
                    "a key serial number goes with a DUKPT scheme only", key="pin.ksn_field"
                )
            return
        ksn_bytes = KSN_BYTES[pin]
        if self.ksn_field is None:
            raise ProfileError(
                f"{pin} PIN blocks need the field that carries their KSN", key="pin.ksn_field"
            )
        fmt = formats.get(str(self.ksn_field))
        if fmt is None or self.ksn_field in (52, 64):
            raise ProfileError(
                f"field {self.ksn_field} cannot carry the KSN (not a field of this dialect, or "
                "the PIN block or MAC)",
                key="pin.ksn_field",
            )
        room = (
            fmt.max
            if fmt.type == FieldType.B
            else fmt.max // 2
            if fmt.type in (FieldType.AN, FieldType.ANS)
            else 0
        )
        if room < ksn_bytes:
            raise ProfileError(
                f"the {pin} KSN is {ksn_bytes} bytes; field {self.ksn_field} ({fmt.type}, max "
                f"{fmt.max}) cannot hold them: it takes a b field of {ksn_bytes} bytes, or "
                f"text of {2 * ksn_bytes} hex digits",
                key="pin.ksn_field",
            )


@lru_cache(maxsize=1)
def builtin_profiles() -> dict[str, AcquirerProfile]:
    """The profiles shipped with smartpos (``builtin_profiles.toml``), read on first use."""
    from smartpos.protocol import profile_file  # builds on this module: imported late

    return profile_file.load_builtin()


# The built-in profiles by name (``PROFILES``, read on first use: module ``__getattr__``).
PROFILES: dict[str, AcquirerProfile]


def __getattr__(name: str) -> object:
    if name == "PROFILES":
        return builtin_profiles()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_profile(name: str) -> AcquirerProfile:
    """A built-in profile by name."""
    builtin = builtin_profiles()
    try:
        return builtin[name]
    except KeyError:
        raise ProfileError(f"unknown acquirer profile {name!r}; known: {sorted(builtin)}") from None


def load_profiles(path: Path) -> dict[str, AcquirerProfile]:
    """Every profile of the file at ``path`` (``[profile.<name>]`` tables; a ``base`` may be
    one of the same file or a built-in). Any defect is a ``ProfileError`` naming the file,
    the profile and the key, and nothing is loaded."""
    from smartpos.protocol import profile_file

    return profile_file.load_file(path)


def user_profiles_path(home: Path) -> Path:
    return home / USER_PROFILES_FILE


def resolve_profile(
    name: str, home: Path | None = None, *, profiles_file: Path | None = None
) -> AcquirerProfile:
    """The profile called ``name``: built in, or defined in the user's profile file —
    ``profiles_file`` when given (it must exist), else ``home/profiles.toml`` if there is
    one. A broken user file is an error even for a built-in name: it is better to hear of
    it than to run on a profile other than the one the user wrote."""
    path = profiles_file
    if path is None and home is not None and user_profiles_path(home).exists():
        path = user_profiles_path(home)
    if path is not None:
        mine = load_profiles(path)
        if name in mine:
            return mine[name]
        if name not in builtin_profiles():
            raise ProfileError(
                f"unknown acquirer profile {name!r}; built in: {sorted(builtin_profiles())}; "
                f"in {path}: {sorted(mine)}"
            )
    return get_profile(name)
