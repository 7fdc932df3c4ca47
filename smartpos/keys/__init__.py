"""Key management: key hierarchy, PIN blocks, MACs, keys at rest and the sandbox soft HSM."""

from smartpos.keys.hsm import PinCheck, SoftHsm
from smartpos.keys.keys import (
    KeyCheckError,
    WorkingKeys,
    generate_key,
    kcv,
    pack_f62,
    unpack_f62,
    unwrap_key,
    wrap_key,
)
from smartpos.keys.mac import MacAlgorithm, compute_mac, verify_mac
from smartpos.keys.pinblock import PinError, encrypt_pin_block
from smartpos.keys.vault import Vault

__all__ = [
    "KeyCheckError",
    "MacAlgorithm",
    "PinCheck",
    "PinError",
    "SoftHsm",
    "Vault",
    "WorkingKeys",
    "compute_mac",
    "encrypt_pin_block",
    "generate_key",
    "kcv",
    "pack_f62",
    "unpack_f62",
    "unwrap_key",
    "verify_mac",
    "wrap_key",
]
