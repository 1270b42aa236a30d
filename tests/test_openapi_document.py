"""The OpenAPI document as an outside client reads it: valid, every error with its body, the
errors any call can answer, one operationId each, money typed, If-Match and ETag described."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from openapi_spec_validator import validate

from claims.api.security import allowed_roles

API = "/api/v1"
ERROR_REF = "#/components/schemas/Error"


@pytest.fixture
def document(client: Any) -> dict[str, Any]:
    answer = client.get(f"{API}/openapi.json")
    assert answer.status_code == 200
    return answer.json


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, operation) for path, item in document["paths"].items()
            for method, operation in item.items() if method != "parameters"]


def test_the_document_is_valid_openapi(document):
    validate(document)  # raises, naming the first fault: a response without a description was one


def test_every_operation_has_its_own_operation_id(document):
    ids = [operation.get("operationId") for _path, _method, operation in operations(document)]
    assert None not in ids
    assert len(ids) == len(set(ids)) >= 50
    for operation_id in ids:  # usable as a function name by client generators
        assert re.fullmatch(r"[a-z][a-z0-9_]*", operation_id), operation_id


def test_every_error_answer_is_documented_with_the_error_body(document):
    responses = document["components"]["responses"]
    for path, method, operation in operations(document):
        for code, answer in operation["responses"].items():
            if code == "default" or int(code) < 400:
                continue
            if "$ref" in answer:
                answer = responses[answer["$ref"].rsplit("/", 1)[1]]
            assert answer["content"]["application/json"]["schema"] == {"$ref": ERROR_REF}, (
                method, path, code)


def test_protected_calls_list_401_and_those_closed_to_a_role_list_403(app: Flask, document):
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        if path not in document["paths"] or "docs" in path or path.endswith("openapi.json"):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            responses = document["paths"][path][method.lower()]["responses"]
            public = path in (f"{API}/status",) or (path == f"{API}/auth/token"
                                                     and method == "POST")
            if not public:  # (the sign-in lists its own 401: wrong credentials)
                assert "401" in responses, (method, path)
            else:
                assert "security" in document["paths"][path][method.lower()], (method, path)
            roles = allowed_roles(app.view_functions[rule.endpoint], method)
            if roles is not None and "unit_staff" not in roles:
                assert "403" in responses, (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)


def test_a_refused_event_answers_as_its_documented_409(county, document):
    claim = county.claim()
    answer = county.fire(claim["claim_no"], "approve", amount="1.00")
    assert answer.status_code == 409
    fields = document["components"]["schemas"]["Error"]["properties"]
    assert {"code", "message", "errors", "allowed_events", "state"} <= set(fields)
    assert set(answer.json) <= set(fields)
    assert answer.json["allowed_events"] == [
        "attach_documents", "request_materials", "verify", "withdraw"]
    events = document["paths"][f"{API}/claims/{{claim_no}}/events"]["post"]
    assert events["responses"]["409"]["content"]["application/json"]["schema"]["$ref"] == ERROR_REF


def test_if_match_and_etag_are_described_where_the_server_uses_them(county, document):
    events = document["paths"][f"{API}/claims/{{claim_no}}/events"]["post"]
    assert any(p["in"] == "header" and p["name"] == "If-Match"
               for p in events.get("parameters", []))
    for path, method, code in ((f"{API}/claims/{{claim_no}}", "get", "200"),
                               (f"{API}/claims", "post", "201"),
                               (f"{API}/claims/{{claim_no}}/events", "post", "200")):
        assert "ETag" in document["paths"][path][method]["responses"][code]["headers"], path
    claim = county.claim()
    shown = county.clerk.get(f"{API}/claims/{claim['claim_no']}")
    assert shown.headers["ETag"] == f'"{claim["version"]}"'


def test_money_is_a_two_place_string_in_the_document_and_in_answers(county, document):
    schemas = document["components"]["schemas"]
    estimate = schemas["Claim"]["properties"]["estimate"]
    assert estimate["type"] == "string"
    assert schemas["Claim"]["properties"]["approved_amount"]["nullable"] is True
    assert schemas["ClaimIn"]["properties"]["total_expense"]["type"] == "string"
    claim = county.claim()
    for field in ("estimate", "total_expense", "self_paid"):
        assert re.fullmatch(estimate["pattern"], claim[field]), claim[field]


def test_a_nullable_object_keeps_its_shape(document):
    beneficiary = document["components"]["schemas"]["Claim"]["properties"]["beneficiary"]
    assert beneficiary == {"allOf": [{"$ref": "#/components/schemas/Beneficiary"}],
                           "nullable": True}


def test_events_states_and_text_limits_are_listed(document):
    schemas = document["components"]["schemas"]
    assert "collect" in schemas["ClaimEventIn"]["properties"]["event"]["enum"]
    assert "receipt_no" in schemas["ClaimEventIn"]["description"]
    assert "onsite_scheduled" in schemas["Claim"]["properties"]["state"]["enum"]
    assert schemas["ClaimIn"]["properties"]["hospital"]["maxLength"] == 200
    assert "id_last6" in schemas["StatusQuery"]["description"]
