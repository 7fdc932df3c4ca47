"""docs/protocol.md §8 says, field by field, what each request and each answer carries. Here
the tables are read from the document and held against what a real terminal sent and a real
host answered (smartpos.protocol_examples, the source of §11): for every exchange, the fields
present are exactly those its table marks present — M, E, and C where its condition holds —
every E equals the request's value, every value the table gives is the one sent, and the
overview (§8.1) names the exchange's MTIs, processing code, 60.1, 60.3 and MAC."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from smartpos.cards.emv import read_icc_data, verify_arqc
from smartpos.protocol.codec import Fields
from smartpos.protocol.messages import (
    F60,
    NET_BATCH_UPLOAD_END,
    TxnType,
    classify,
    response_mti,
)
from smartpos.protocol_examples import Exchange, capture

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

# Which table describes which transaction (its section in §8) and its row in §8.1.
SECTIONS = {
    TxnType.SIGN_ON: ("8.2", "Sign-on"),
    TxnType.ECHO: ("8.3", "Echo test"),
    TxnType.BALANCE: ("8.4", "Balance inquiry"),
    TxnType.PURCHASE: ("8.5", "Purchase"),
    TxnType.VOID: ("8.6", "Void"),
    TxnType.REFUND: ("8.7", "Refund"),
    TxnType.REVERSAL: ("8.8", "Reversal"),
    TxnType.SETTLEMENT: ("8.9", "Settlement"),
    TxnType.TC_ADVICE: ("8.11", "TC advice"),
}
UPLOAD_ADVICE = ("8.10.1", "Batch upload advice")
UPLOAD_END = ("8.10.2", "Batch upload end")


def section_of(request: Fields) -> tuple[str, str]:
    kind = classify(request)
    if kind == TxnType.BATCH_UPLOAD:
        end = F60.decode(request["60"]).net_code == NET_BATCH_UPLOAD_END
        return UPLOAD_END if end else UPLOAD_ADVICE
    return SECTIONS[kind]


# -- the document's tables -----------------------------------------------------------------

_HEADING = re.compile(r"^#{3,4} (\d+(?:\.\d+)+) ")
_CELL = re.compile(r"^(?P<p>M|E|O|–|C \((?P<cond>[^)]+)\))(?: `(?P<value>[^`]+)`)?$")


@dataclass(frozen=True)
class Cell:
    presence: str  # M, E, O, –, C
    condition: str | None
    value: str | None


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def tables() -> dict[str, list[list[str]]]:
    """Each numbered section's first table (header row first), by section number."""
    found: dict[str, list[list[str]]] = {}
    section = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = _HEADING.match(line)
        if heading:
            section = heading.group(1)
            continue
        if section is None or not line.startswith("|"):
            if found.get(section):
                section = None  # the section's first table has ended
            continue
        if set(line.replace("|", "").strip()) <= {"-"}:
            continue  # the header's separator row
        found.setdefault(section, []).append(_cells(line))
    return found


def field_table(section: str) -> tuple[dict[str, Cell], dict[str, Cell]]:
    """(request cells, response cells) by field number, from the section's table."""
    rows = tables()[section]
    assert rows[0][0] == "Field", f"§{section}: its table does not start with a Field column"
    request: dict[str, Cell] = {}
    response: dict[str, Cell] = {}
    for row in rows[1:]:
        names = [n.strip() for n in row[0].split(",")]
        assert all(n.isdigit() for n in names), f"§{section}: bad field list {row[0]!r}"
        for column, cells in ((1, request), (2, response)):
            match = _CELL.match(row[column])
            assert match, f"§{section} field {row[0]}: cell {row[column]!r} is not M/E/O/–/C (…)"
            cell = Cell(match["p"][0], match["cond"], match["value"])
            for name in names:
                assert name not in cells, f"§{section}: field {name} listed twice"
                cells[name] = cell
    return request, response


# -- conditions ------------------------------------------------------------------------------


def _pan(request: Fields) -> str:
    return request["35"].split("D")[0] if "35" in request else request["2"]


def _chip(req: Fields) -> bool:
    return req.get("22", "")[:2] in ("05", "07")


def _answer_with_rrn(ex: dict[str, Exchange], rrn: str) -> Fields | None:
    for exchange in ex.values():
        answer = exchange.answer_fields
        if answer is not None and answer.get("37") == rrn and answer["t"] == "0210":
            return answer
    return None


Condition = Callable[[Fields, Fields | None, dict[str, Exchange]], bool]
CONDITIONS: dict[str, Condition] = {
    "approved": lambda req, ans, ex: ans is not None and ans["39"] == "00",
    "settled": lambda req, ans, ex: ans is not None and ans["39"] in ("00", "77"),
    "PIN": lambda req, ans, ex: req["22"][2] == "1",
    "chip": lambda req, ans, ex: _chip(req),
    "ARQC verified": lambda req, ans, ex: (
        _chip(req) and verify_arqc(read_icc_data(req["55"]), _pan(req), req["23"][-2:])
    ),
    "track 2": lambda req, ans, ex: "2" not in req,
    "no track 2": lambda req, ans, ex: "35" not in req,
    # What was keyed is not in the message but 14 itself: this holds 14 to travel with 2.
    "expiry keyed": lambda req, ans, ex: "2" in req and "14" in req,
    "original has code": lambda req, ans, ex: "38" in (_answer_with_rrn(ex, req["37"]) or {}),
    "original in journal": lambda req, ans, ex: _answer_with_rrn(ex, req["37"]) is not None,
}


def expected(
    cells: dict[str, Cell], req: Fields, ans: Fields | None, ex: dict[str, Exchange]
) -> set[str]:
    present = set()
    for name, cell in cells.items():
        if cell.presence in ("M", "E"):
            present.add(name)
        elif cell.presence == "C":
            assert cell.condition in CONDITIONS, f"unknown condition {cell.condition!r}"
            if CONDITIONS[cell.condition](req, ans, ex):
                present.add(name)
    return present


# -- the checks ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exchanges() -> dict[str, Exchange]:
    return capture()


def _numbered(fields: Fields) -> dict[str, str]:
    return {k: v for k, v in fields.items() if k.isdigit()}


def test_every_message_carries_what_its_table_says(exchanges: dict[str, Exchange]) -> None:
    checked = set()
    for name, exchange in exchanges.items():
        req, ans = exchange.request_fields, exchange.answer_fields
        section, _ = section_of(req)
        request_cells, response_cells = field_table(section)
        sides = (("request", request_cells, req), ("answer", response_cells, ans))
        for side, cells, fields in sides:
            if fields is None:
                continue  # the unanswered purchase
            sent = _numbered(fields)
            assert set(sent) == expected(cells, req, ans, exchanges), (
                f"{name} {side} ({fields['t']}, §{section}): carries {sorted(sent, key=int)}"
            )
            for field, cell in cells.items():
                if field not in sent:
                    continue
                if cell.value is not None:
                    assert sent[field] == cell.value, f"{name} {side}: field {field}"
                if cell.presence == "E":
                    assert sent[field] == req[field], f"{name} {side}: {field} is not echoed"
        checked.add(section)
    # Every transaction table was held against at least one real exchange.
    assert checked == {s for s, _ in SECTIONS.values()} | {UPLOAD_ADVICE[0], UPLOAD_END[0]}


def test_the_overview_names_each_exchange(exchanges: dict[str, Exchange]) -> None:
    rows = {row[0]: row for row in tables()["8.1"][1:]}
    assert tables()["8.1"][0][:7] == [
        "Transaction",
        "Request MTI",
        "F3",
        "60.1",
        "60.3",
        "Response",
        "MAC",
    ]
    for name, exchange in exchanges.items():
        req, ans = exchange.request_fields, exchange.answer_fields
        _, row_name = section_of(req)
        _, mtis, f3, type_code, net_code, response, mac = rows[row_name][:7]
        f60 = F60.decode(req["60"])
        assert req["t"] in mtis.split(" / "), name
        if f3 == "–":
            assert "3" not in req, name
        elif f3 != "original":
            assert req["3"] == f3.strip("`"), name
        if type_code != "original":
            assert f60.type_code == type_code.strip("`"), name
        assert f60.net_code == net_code.strip("`"), name
        assert response == response_mti(req["t"]), name
        if ans is None:
            continue
        assert ans["t"] == response, name
        macs = ("64" in req, "64" in ans)
        want = {"yes": (True, True), "no": (False, False)}.get(mac, (True, False))
        assert mac in ("yes", "no") or mac.startswith("request only"), mac
        assert macs == want, f"{name}: MACs {macs}, §8.1 says {mac!r}"


def test_the_table_reader_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    """The checks above are only as good as the parser: an irregular cell must fail."""
    assert _CELL.match("C (approved)") and _CELL.match("M `310000`") and _CELL.match("–")
    for bad in ("C", "M (approved)", "C approved", "yes", "M `310000` x", ""):
        assert not _CELL.match(bad), bad
