"""Issue 7 bad input: schemathesis fuzzes every operation of our OpenAPI document through the
WSGI app, as a clerk, with data the document allows and data it does not. No answer is a
5xx, and every answer is one the document describes (status code, content type, headers,
body schema). The county has a claim in it, so some generated calls reach real rows.

Each operation runs as its own Hypothesis test (schemathesis's strategies; its pytest
lazy loader does not run under pytest 9), and every operation's failure is reported."""

from __future__ import annotations

import hypothesis.strategies as st
from conftest import PASSWORD
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from schemathesis.openapi import from_wsgi

CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_headers_conformance,
          checks.response_schema_conformance]
# Small on purpose: the whole run stays well under a minute on SQLite (about 35 operations).
EXAMPLES_PER_OPERATION = 10


def sign_in(county) -> dict[str, str]:  # noqa: ANN001
    answer = county.client.post("/api/v1/auth/token",
                                json={"username": "clerk", "password": PASSWORD})
    return {"Authorization": f"Bearer {answer.json['access_token']}"}


def test_no_call_answers_5xx_or_outside_the_document(app, county):
    county.claim()
    headers = {"Authorization": f"Bearer {county.clerk.token}"}
    schema = from_wsgi("/api/v1/openapi.json", app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                          operation.as_strategy(GenerationMode.NEGATIVE))

        @given(case=cases)
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  derandomize=True, suppress_health_check=list(HealthCheck))
        def fuzz(case):  # noqa: ANN001
            # Signing out revokes the token it is sent with: that call gets a token of its own.
            signs_out = case.method == "DELETE" and case.path == "/api/v1/auth/token"
            case.call_and_validate(
                headers=sign_in(county) if signs_out else headers, checks=CHECKS)

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as error:  # reported; the next operation runs
            failures.append(f"{operation.label}: {str(error)[:1500]}")
    assert operations >= 30
    assert not failures, "\n\n".join(failures)
