"""docs/test-cards.md must list exactly the catalogue's PANs and outcomes."""

import re
from pathlib import Path

from smartpos.cards import luhn_ok
from smartpos.host.testcards import CATALOGUE

DOC = Path(__file__).parents[2] / "docs" / "test-cards.md"


def test_doc_lists_every_catalogue_card() -> None:
    rows = re.findall(r"^\| (\d{13,19}) \| (.+?) \| (.+?) \|$", DOC.read_text(), re.M)
    documented = {pan: outcome for pan, _, outcome in rows}
    assert set(documented) == {c.pan for c in CATALOGUE}
    for card in CATALOGUE:
        assert luhn_ok(card.pan)
        assert documented[card.pan] == card.outcome
