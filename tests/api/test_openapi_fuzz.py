"""schemathesis against the published OpenAPI, as an admin: whatever it sends to any
operation, no answer is a 500, and every answer's status, content type and body match what
the schema promises."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.generation.case import Case

from tests.api.conftest import Api

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def operations(api: Api) -> list[object]:
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", api.app)
    return [result.ok() for result in schema.get_all_operations()]


OPERATIONS = 42


def test_every_operation_is_fuzzed(api: Api) -> None:
    published = sum(len(item) for item in api.app.openapi()["paths"].values())
    assert len(operations(api)) == published == OPERATIONS


@pytest.mark.parametrize("index", range(OPERATIONS))
def test_no_request_makes_a_500_and_answers_match_the_schema(api: Api, index: int) -> None:
    operation = operations(api)[index]
    headers = {"Authorization": f"Bearer {api.tokens['admin']}"}

    @given(case=operation.as_strategy())  # type: ignore[attr-defined]
    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
    def call(case: Case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    call()
