"""Assemble and set up the sandbox host: database, keys, test cards, merchants, terminals."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, select

from smartpos.cards import PanTokenizer, brand_of, mask_pan
from smartpos.config import Settings
from smartpos.db.engine import make_engine
from smartpos.db.migrate import upgrade
from smartpos.files import private_dir
from smartpos.host import ledger
from smartpos.host.processor import Processor
from smartpos.host.tables import cards, merchants, settings_kv, terminals
from smartpos.host.testcards import CATALOGUE, TestCard
from smartpos.keys import dukpt
from smartpos.keys.hsm import BdkKind, PinScheme, SoftHsm
from smartpos.keys.vault import Vault

FUNDING_ACCOUNT = "issuer:funding"
# DUKPT (docs/pin-security.md): one BDK per family, kept sealed in the host's settings, and
# the key set it names in every KSN: TDES key set ID (5 bytes), AES BDK ID (4 bytes). Each
# terminal provisioned on a DUKPT profile gets the next device (TDES) or derivation (AES)
# ID, never one given before: re-provisioning a terminal never repeats its initial key,
# so none of its counters is used twice.
_BDKS = {
    PinScheme.TDES_DUKPT_ISO0: ("sealed_bdk_tdes", BdkKind.TDES),
    PinScheme.AES_DUKPT_ISO4: ("sealed_bdk_aes128", BdkKind.AES128),
}
TDES_KEY_SET_ID = bytes.fromhex("FFFF000001")
AES_BDK_ID = bytes.fromhex("00000001")
_DUKPT_DEVICES = "dukpt_devices"


@dataclass
class HostRuntime:
    engine: Engine
    vault: Vault
    hsm: SoftHsm
    tokenizer: PanTokenizer
    sealed_pvk: bytes
    host_dir: Path

    def processor(
        self,
        fingerprinted: tuple[str, ...] | None = None,
        *,
        pin_scheme: PinScheme = PinScheme.TPK_ISO0,
        ksn_field: int | None = None,
        keys_at_signon: bool = True,
    ) -> Processor:
        """The request processor; ``fingerprinted``: the dialect's fields that make two
        requests the same (default: the CUP dialect's); ``pin_scheme`` and ``ksn_field``:
        the profile's PIN scheme and the field of a DUKPT request's KSN."""
        sealed_bdk = None
        if pin_scheme in _BDKS:
            with self.engine.begin() as conn:
                sealed_bdk = host_bdk(self, conn, pin_scheme)
        return Processor(
            self.hsm,
            self.tokenizer,
            self.sealed_pvk,
            fingerprinted=fingerprinted,
            pin_scheme=pin_scheme,
            ksn_field=ksn_field,
            sealed_bdk=sealed_bdk,
            keys_at_signon=keys_at_signon,
        )


def _setting(conn: Connection, vault: Vault, name: str, make: bytes) -> bytes:
    """A secret kept in the host database, sealed under the host's vault."""
    row = conn.execute(select(settings_kv.c.value).where(settings_kv.c.name == name)).scalar()
    if row is None:
        conn.execute(settings_kv.insert().values(name=name, value=vault.seal(make, name.encode())))
        return make
    return vault.unseal(row, name.encode())


def host_bdk(rt: HostRuntime, conn: Connection, scheme: PinScheme) -> bytes:
    """The host's BDK (sealed by the soft HSM) for DUKPT ``scheme``, made on first use."""
    name, kind = _BDKS[scheme]
    row = conn.execute(select(settings_kv.c.value).where(settings_kv.c.name == name)).scalar()
    if row is not None:
        return rt.vault.unseal(row, name.encode())
    sealed, _ = rt.hsm.new_bdk(kind)
    conn.execute(settings_kv.insert().values(name=name, value=rt.vault.seal(sealed, name.encode())))
    return sealed


def _next_device_id(conn: Connection) -> int:
    """A device / derivation ID not given to any terminal before (from 1)."""
    row = conn.execute(
        select(settings_kv.c.value).where(settings_kv.c.name == _DUKPT_DEVICES)
    ).scalar()
    device = 1 if row is None else int(bytes(row).decode("ascii")) + 1
    if row is None:
        conn.execute(settings_kv.insert().values(name=_DUKPT_DEVICES, value=b"1"))
    else:
        conn.execute(
            settings_kv.update()
            .where(settings_kv.c.name == _DUKPT_DEVICES)
            .values(value=str(device).encode("ascii"))
        )
    return device


def _initial_ksn(scheme: PinScheme, device: int) -> bytes:
    if scheme is PinScheme.TDES_DUKPT_ISO0:
        if device >= 1 << 19:
            raise ValueError("this TDES key set has no device ID left: a new BDK is needed")
        return dukpt.tdes_initial_ksn(TDES_KEY_SET_ID, device)
    return AES_BDK_ID + device.to_bytes(4, "big")


def open_host(settings: Settings, *, durable: bool = True) -> HostRuntime:
    """Open (creating and migrating on first use) the host database and key material."""
    host_dir = private_dir(settings.host_dir)
    engine = make_engine(settings.resolved_host_db_url, durable=durable)
    upgrade(engine, "host")
    vault = Vault.open_dir(host_dir)
    hsm = SoftHsm(vault)
    with engine.begin() as conn:
        token_key = _setting(conn, vault, "pan_token_key", os.urandom(32))
        sealed_pvk = _setting(conn, vault, "sealed_pvk", hsm.new_pvk())
        if (
            conn.execute(
                select(settings_kv.c.name).where(settings_kv.c.name == "funding_account")
            ).first()
            is None
        ):
            ledger.create_account(conn, FUNDING_ACCOUNT, "control", must_not_overdraw=False)
            conn.execute(settings_kv.insert().values(name="funding_account", value=b"1"))
    return HostRuntime(engine, vault, hsm, PanTokenizer(token_key), sealed_pvk, host_dir)


def issue_card(rt: HostRuntime, conn: Connection, card: TestCard) -> bool:
    """Issue a card (idempotent): account, opening balance, PIN offset. False if it exists."""
    token = rt.tokenizer.token(card.pan)
    if conn.execute(select(cards.c.token).where(cards.c.token == token)).first() is not None:
        return False
    acct = ledger.create_account(conn, f"card:{token}", "card", must_not_overdraw=True)
    if card.balance_minor:
        ledger.transfer(
            conn,
            f"open:{token}",
            ledger.account_id(conn, FUNDING_ACCOUNT),
            acct,
            card.balance_minor,
            "opening",
        )
    conn.execute(
        cards.insert().values(
            token=token,
            pan_masked=mask_pan(card.pan),
            brand=brand_of(card.pan).value,
            card_kind=card.card_kind,
            expiry=card.expiry,
            status=card.status,
            pin_required=card.pin_required,
            pvv=rt.hsm.issue_pin(rt.sealed_pvk, card.pan, card.pin),
            pvki="1",
            pin_tries=0,
            account_id=acct,
            label=card.label,
        )
    )
    return True


def seed_test_cards(rt: HostRuntime) -> int:
    with rt.engine.begin() as conn:
        return sum(issue_card(rt, conn, card) for card in CATALOGUE)


def ensure_merchant(rt: HostRuntime, mid: str, name: str) -> None:
    with rt.engine.begin() as conn:
        if conn.execute(select(merchants.c.mid).where(merchants.c.mid == mid)).first():
            return
        acct = ledger.create_account(conn, f"merchant:{mid}", "merchant", must_not_overdraw=False)
        conn.execute(merchants.insert().values(mid=mid, name=name, account_id=acct))


@dataclass(frozen=True)
class Provisioned:
    tid: str
    mid: str
    tmk: bytes  # clear: handed to the terminal's key loading, never stored in clear
    tmk_kcv: bytes
    # The PIN key of a scheme other than tpk-iso0, in clear for the same ceremony, with its
    # check value: the AES PIN key (aes-iso4), or the DUKPT initial key and the initial KSN
    # (TDES, 10 bytes) or initial key ID (AES, 8 bytes) it was derived for.
    pin_key: bytes | None = None
    pin_key_kcv: bytes | None = None
    initial_ksn: bytes | None = None
    # A profile whose working keys come with the TMK (keys.delivery = "provisioning"): the
    # TPK and TAK wrapped under the TMK with their check values, as sign-on's field 62.
    working_keys: bytes | None = None


def terminal_tmk_kcv(rt: HostRuntime, tid: str) -> bytes | None:
    """The check value of the TMK the host holds for ``tid`` (None: not registered)."""
    with rt.engine.connect() as conn:
        sealed = conn.execute(select(terminals.c.sealed_tmk).where(terminals.c.tid == tid)).scalar()
    return None if sealed is None else rt.hsm.tmk_kcv(tid, sealed)


def provision_terminal(
    rt: HostRuntime,
    tid: str,
    mid: str,
    pin_scheme: PinScheme = PinScheme.TPK_ISO0,
    *,
    aes_bits: int = 128,
    working_keys: bool = False,
) -> Provisioned:
    """Register terminal ``tid`` for merchant ``mid`` with a fresh TMK (re-keys if it exists)
    and, for a profile whose ``pin_scheme`` needs one, its PIN key: a new AES PIN key of
    ``aes_bits`` (aes-iso4, kept sealed), or a DUKPT initial key for a new initial KSN
    (the host keeps only the BDK and the KSN)."""
    if len(tid) != 8 or len(mid) != 15:
        raise ValueError("terminal ID must be 8 characters and merchant ID 15")
    pin_scheme = PinScheme(pin_scheme)
    sealed_tmk, tmk, kcv = rt.hsm.new_tmk(tid)
    # keys.delivery = "provisioning": the working keys are made now and loaded with the TMK.
    sealed_tpk = sealed_tak = f62 = None
    if working_keys:
        sealed_tpk, sealed_tak, f62 = rt.hsm.new_working_keys(tid, sealed_tmk)
    pin: dict[str, bytes | None] = {"pin_key": None, "pin_key_kcv": None, "initial_ksn": None}
    sealed_pin_key = None
    if pin_scheme is PinScheme.AES_ISO4:
        sealed_pin_key, pin["pin_key"], pin["pin_key_kcv"] = rt.hsm.new_aes_pin_key(tid, aes_bits)
    with rt.engine.begin() as conn:
        if conn.execute(select(merchants.c.mid).where(merchants.c.mid == mid)).first() is None:
            raise ValueError(f"unknown merchant {mid}")
        if pin_scheme in _BDKS:
            sealed_bdk = host_bdk(rt, conn, pin_scheme)
            initial_ksn = _initial_ksn(pin_scheme, _next_device_id(conn))
            pin["pin_key"], pin["pin_key_kcv"] = rt.hsm.derive_initial_key(
                _BDKS[pin_scheme][1], sealed_bdk, initial_ksn
            )
            pin["initial_ksn"] = initial_ksn
        exists = conn.execute(select(terminals.c.tid).where(terminals.c.tid == tid)).first()
        values = {
            "mid": mid,
            "status": "active",
            "sealed_tmk": sealed_tmk,
            "sealed_tpk": sealed_tpk,
            "sealed_tak": sealed_tak,
            "signed_on_at": None,
            "signon_stan": None,  # a new TMK: sign-ons under the old one cannot verify anyway
            "sealed_pin_key": sealed_pin_key,
            "initial_ksn": pin["initial_ksn"],
            "dukpt_counter": None,
        }
        if exists:
            conn.execute(terminals.update().where(terminals.c.tid == tid).values(**values))
        else:
            conn.execute(terminals.insert().values(tid=tid, **values))
    return Provisioned(tid, mid, tmk, kcv, **pin, working_keys=f62)
