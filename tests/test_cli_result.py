"""``--json`` output is checked and written without pydantic (smartpos.commandline.result):
held here to the pydantic model of the schema, ``CommandResult``, on generated results —
the same verdict (valid or not) and, when valid, the same bytes as the model's dump."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, get_args

import pydantic
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from smartpos.commandline.result import (
    ERROR_CODES,
    CommandResult,
    Reply,
    ResultWord,
    SchemaError,
    checked,
    emit,
    to_json,
)

WORDS = list(get_args(ResultWord))
CODES = st.one_of(
    st.none(),
    st.sampled_from(sorted(ERROR_CODES)),
    st.from_regex(r"[0-9A-Z]{2}", fullmatch=True),
    st.text(max_size=4),
    st.sampled_from(["00\n", "usage\n", "0", "aa", "USAGE", "00 "]),
)
COMMANDS = st.one_of(
    st.sampled_from(["terminal sale", "smartpos", "host check", "bench cli"]),
    st.from_regex(r"[a-z]+( [a-z]+)*", fullmatch=True),
    st.text(max_size=12),
    st.sampled_from(["terminal sale\n", "Terminal", "terminal  sale", " x", ""]),
)
MESSAGES = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["Approved", "", "two\nlines", "end\n", "\n", "承认 ✓"]),
)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=3),
)
DATA = st.dictionaries(
    st.one_of(st.text(max_size=8), st.sampled_from(["amount_minor", "balance_minor", "x_minor"])),
    VALUES,
    max_size=5,
)
RESULTS = st.fixed_dictionaries(
    {
        "ok": st.one_of(st.booleans(), st.sampled_from([0, 1, "true", None])),
        "command": COMMANDS,
        "result": st.one_of(st.sampled_from(WORDS), st.sampled_from(["OK", "failed", ""])),
        "code": CODES,
        "message": MESSAGES,
        "data": st.one_of(DATA, st.sampled_from([[], "x", None])),
    }
)


def verdict_of_the_model(result: dict[str, Any]) -> str | None:
    """The line pydantic's model would print, or None if it refuses the result."""
    if type(result["ok"]) is not bool:
        return None  # the model would coerce 0/1/"true"; smartpos only makes booleans
    try:
        model = CommandResult(**result)
    except pydantic.ValidationError:
        return None
    return json.dumps(model.model_dump(), ensure_ascii=False)


def verdict_by_hand(result: dict[str, Any]) -> str | None:
    try:
        return to_json(result)
    except SchemaError:
        return None


@settings(max_examples=1500, deadline=None)
@given(RESULTS)
@example(
    {"ok": True, "command": "terminal sale", "result": "approved", "code": "00",
     "message": "Approved", "data": {"amount_minor": 100, "currency": "CNY", "icc": {}}}
)  # fmt: skip
@example(
    {"ok": False, "command": "terminal sale", "result": "declined", "code": None,
     "message": "Declined", "data": {}}
)  # fmt: skip
@example(
    {"ok": True, "command": "host check", "result": "ok", "code": None, "message": "x",
     "data": {"debits_posted_minor": True}}
)  # fmt: skip
@example(
    {"ok": False, "command": "terminal void", "result": "error", "code": "usage",
     "message": "Invalid value for '--stan': abc", "data": {}}
)  # fmt: skip
def test_the_hand_check_gives_the_models_verdict_and_bytes(result: dict[str, Any]) -> None:
    assert verdict_by_hand(result) == verdict_of_the_model(result)


@st.composite
def valid_results(draw: st.DrawFn) -> dict[str, Any]:
    ok = draw(st.booleans())
    contradicting = {"error", "declined"} if ok else {"approved"}
    word = draw(st.sampled_from([w for w in WORDS if w not in contradicting]))
    code = draw(st.sampled_from([None, "00", "A0"]) if ok else st.sampled_from(["51", "usage"]))
    key = st.from_regex(r"[a-z_]{1,12}", fullmatch=True).filter(lambda k: not k.endswith("_minor"))
    data = draw(st.dictionaries(key, VALUES, max_size=6))
    data.update(draw(st.fixed_dictionaries({}, optional={"amount_minor": st.integers()})))
    return {
        "ok": ok,
        "command": draw(st.from_regex(r"[a-z]+( [a-z]+)*", fullmatch=True)),
        "result": word,
        "code": code,
        "message": draw(st.text(min_size=1).filter(lambda m: "\n" not in m)),
        "data": data,
    }


@settings(max_examples=300, deadline=None)
@given(valid_results())
def test_valid_results_are_printed_byte_for_byte_as_the_model_printed_them(
    result: dict[str, Any],
) -> None:
    """The property above is not vacuous: results that are valid pass both, same bytes."""
    printed = verdict_by_hand(result)
    assert printed is not None and printed == verdict_of_the_model(result)


@dataclass
class Chip:
    aid: str
    atc: int


def test_values_json_cannot_hold_are_written_as_the_model_dumped_them() -> None:
    result = {
        "ok": True,
        "command": "terminal sale",
        "result": "approved",
        "code": "00",
        "message": "Approved",
        "data": {"chip": Chip("A000000333010101", 7), "cards": (1, 2), "nested": [Chip("x", 1)]},
    }
    assert verdict_by_hand(result) == verdict_of_the_model(result)
    with pytest.raises(TypeError, match="not JSON serializable"):
        to_json({**result, "data": {"when": object()}})


def test_the_fields_come_in_the_schemas_order() -> None:
    scrambled = {
        "data": {},
        "message": "m",
        "code": None,
        "result": "ok",
        "command": "version",
        "ok": True,
    }
    assert list(checked(scrambled)) == list(CommandResult.model_fields)
    with pytest.raises(SchemaError, match="exactly the fields"):
        checked({**scrambled, "extra": 1})


def test_a_broken_result_is_an_internal_error_not_a_refusal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A reply that breaks the schema is a defect in smartpos (exit 70), reported in one
    line that still fits the schema."""
    from smartpos.commandline.app import console, err, failure

    bad = Reply(True, "ok", "fine", data={"amount_minor": 1.5})
    with pytest.raises(SchemaError) as raised:
        emit(bad, "terminal sale", True, console, err)
    reply = failure(raised.value)
    assert (reply.code, reply.status) == ("internal", 70)
    assert emit(reply, "terminal sale", True, console, err) == 70
    printed = json.loads(capsys.readouterr().out)
    assert CommandResult.model_validate(printed).code == "internal"
