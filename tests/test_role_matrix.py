"""SPEC §7 roles as a matrix: every API endpoint (read from the app's URL map, so endpoints
added later are in it) x every role (anonymous, admin, clerk, unit_staff of the unit, unit_staff
of another unit), each call's outcome checked against the roles the endpoint declares."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import PASSWORD
from werkzeug.routing import IntegerConverter, Rule

from claims.api.security import allowed_roles, is_public

STAFF_ROLES = ("admin", "clerk", "unit_staff")
# Path parameters naming one unit's data: another unit's staff must get 404 (nothing revealed).
UNIT_SCOPED = {"claim_no", "member_id", "enrolment_id"}
CALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def api_calls(app: Any) -> list[tuple[Rule, str]]:
    """Every (rule, method) under /api/v1 but the interactive docs' static files."""
    calls = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.rule.startswith("/api/v1/docs"):
            continue
        calls.extend((rule, method) for method in CALL_METHODS if method in rule.methods)
    return sorted(calls, key=lambda call: (call[1] == "DELETE", call[0].rule, call[1]))


class World:
    """Unit A with a member, an enrolment and a claim; staff of unit A and of unit B."""

    def __init__(self, county: Any) -> None:
        self.county = county
        self.unit_a = county.unit()["code"]
        self.unit_b = county.unit()["code"]
        member = county.member(self.unit_a)
        self.enrolment = county.enrol(member)
        self.member = member
        self.claim = county.claim(member)

    def url(self, rule: Rule, *, absent: bool = False) -> str:
        """The rule with its parameters filled in: unit A's objects (or ones that do not
        exist), else a harmless value."""
        known = {"claim_no": self.claim["claim_no"], "member_id": self.member["id"],
                 "enrolment_id": self.enrolment["id"], "job": "flag_overdue",
                 "code": "inpatient" if "/products/" in rule.rule else self.unit_a}
        if absent:
            known |= {"claim_no": "LP2000-999999", "member_id": 999999, "enrolment_id": 999999}

        def value(name: str) -> str:
            if name in known:
                return str(known[name])
            return "1" if isinstance(rule._converters[name], IntegerConverter) else "2026-W01"

        return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: value(m.group(1)), rule.rule)

    def token(self, who: str) -> str | None:
        """A fresh token per call: DELETE /auth/token revokes the one it is made with."""
        if who == "anonymous":
            return None
        unit = {"unit_staff_a": self.unit_a, "unit_staff_b": self.unit_b}.get(who)
        if unit:
            self.county.unit_staff(unit)
            username = f"staff-{unit}"
        else:
            self.county.user(who, who)
            username = who
        answer = self.county.client.post("/api/v1/auth/token", json={
            "username": username, "password": PASSWORD})
        assert answer.status_code == 200, answer.json
        return answer.json["access_token"]


def call(client: Any, method: str, url: str, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kwargs: dict[str, Any] = {"headers": headers}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    return client.open(url, method=method, **kwargs)


def test_every_endpoint_answers_each_role_as_it_declares(app, county, client):
    world = World(county)
    calls = api_calls(app)
    assert len(calls) >= 30, "the URL map lost the API"
    wrong: list[str] = []
    for rule, method in calls:
        url = world.url(rule)
        public = is_public(url, method)
        roles = allowed_roles(app.view_functions[rule.endpoint], method)
        if not public and roles is None:
            wrong.append(f"{method} {rule.rule}: declares no roles (use STAFF_ONLY/ANY_STAFF)")
            continue
        for who in ("anonymous", "admin", "clerk", "unit_staff_a", "unit_staff_b"):
            answer = call(client, method, url, world.token(who))
            status = answer.status_code
            role = "unit_staff" if who.startswith("unit_staff") else who
            if status >= 500:
                expected = "no 5xx"
            elif public:
                expected = "not 401/403" if status in (401, 403) else None
            elif who == "anonymous":
                expected = None if status == 401 else "401"
            elif roles is not None and role not in roles:
                expected = None if status == 403 else "403"
            elif status in (401, 403):
                expected = "not 401/403"
            elif who == "unit_staff_b" and UNIT_SCOPED & set(rule.arguments):
                # Another unit's claim answers as one that does not exist: 404 to a read, and
                # to a write whatever a missing claim gets (a malformed body is 422 first).
                absent = call(client, method, world.url(rule, absent=True), world.token(who))
                same = (status, answer.json.get("code")) == (absent.status_code,
                                                              absent.json.get("code"))
                if not same or (method == "GET" and status != 404):
                    expected = f"as for a missing object ({absent.status_code})"
            elif who == "unit_staff_b" and "/units/" in rule.rule and status != 404:
                expected = "404 (another unit)"
            else:
                expected = None
            if status in (401, 403, 404) and not answer.is_json:
                expected = f"a JSON {status}"
            if expected:
                wrong.append(f"{method} {rule.rule} as {who}: {status}, expected {expected}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_no_route_edits_or_deletes_the_audit_trail(app, method):
    """ClaimEvent rows are append-only: no URL touching events takes PUT, PATCH or DELETE."""
    touching = [rule.rule for rule in app.url_map.iter_rules()
                if "event" in rule.rule and method in rule.methods]
    assert touching == []


def test_every_write_route_in_the_api_declares_its_roles(app):
    """A new endpoint without STAFF_ONLY/ANY_STAFF fails here before it ships."""
    undeclared = [f"{method} {rule.rule}" for rule, method in api_calls(app)
                  if not is_public(rule.rule, method)
                  and allowed_roles(app.view_functions[rule.endpoint], method) is None]
    assert undeclared == []
