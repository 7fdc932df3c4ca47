"""Provisioning: load the terminal's identity and master key (the key-loading ceremony)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.engine import make_url

from smartpos.config import Settings
from smartpos.db.engine import make_engine
from smartpos.db.lock import AlreadyLocked, ProcessLock
from smartpos.db.migrate import upgrade
from smartpos.keys.dukpt import AesDukptRegister, DukptError, TdesDukptRegister, aes_kcv
from smartpos.keys.hsm import PinScheme
from smartpos.keys.keys import KeyCheckError, kcv, unpack_f62
from smartpos.keys.vault import Vault
from smartpos.protocol.profiles import KeyDelivery, TlsTrust, resolve_profile
from smartpos.terminal.engine import Terminal
from smartpos.terminal.errors import Refusal, TerminalError
from smartpos.terminal.link import HostLink
from smartpos.terminal.requests import dukpt_aad, pin_key_aad
from smartpos.terminal.tables import journal, reversals, terminal_config


@dataclass
class TerminalRuntime:
    engine: Engine
    vault: Vault
    # The data directory: where the user's acquirer profiles are (profiles.toml).
    home: Path | None = None


def open_terminal_db(settings: Settings, *, durable: bool = True) -> TerminalRuntime:
    engine = make_engine(settings.resolved_terminal_db_url, durable=durable)
    upgrade(engine, "terminal")
    return TerminalRuntime(engine, Vault.open_dir(settings.terminal_dir), settings.home)


class ProvisionError(ValueError):
    """Provisioning refused; nothing was changed."""


_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def pinned_fingerprint(text: str | None) -> str:
    """The host certificate's SHA-256 fingerprint as the link compares it (64 lowercase hex
    digits; colons and case as tools print them are accepted). Anything else is refused: a
    terminal must never be left pinning nothing."""
    cleaned = (text or "").strip().replace(":", "").lower()
    if not _FINGERPRINT.fullmatch(cleaned):
        raise ProvisionError(
            "the host certificate fingerprint must be its SHA-256, 64 hex digits "
            "(`smartpos host init` prints it as host_fingerprint)"
        )
    return cleaned


def _unfinished(conn: Connection) -> str | None:
    """What the terminal still owes its current acquirer: pending reversals, an unsettled
    batch, TC advices — work that another identity could never complete."""
    owed = conn.execute(
        select(func.count()).select_from(reversals).where(reversals.c.status != "done")
    ).scalar_one()
    if owed:
        return f"{owed} reversal(s) not yet acknowledged by the host"
    open_txns = conn.execute(
        select(func.count())
        .select_from(journal)
        .where(journal.c.settled.is_(False), journal.c.status.in_(("approved", "voided")))
    ).scalar_one()
    if open_txns:
        return f"{open_txns} transaction(s) in a batch not settled yet"
    return None


def provision(
    rt: TerminalRuntime,
    *,
    tid: str,
    mid: str,
    merchant_name: str,
    tmk: bytes,
    tmk_kcv: bytes,
    link_host: str,
    link_port: int,
    host_fingerprint: str | None,
    profile: str,
    pin_key: bytes | None = None,
    pin_key_kcv: bytes | None = None,
    initial_ksn: bytes | None = None,
    working_keys: bytes | None = None,
) -> None:
    """Store identity and TMK (sealed); the terminal must sign on next. Refuses a TMK whose
    check value does not match, and a missing or malformed certificate fingerprint on a TLS
    profile.

    A profile whose PIN scheme does not use the sign-on TPK needs its PIN key too, with its
    check value (docs/pin-security.md): the AES PIN key (aes-iso4), or the DUKPT initial key
    and the ``initial_ksn`` it was derived for (TDES: the 10-byte KSN, counter zero; AES:
    the 8-byte initial key ID). The terminal keeps the AES key sealed, or a DUKPT register
    loaded from the initial key (the initial key itself is not kept). A profile whose working
    keys come with the TMK (``keys.delivery = "provisioning"``) needs ``working_keys``: the
    TPK and TAK wrapped under the TMK with their check values (as sign-on's field 62).

    Provisioning an already provisioned terminal again keeps its trace, invoice and batch
    counters, its PAN token key and its journal: counters never go backwards (a reused trace
    is a different request to the host), and the journal's tokens must keep matching the
    cards of its sales. Changing the terminal ID is refused while the old identity still has
    unfinished business (see :func:`_unfinished`)."""
    prof = resolve_profile(profile, rt.home)
    if len(tid) != 8 or len(mid) != 15:
        raise ProvisionError("terminal ID must be 8 characters and merchant ID 15")
    if len(tmk) != 16 or kcv(tmk) != tmk_kcv:
        raise KeyCheckError("TMK check value does not match: key not loaded")
    # A profile that trusts a CA, or pins its own certificate, needs no pin from here.
    pins_here = prof.tls and prof.tls_trust == TlsTrust.PINNED and not prof.tls_fingerprint
    pinned = pinned_fingerprint(host_fingerprint) if pins_here else None
    sealed_pin_key, sealed_dukpt = _pin_material(
        rt.vault, tid, prof.pin_scheme, pin_key, pin_key_kcv, initial_ksn
    )
    sealed_tpk = sealed_tak = None
    if prof.key_delivery == KeyDelivery.PROVISIONING:
        if working_keys is None:
            raise ProvisionError(
                f"profile {prof.name!r} loads the working keys at provisioning: give them"
                " (the TPK and TAK under the TMK, as the host's set-up printed them)"
            )
        keys = unpack_f62(tmk, working_keys)  # KeyCheckError when a check value is wrong
        sealed_tpk, sealed_tak = rt.vault.seal(keys.tpk, b"tpk"), rt.vault.seal(keys.tak, b"tak")
    elif working_keys is not None:
        raise ProvisionError(
            f"profile {prof.name!r} gets its working keys at sign-on (or has none): load none now"
        )
    identity = {
        "tid": tid,
        "mid": mid,
        "merchant_name": merchant_name,
        "profile": profile,
        "link_host": link_host,
        "link_port": link_port,
        "host_fingerprint": pinned,
        "sealed_tmk": rt.vault.seal(tmk, b"tmk:" + tid.encode()),
        "sealed_tpk": sealed_tpk,
        "sealed_tak": sealed_tak,
        "signed_on_at": None,
        "sealed_pin_key": sealed_pin_key,
        "sealed_dukpt": sealed_dukpt,
    }
    with rt.engine.begin() as conn:
        cfg = conn.execute(select(terminal_config).where(terminal_config.c.id == 1)).first()
        if cfg is None:
            conn.execute(
                terminal_config.insert().values(
                    id=1,
                    sealed_token_key=rt.vault.seal(os.urandom(32), b"token_key"),
                    stan=0,
                    invoice_no=0,
                    batch_no=1,
                    **identity,
                )
            )
            return
        if cfg.tid != tid and (owed := _unfinished(conn)) is not None:
            raise ProvisionError(
                f"terminal {cfg.tid} still has {owed}: finish them (reversals, settle) "
                f"before provisioning it as {tid}"
            )
        conn.execute(update(terminal_config).where(terminal_config.c.id == 1).values(**identity))


def _pin_material(
    vault: Vault,
    tid: str,
    scheme: PinScheme,
    key: bytes | None,
    key_kcv: bytes | None,
    initial_ksn: bytes | None,
) -> tuple[bytes | None, bytes | None]:
    """(sealed AES PIN key, sealed DUKPT register state) for a terminal on ``scheme``, from
    the key the ceremony gave; refused unless the key and its check value agree."""
    if scheme is PinScheme.TPK_ISO0:
        if key is not None or initial_ksn is not None:
            raise ProvisionError(
                "this profile encrypts PINs under the sign-on TPK: it takes no PIN key"
            )
        return None, None
    if key is None or key_kcv is None:
        raise ProvisionError(f"a {scheme} profile needs the terminal's PIN key and its KCV")
    tdes = scheme is PinScheme.TDES_DUKPT_ISO0
    sizes = (16,) if tdes else (16, 24, 32) if scheme is PinScheme.AES_ISO4 else (16, 32)
    if len(key) not in sizes or (kcv(key) if tdes else aes_kcv(key)) != key_kcv:
        raise KeyCheckError("PIN key check value does not match: key not loaded")
    if scheme is PinScheme.AES_ISO4:
        if initial_ksn is not None:
            raise ProvisionError("an aes-iso4 PIN key has no KSN")
        return vault.seal(key, pin_key_aad(tid)), None
    if initial_ksn is None:
        raise ProvisionError(f"a {scheme} initial key needs the initial KSN it was derived for")
    try:
        register = (
            TdesDukptRegister.load(key, initial_ksn)
            if tdes
            else AesDukptRegister.load(key, initial_ksn)
        )
    except DukptError as exc:
        raise ProvisionError(f"DUKPT initial key not loaded: {exc}") from None
    return None, vault.seal(register.to_bytes(), dukpt_aad(tid))


def relink(rt: TerminalRuntime, link_host: str, link_port: int, host_fingerprint: str) -> None:
    """Point the provisioned terminal at ``link_host:link_port`` pinning that certificate,
    keeping its keys, counters and journal (the demo's host on another port)."""
    pinned = pinned_fingerprint(host_fingerprint)
    with rt.engine.begin() as conn:
        conn.execute(
            update(terminal_config)
            .where(terminal_config.c.id == 1)
            .values(link_host=link_host, link_port=link_port, host_fingerprint=pinned)
        )


def provisioned_tmk_kcv(rt: TerminalRuntime, tid: str) -> bytes | None:
    """The check value of the TMK the terminal holds if it is provisioned as ``tid``."""
    with rt.engine.connect() as conn:
        cfg = conn.execute(select(terminal_config).where(terminal_config.c.id == 1)).first()
    if cfg is None or cfg.tid != tid:
        return None
    return kcv(rt.vault.unseal(cfg.sealed_tmk, b"tmk:" + tid.encode()))


def read_identity(settings: Settings) -> tuple[str, str, str]:
    """The provisioned terminal's (TID, MID, merchant name), read without taking the
    terminal (no lock: a process serving it may hold it)."""
    rt = open_terminal_db(settings)
    try:
        with rt.engine.connect() as conn:
            cfg = conn.execute(select(terminal_config).where(terminal_config.c.id == 1)).first()
    finally:
        rt.engine.dispose()
    if cfg is None:
        raise TerminalError(Refusal.NOT_PROVISIONED)
    return cfg.tid, cfg.mid, cfg.merchant_name


TERMINAL_LOCK = "terminal"


def open_terminal(settings: Settings) -> Terminal:
    """The provisioned terminal, with its link to the configured acquirer, held by this
    process alone until :meth:`Terminal.close`: a terminal does one transaction at a time.
    Two commands at once would each take the other's in-flight request for one interrupted
    by a crash and reverse it — a sale reported approved to one cashier, reversed at the
    bank by the other's command."""
    url = make_url(settings.resolved_terminal_db_url)
    if url.drivername.startswith("sqlite") and not (url.database and Path(url.database).exists()):
        raise TerminalError(Refusal.NOT_PROVISIONED)  # and no empty database made to say so
    rt = open_terminal_db(settings)
    try:
        lock = ProcessLock(rt.engine, TERMINAL_LOCK).acquire()
    except AlreadyLocked:
        rt.engine.dispose()
        raise TerminalError(Refusal.BUSY) from None
    with rt.engine.connect() as conn:
        cfg = conn.execute(select(terminal_config).where(terminal_config.c.id == 1)).first()
    if cfg is None:
        lock.release()
        raise TerminalError(Refusal.NOT_PROVISIONED)
    profile = resolve_profile(cfg.profile, settings.home)
    link = HostLink(cfg.link_host, cfg.link_port, profile, cfg.host_fingerprint)
    return Terminal(
        rt.engine,
        rt.vault,
        profile,
        link,
        currency=settings.currency,
        lock=lock,
        home=settings.home,
    )
