"""Acquirer profiles: what real acquirers differ in, kept as data.

The sandbox profile is the default; a real acquirer gets its own entry (or a JSON file) with
its framing, MAC and timeout rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from smartpos.keys.mac import MacAlgorithm
from smartpos.protocol.messages import TOTALS_COUNT_MAX


class ProfileError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class AcquirerProfile:
    name: str
    # TPDU NIIs: the terminal sends to ``host_nii`` from ``terminal_nii``.
    host_nii: int = 0x0001
    terminal_nii: int = 0x0000
    # Application header (6 bytes, hex) sent after the TPDU; None = no header.
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

    def __post_init__(self) -> None:
        if not 1 <= self.batch_max_transactions <= TOTALS_COUNT_MAX:
            raise ProfileError(
                f"batch_max_transactions must be 1..{TOTALS_COUNT_MAX} (field 48 counts in "
                f"three digits), not {self.batch_max_transactions}"
            )

    @property
    def header_len(self) -> int:
        return 0 if self.app_header_hex is None else len(bytes.fromhex(self.app_header_hex))

    @property
    def app_header(self) -> bytes:
        return b"" if self.app_header_hex is None else bytes.fromhex(self.app_header_hex)


PROFILES: dict[str, AcquirerProfile] = {
    p.name: p
    for p in (
        AcquirerProfile("sandbox"),
        # The sandbox without TLS: a plain local bench, or a fault proxy that reads frames.
        AcquirerProfile("sandbox-plain", tls=False),
        # A host using the UnionPay POS "ECB" MAC and no application header.
        AcquirerProfile("cup-ecb", app_header_hex=None, mac_algorithm=MacAlgorithm.CUP_ECB),
        # A host that does not use a MAC (some private networks; PIN still encrypted).
        AcquirerProfile("no-mac", mac_required=False),
    )
}


def get_profile(name: str) -> AcquirerProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ProfileError(
            f"unknown acquirer profile {name!r}; known: {sorted(PROFILES)}"
        ) from None
