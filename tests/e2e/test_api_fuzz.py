"""The JSON API fuzzed from its own OpenAPI schema (schemathesis's generated requests): for
every operation, whatever a logged-in cashier sends, no answer is a 5xx."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import Demo
from tests.e2e.test_roles import _login

EXAMPLES_PER_OPERATION = 25


def test_no_request_makes_a_server_error(demo: Demo) -> None:
    client = _login(demo, "cashier", "cashier")
    cookies = {"sp_session": client.cookies["sp_session"]}
    headers = {"X-CSRF-Token": client.headers["X-CSRF-Token"]}
    client.close()
    schema = schemathesis.openapi.from_url(demo.url + "api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    seen: set[str] = set()

    @settings(
        max_examples=EXAMPLES_PER_OPERATION * len(operations),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(st.data())
    def fuzz(data: Any) -> None:
        operation = data.draw(st.sampled_from(operations))
        case = data.draw(operation.as_strategy())
        response = case.call(cookies=cookies, headers=headers, timeout=30)
        seen.add(operation.label)
        assert response.status_code < 500, (operation.label, case.formatted_path, response.text)

    fuzz()
    assert len(seen) == len(operations)
