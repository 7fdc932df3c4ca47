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
from smartpos.keys.hsm import SoftHsm
from smartpos.keys.vault import Vault

FUNDING_ACCOUNT = "issuer:funding"


@dataclass
class HostRuntime:
    engine: Engine
    vault: Vault
    hsm: SoftHsm
    tokenizer: PanTokenizer
    sealed_pvk: bytes
    host_dir: Path

    def processor(self, fingerprinted: tuple[str, ...] | None = None) -> Processor:
        """The request processor; ``fingerprinted``: the dialect's fields that make two
        requests the same (default: the CUP dialect's)."""
        return Processor(self.hsm, self.tokenizer, self.sealed_pvk, fingerprinted=fingerprinted)


def _setting(conn: Connection, vault: Vault, name: str, make: bytes) -> bytes:
    """A secret kept in the host database, sealed under the host's vault."""
    row = conn.execute(select(settings_kv.c.value).where(settings_kv.c.name == name)).scalar()
    if row is None:
        conn.execute(settings_kv.insert().values(name=name, value=vault.seal(make, name.encode())))
        return make
    return vault.unseal(row, name.encode())


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


def terminal_tmk_kcv(rt: HostRuntime, tid: str) -> bytes | None:
    """The check value of the TMK the host holds for ``tid`` (None: not registered)."""
    with rt.engine.connect() as conn:
        sealed = conn.execute(select(terminals.c.sealed_tmk).where(terminals.c.tid == tid)).scalar()
    return None if sealed is None else rt.hsm.tmk_kcv(tid, sealed)


def provision_terminal(rt: HostRuntime, tid: str, mid: str) -> Provisioned:
    """Register terminal ``tid`` for merchant ``mid`` with a fresh TMK (re-keys if it exists)."""
    if len(tid) != 8 or len(mid) != 15:
        raise ValueError("terminal ID must be 8 characters and merchant ID 15")
    sealed_tmk, tmk, kcv = rt.hsm.new_tmk(tid)
    with rt.engine.begin() as conn:
        if conn.execute(select(merchants.c.mid).where(merchants.c.mid == mid)).first() is None:
            raise ValueError(f"unknown merchant {mid}")
        exists = conn.execute(select(terminals.c.tid).where(terminals.c.tid == tid)).first()
        values = {
            "mid": mid,
            "status": "active",
            "sealed_tmk": sealed_tmk,
            "sealed_tpk": None,
            "sealed_tak": None,
            "signed_on_at": None,
            "signon_stan": None,  # a new TMK: sign-ons under the old one cannot verify anyway
        }
        if exists:
            conn.execute(terminals.update().where(terminals.c.tid == tid).values(**values))
        else:
            conn.execute(terminals.insert().values(tid=tid, **values))
    return Provisioned(tid, mid, tmk, kcv)
