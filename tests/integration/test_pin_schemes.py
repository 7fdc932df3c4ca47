"""PIN security options end to end (docs/pin-security.md): a terminal on a DUKPT or AES
profile sends its PIN blocks under that scheme, through the real terminal engine and link,
and the sandbox host's soft HSM verifies them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import select, update

from smartpos.cards.reading import CardInput
from smartpos.config import Settings
from smartpos.host.sandbox import provision_terminal
from smartpos.host.tables import cards, requests
from smartpos.host.testcards import CATALOGUE
from smartpos.keys import dukpt
from smartpos.keys.hsm import PinScheme
from smartpos.protocol.codec import Fields
from smartpos.terminal.engine import Terminal, TerminalError
from smartpos.terminal.errors import Refusal
from smartpos.terminal.link import HostLink
from smartpos.terminal.requests import dukpt_aad
from smartpos.terminal.setup import ProvisionError, TerminalRuntime, open_terminal_db, provision
from smartpos.terminal.tables import terminal_config
from tests.integration.test_card_flows import GOOD, PIN, assert_ledger_balanced, balance_of
from tests.sandbox import MID, Sandbox, running_sandbox

pytestmark = pytest.mark.integration

TID = "10000001"


def _open(sb: Sandbox, rt: TerminalRuntime) -> Terminal:
    """The terminal of ``rt`` opened again (as after a restart)."""
    link = HostLink("127.0.0.1", sb.server.port, sb.profile, sb.fingerprint)
    return Terminal(rt.engine, rt.vault, sb.profile, link)


def pin_terminal(sb: Sandbox, tid: str = TID) -> tuple[Terminal, TerminalRuntime]:
    t, rt, _ = sb.provisioned(tid)
    return t, rt


def spy(t: Terminal) -> list[Fields]:
    """Every request the terminal sends, decoded."""
    sent: list[Fields] = []
    exchange: Callable[[bytes], Awaitable[bytes]] = t.link.exchange

    async def recording(message: bytes) -> bytes:
        sent.append(t.profile.codec.decode(message))
        return await exchange(message)

    t.link.exchange = recording  # type: ignore[method-assign]
    return sent


def host_request_codes(sb: Sandbox) -> list[str]:
    with sb.host.engine.connect() as conn:
        rows = conn.execute(
            select(requests.c.response_code).where(requests.c.kind == "purchase")
        ).all()
    return [r.response_code for r in rows]


def run_on(profile: str, tmp_path: Path, body: Callable[[Sandbox], Awaitable[None]]) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path, profile=profile, tls=False) as sb:
            await body(sb)

    asyncio.run(go())


def ksn_counter(scheme: PinScheme, ksn_hex: str) -> int:
    ksn = bytes.fromhex(ksn_hex)
    return (
        dukpt.tdes_counter(ksn) if scheme is PinScheme.TDES_DUKPT_ISO0 else dukpt.aes_counter(ksn)
    )


DUKPT_PROFILES = ["sandbox-dukpt", "sandbox-aes-dukpt"]
ALL_PROFILES = ["sandbox-dukpt", "sandbox-aes", "sandbox-aes-dukpt"]
BLOCK_HEX = {"sandbox-dukpt": 16, "sandbox-aes": 32, "sandbox-aes-dukpt": 32}
KSN_HEX = {"sandbox-dukpt": 20, "sandbox-aes-dukpt": 24}


@pytest.mark.parametrize("profile", ALL_PROFILES)
def test_pin_sale_wrong_pin_then_right_one(profile: str, tmp_path: Path) -> None:
    async def body(sb: Sandbox) -> None:
        t, _ = pin_terminal(sb)
        sent = spy(t)
        assert (await t.sign_on()).result == "approved"  # the MAC key still comes at sign-on
        before = balance_of(sb, GOOD)
        card = CardInput.parse(GOOD.pan)
        ok = await t.sale(1234, card, PIN)
        assert ok.result == "approved" and ok.pin_verified, ok
        assert balance_of(sb, GOOD) == before - 1234
        wrong = await t.sale(500, card, "654321")
        assert (wrong.result, wrong.response_code) == ("declined", "55"), wrong
        again = await t.sale(500, card, PIN)
        assert again.result == "approved", again
        assert balance_of(sb, GOOD) == before - 1234 - 500
        sales = [m for m in sent if m["t"] == "0200"]
        assert len(sales) == 3
        for m in sales:
            assert len(m["52"]) == BLOCK_HEX[profile]  # hex: 8 or 16 bytes on the wire
            four = sb.profile.pin_scheme in (PinScheme.AES_ISO4, PinScheme.AES_DUKPT_ISO4)
            assert m["53"] == ("4700000000000000" if four else "2600000000000000")
            assert ("59" in m) == (profile in KSN_HEX)
        # Format 4's random fill: the same PIN on the same card is a new block every time.
        assert len({m["52"] for m in sales}) == 3
        if profile in KSN_HEX:
            ksns = [m["59"] for m in sales]
            assert all(len(k) == KSN_HEX[profile] for k in ksns)
            counters = [ksn_counter(sb.profile.pin_scheme, k) for k in ksns]
            assert len(set(counters)) == 3 and counters == sorted(counters), counters
        with sb.host.engine.connect() as conn:
            tries = conn.execute(
                select(cards.c.pin_tries).where(cards.c.token == sb.host.tokenizer.token(GOOD.pan))
            ).scalar_one()
        assert tries == 0  # the right PIN reset the count
        assert_ledger_balanced(sb)
        await t.close()

    run_on(profile, tmp_path, body)


@pytest.mark.parametrize("profile", DUKPT_PROFILES)
def test_dukpt_counters_survive_reopening_the_terminal(profile: str, tmp_path: Path) -> None:
    async def body(sb: Sandbox) -> None:
        t, rt = pin_terminal(sb)
        sent = spy(t)
        assert (await t.sign_on()).result == "approved"
        card = CardInput.parse(GOOD.pan)
        assert (await t.sale(100, card, PIN)).result == "approved"
        assert (await t.sale(100, card, PIN)).result == "approved"
        await t.close()
        # The register at rest is sealed: its state is not readable without the vault.
        with rt.engine.connect() as conn:
            sealed = conn.execute(select(terminal_config.c.sealed_dukpt)).scalar_one()
        assert sealed and rt.vault.unseal(sealed, dukpt_aad(TID))
        t2 = _open(sb, rt)
        sent2 = spy(t2)
        assert (await t2.sign_on()).result == "approved"
        assert (await t2.sale(100, card, PIN)).result == "approved"
        assert (await t2.balance(card, PIN)).result == "approved"
        ksns = [m["59"] for m in sent + sent2 if "59" in m]
        assert len(ksns) == 4 and len(set(ksns)) == 4
        counters = [ksn_counter(sb.profile.pin_scheme, k) for k in ksns]
        assert counters == sorted(counters)
        await t2.close()

    run_on(profile, tmp_path, body)


@pytest.mark.parametrize("profile", DUKPT_PROFILES)
def test_reprovisioning_gives_a_new_initial_ksn(profile: str, tmp_path: Path) -> None:
    async def body(sb: Sandbox) -> None:
        first = provision_terminal(sb.host, TID, MID, sb.profile.pin_scheme)
        second = provision_terminal(sb.host, TID, MID, sb.profile.pin_scheme)
        other = provision_terminal(sb.host, "10000002", MID, sb.profile.pin_scheme)
        serials = {first.initial_ksn, second.initial_ksn, other.initial_ksn}
        keys = {first.pin_key, second.pin_key, other.pin_key}
        assert len(serials) == 3 and len(keys) == 3

    run_on(profile, tmp_path, body)


@pytest.mark.parametrize("profile", DUKPT_PROFILES)
def test_an_exhausted_register_refuses_before_sending(profile: str, tmp_path: Path) -> None:
    async def body(sb: Sandbox) -> None:
        t, rt, prov = sb.provisioned()
        assert (await t.sign_on()).result == "approved"
        # Move the register to its last counter, as after a terminal's lifetime of PINs.
        scheme = sb.profile.pin_scheme
        assert prov.pin_key is not None and prov.initial_ksn is not None
        register: dukpt.TdesDukptRegister | dukpt.AesDukptRegister
        if scheme is PinScheme.TDES_DUKPT_ISO0:
            register = dukpt.TdesDukptRegister._from_initial(
                prov.pin_key, prov.initial_ksn, dukpt.TDES_LAST_COUNTER
            )
        else:
            register = dukpt.AesDukptRegister._from_initial(
                prov.pin_key, prov.initial_ksn + bytes(4), dukpt.AES_LAST_COUNTER
            )
        with rt.engine.begin() as conn:
            conn.execute(
                update(terminal_config).values(
                    sealed_dukpt=rt.vault.seal(register.to_bytes(), dukpt_aad(TID))
                )
            )
        await t.close()
        t = _open(sb, rt)
        sent = spy(t)
        assert (await t.sign_on()).result == "approved"
        card = CardInput.parse(GOOD.pan)
        last = await t.sale(100, card, PIN)
        assert last.result == "approved", last  # the host derives the last counter's key
        sent.clear()
        with pytest.raises(TerminalError) as refused:
            await t.sale(100, card, PIN)
        assert refused.value.code == Refusal.NO_PIN_KEY
        assert "exhausted" in str(refused.value)
        assert sent == []  # nothing left the terminal
        # A sale without a PIN still goes.
        no_pin = next(c for c in CATALOGUE if not c.pin_required)
        assert (await t.sale(100, CardInput.parse(no_pin.pan))).result == "approved"
        await t.close()

    run_on(profile, tmp_path, body)


@pytest.mark.parametrize("profile", DUKPT_PROFILES)
def test_a_bad_ksn_is_a_pin_format_error_and_changes_nothing(profile: str, tmp_path: Path) -> None:
    async def body(sb: Sandbox) -> None:
        t, _ = pin_terminal(sb)
        assert (await t.sign_on()).result == "approved"
        card = CardInput.parse(GOOD.pan)
        before = balance_of(sb, GOOD)
        make = t._pin_fields
        for bad in ("00", "ZZ" * KSN_HEX[profile], "", "F" * (KSN_HEX[profile] + 2), "0" * 24):

            def tampered(pin: str, pan: str, bad: str = bad) -> Fields:
                f = make(pin, pan)
                if bad:
                    f["59"] = bad
                else:
                    del f["59"]
                return f

            t._pin_fields = tampered  # type: ignore[method-assign]
            r = await t.sale(100, card, PIN)
            assert (r.result, r.response_code) == ("declined", "99"), (bad, r)
        assert balance_of(sb, GOOD) == before
        with sb.host.engine.connect() as conn:
            tries = conn.execute(
                select(cards.c.pin_tries).where(cards.c.token == sb.host.tokenizer.token(GOOD.pan))
            ).scalar_one()
        assert tries == 0
        t._pin_fields = make  # type: ignore[method-assign]
        assert (await t.sale(100, card, PIN)).result == "approved"
        await t.close()

    run_on(profile, tmp_path, body)


def test_provisioning_checks_the_pin_key(tmp_path: Path) -> None:
    async def body(sb: Sandbox) -> None:
        prov = provision_terminal(sb.host, TID, MID, sb.profile.pin_scheme)
        assert prov.pin_key is not None and prov.pin_key_kcv is not None
        home = tmp_path / "t"
        rt = open_terminal_db(
            Settings(home=home, terminal_db_url=f"sqlite:///{home / 'terminal.db'}"),
            durable=False,
        )
        common = {
            "tid": TID,
            "mid": MID,
            "merchant_name": "m",
            "tmk": prov.tmk,
            "tmk_kcv": prov.tmk_kcv,
            "link_host": "127.0.0.1",
            "link_port": 1,
            "host_fingerprint": sb.fingerprint,
            "profile": "sandbox-dukpt",
        }
        from smartpos.keys.keys import KeyCheckError

        with pytest.raises(KeyCheckError):
            provision(rt, **common, pin_key=prov.pin_key, pin_key_kcv=b"\0" * 4,
                      initial_ksn=prov.initial_ksn)  # fmt: skip
        with pytest.raises(ProvisionError):
            provision(rt, **common, pin_key=prov.pin_key, pin_key_kcv=prov.pin_key_kcv)
        with pytest.raises(ProvisionError):
            provision(rt, **common)
        with pytest.raises(ProvisionError):
            provision(rt, **{**common, "profile": "sandbox"}, pin_key=prov.pin_key,
                      pin_key_kcv=prov.pin_key_kcv, initial_ksn=prov.initial_ksn)  # fmt: skip
        with rt.engine.connect() as conn:
            assert conn.execute(select(terminal_config)).first() is None  # nothing loaded

    run_on("sandbox-dukpt", tmp_path, body)


@pytest.mark.parametrize("profile", DUKPT_PROFILES)
def test_a_replayed_ksn_or_another_terminals_is_refused(profile: str, tmp_path: Path) -> None:
    async def body(sb: Sandbox) -> None:
        t, _ = pin_terminal(sb)
        other, _ = pin_terminal(sb, "10000002")
        sent, sent_other = spy(t), spy(other)
        for term in (t, other):
            assert (await term.sign_on()).result == "approved"
        card = CardInput.parse(GOOD.pan)
        assert (await t.sale(100, card, PIN)).result == "approved"
        assert (await other.sale(100, card, PIN)).result == "approved"
        before = balance_of(sb, GOOD)
        make = t._pin_fields
        for m in (sent[-1], sent_other[-1]):  # its own PIN block again; the other's
            old = {k: m[k] for k in ("52", "53", "59")}
            t._pin_fields = lambda pin, pan, old=old: dict(old)  # type: ignore[method-assign]
            r = await t.sale(100, card, PIN)
            assert (r.result, r.response_code) == ("declined", "99"), r
        assert balance_of(sb, GOOD) == before
        t._pin_fields = make  # type: ignore[method-assign]
        assert (await t.sale(100, card, PIN)).result == "approved"  # its next counter
        await t.close()
        await other.close()

    run_on(profile, tmp_path, body)
