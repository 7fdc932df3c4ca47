"""A chip card's transaction counter lives with the card — the simulated reader's state
file — not in the terminal's database; counters an earlier version kept there move over
and go on from where they were."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import func, select

from smartpos.cards.reading import CardInput
from smartpos.devices.cardreader import default_state_path
from smartpos.host.testcards import CATALOGUE
from smartpos.terminal.tables import chip_counters
from tests.sandbox import running_sandbox

pytestmark = pytest.mark.integration

GOOD = CATALOGUE[0]


def test_chip_counters_move_from_the_terminal_database_to_the_reader(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            assert (await t.sign_on()).result == "approved"
            token = t.tokenizer.token(GOOD.pan)
            with t.engine.begin() as conn:  # as an earlier version left it
                conn.execute(chip_counters.insert().values(pan_token=token, atc=7))
            first = await t.sale(1000, CardInput.parse(GOOD.pan, chip=True), GOOD.pin)
            assert first.result == "approved", first
            assert first.icc["ATC"] == "0008"  # on from the old counter, never back to 1
            second = await t.sale(1000, CardInput.parse(GOOD.pan, tap=True), GOOD.pin)
            assert second.result == "approved" and second.icc["ATC"] == "0009"
            with t.engine.connect() as conn:
                left = conn.execute(select(func.count()).select_from(chip_counters)).scalar()
            assert left == 0
            db = t.engine.url.database
            assert db is not None
            state = default_state_path(Path(db).parent)
            assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
            text = state.read_text()
            assert GOOD.pan not in text and GOOD.pan[-10:] not in text
            assert json.loads(text)["counters"] == {token: 9}

    asyncio.run(go())
