"""keys.delivery = "provisioning": the working keys (TPK, TAK) come with the TMK at the
key-loading ceremony, wrapped under it with their check values. The terminal sells with PIN
and MAC without a sign-on; a sign-on is answered without keys and rotates nothing; keys
with a wrong check value are refused and nothing is loaded."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from smartpos.cards.reading import CardInput
from smartpos.host.testcards import CATALOGUE
from smartpos.keys.keys import KeyCheckError
from smartpos.protocol.profiles import load_profiles
from smartpos.terminal.setup import ProvisionError
from tests.integration.test_card_flows import assert_ledger_balanced, balance_of
from tests.sandbox import TID, running_sandbox

pytestmark = pytest.mark.integration

GOOD = CATALOGUE[0]
TOML = """\
[profile.keys-with-tmk]
base = "sandbox"
tls.enabled = false
keys.delivery = "provisioning"
"""


def _profile(home: Path) -> Path:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    (home / "profiles.toml").write_text(TOML)
    return home / "profiles.toml"


def test_working_keys_loaded_with_the_tmk(tmp_path: Path) -> None:
    async def go() -> None:
        profile = load_profiles(_profile(tmp_path / "defs"))["keys-with-tmk"]
        async with running_sandbox(tmp_path / "sb", profile=profile, tls=False) as sb:
            _profile(sb.settings.home / f"terminal-{TID}")  # the terminal resolves it too
            t = sb.terminal(profile=profile)
            assert t._tak is not None and t._tpk is not None  # loaded, no sign-on yet
            before = balance_of(sb, GOOD)
            sale = await t.sale(10_00, CardInput.parse(GOOD.pan), GOOD.pin)
            assert sale.result == "approved" and sale.pin_verified, sale
            tak = t._tak
            signed = await t.sign_on()
            assert signed.result == "approved" and t._tak == tak  # nothing rotated
            again = await t.sale(5_00, CardInput.parse(GOOD.pan), GOOD.pin)
            assert again.result == "approved", again
            assert balance_of(sb, GOOD) == before - 15_00
            assert_ledger_balanced(sb)
            await t.close()

    asyncio.run(go())


def test_working_keys_with_a_wrong_check_value_are_refused(tmp_path: Path) -> None:
    from smartpos.config import Settings
    from smartpos.terminal.setup import open_terminal_db, provision

    async def go() -> None:
        profile = load_profiles(_profile(tmp_path / "defs"))["keys-with-tmk"]
        async with running_sandbox(tmp_path / "sb", profile=profile, tls=False) as sb:
            from smartpos.host.sandbox import provision_terminal

            prov = provision_terminal(sb.host, "20000009", "898310048160001", working_keys=True)
            assert prov.working_keys is not None and len(prov.working_keys) == 40
            home = tmp_path / "t"
            _profile(home)
            rt = open_terminal_db(Settings(home=home))
            common = {
                "tid": "20000009",
                "mid": "898310048160001",
                "merchant_name": "x",
                "tmk": prov.tmk,
                "tmk_kcv": prov.tmk_kcv,
                "link_host": "127.0.0.1",
                "link_port": sb.server.port,
                "host_fingerprint": None,
                "profile": "keys-with-tmk",
            }
            spoiled = prov.working_keys[:16] + bytes(4) + prov.working_keys[20:]
            with pytest.raises(KeyCheckError):
                provision(rt, **common, working_keys=spoiled)
            with pytest.raises(ProvisionError):
                provision(rt, **common)  # this profile needs them
            with rt.engine.connect() as conn:
                from sqlalchemy import func, select

                from smartpos.terminal.tables import terminal_config

                rows = conn.execute(select(func.count()).select_from(terminal_config)).scalar()
            assert rows == 0  # nothing loaded
            provision(rt, **common, working_keys=prov.working_keys)

    asyncio.run(go())
