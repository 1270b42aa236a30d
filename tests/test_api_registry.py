"""SPEC §7 for the register: sign-in, auth, units, members, products, enrolments, input limits."""

from __future__ import annotations

import contextlib
import json
import re
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import DATABASES, PASSWORD, new_id_number
from sqlmodel import select

from claims.auth import issue_token, revoke_token
from claims.db import session_scope
from claims.idcard import check_digit, mask
from claims.models import User

API = "/api/v1"
UNITS, MEMBERS, PRODUCTS = f"{API}/units", f"{API}/members", f"{API}/products"
ENROLMENTS, CLAIMS = f"{API}/enrolments", f"{API}/claims"
ERROR_KEYS = {"code", "message", "errors"}
ITEM_KEYS = {"field", "code", "message"}


# --- helpers: what every refusal looks like ------------------------------------------------


def assert_error_shape(answer: Any, status: int) -> dict[str, Any]:
    """The one error shape of SPEC §7: {"code", "message", "errors": [{field, code, message}]}."""
    assert answer.status_code == status, (answer.status_code, answer.get_data(as_text=True))
    assert answer.mimetype == "application/json"
    body = answer.json
    assert ERROR_KEYS <= set(body), body
    assert isinstance(body["code"], str) and body["code"]
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["errors"], list)
    for item in body["errors"]:
        assert ITEM_KEYS <= set(item), item
    return body


def fields_named(answer: Any, status: int = 422) -> set[str | None]:
    return {item["field"] for item in assert_error_shape(answer, status)["errors"]}


def pagination(answer: Any) -> dict[str, Any]:
    return json.loads(answer.headers["X-Pagination"])


def unit_body(code: str = "NEW01", **fields: Any) -> dict[str, Any]:
    return {"code": code, "name": "县第一中学", "area": "城区", "union_contact": "李明",
            "union_phone": "0571-1234567", "union_email": "union@school.example.org",
            "employee_count": 120} | fields


def member_body(unit_code: str, id_number: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"unit_code": unit_code, "name": "王强", "id_number": id_number or new_id_number(),
            "phone": "13900000000"} | fields


def enrolment_body(member: dict[str, Any], product_code: str = "inpatient", *,
                   shares: Any = 1, start: Any = date(2025, 1, 1),
                   end: Any = date(2025, 12, 31), **fields: Any) -> dict[str, Any]:
    def iso(day: Any) -> Any:
        return day.isoformat() if isinstance(day, date) else day

    return {"id_number": member["id_number"], "product_code": product_code, "shares": shares,
            "start_date": iso(start), "end_date": iso(end)} | fields


def with_birth_date(id_number: str, born: str) -> str:
    """The same ID number with another birth date (YYYYMMDD) and a valid check digit."""
    first17 = id_number[:6] + born + id_number[14:17]
    return first17 + check_digit(first17)


def with_wrong_check_digit(id_number: str) -> str:
    wrong = next(c for c in "0123456789X" if c != id_number[17])
    return id_number[:17] + wrong


# --- POST /auth/token -----------------------------------------------------------------------


def test_token_answers_bearer_token_with_its_lifetime(county, client):
    county.clerk  # noqa: B018 - creates the user
    answer = client.post(f"{API}/auth/token",
                         json={"username": "clerk", "password": PASSWORD})
    assert answer.status_code == 200
    body = answer.json
    assert body["token_type"] == "Bearer"
    assert isinstance(body["access_token"], str) and len(body["access_token"]) >= 20
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    listed = client.get(UNITS, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert listed.status_code == 200


def test_token_refuses_wrong_password_and_unknown_user_alike(county, client):
    county.clerk  # noqa: B018 - creates the user
    wrong_password = client.post(f"{API}/auth/token",
                                 json={"username": "clerk", "password": "not the password"})
    unknown_user = client.post(f"{API}/auth/token",
                               json={"username": "nobody", "password": PASSWORD})
    first = assert_error_shape(wrong_password, 401)
    second = assert_error_shape(unknown_user, 401)
    assert first["message"] == second["message"]
    assert "access_token" not in first and "access_token" not in second


@pytest.mark.parametrize("body, field", [
    ({"username": "clerk"}, "password"),
    ({"password": PASSWORD}, "username"),
    ({"username": "clerk", "password": PASSWORD, "remember": True}, "remember"),
], ids=["missing-password", "missing-username", "unknown-field"])
def test_token_refuses_missing_or_unknown_fields_with_422(county, client, body, field):
    county.clerk  # noqa: B018 - creates the user
    answer = client.post(f"{API}/auth/token", json=body)
    assert field in fields_named(answer)


# --- auth on every endpoint -----------------------------------------------------------------

PROTECTED = [UNITS, MEMBERS, PRODUCTS, ENROLMENTS, CLAIMS]
# The catalogue is configuration: /products has no POST (it answers 405, see below).
CALLS = [(method, path) for path in PROTECTED for method in ("GET", "POST")
         if (method, path) != ("POST", PRODUCTS)]
BAD_AUTHORIZATION = {"missing": None, "garbage": "Bearer garbage", "basic": "Basic x",
                     "empty-bearer": "Bearer "}


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATION.values(),
                         ids=BAD_AUTHORIZATION.keys())
@pytest.mark.parametrize("method, path", CALLS)
def test_calls_without_a_valid_bearer_token_answer_401_json(client, method, path,
                                                            authorization):
    headers = {"Authorization": authorization} if authorization else {}
    body = {} if method == "POST" else None
    answer = client.open(path, method=method, headers=headers, json=body)
    assert_error_shape(answer, 401)
    assert "Location" not in answer.headers
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_or_unknown_token_of_the_right_shape_answers_401(county, client):
    county.clerk  # noqa: B018 - creates the user and its token
    forged = "Bearer " + "A" * 43
    assert_error_shape(client.get(UNITS, headers={"Authorization": forged}), 401)


@pytest.mark.parametrize("ttl", [-1, 0], ids=["expired", "expiring-now"])
def test_an_expired_token_answers_401(county, client, ttl):
    county.clerk  # noqa: B018 - creates the user
    with session_scope(county.app.extensions["mutualaid"].engine) as session:
        user = session.exec(select(User).where(User.username == "clerk")).one()
        token, _ = issue_token(session, user, ttl)
    assert_error_shape(client.get(UNITS, headers={"Authorization": f"Bearer {token}"}), 401)


def test_a_revoked_token_answers_401(county, client):
    token = county.clerk.token
    assert county.clerk.get(UNITS).status_code == 200
    with session_scope(county.app.extensions["mutualaid"].engine) as session:
        assert revoke_token(session, token)
    assert_error_shape(client.get(UNITS, headers={"Authorization": f"Bearer {token}"}), 401)


def test_an_unknown_api_path_answers_404_json(county):
    assert_error_shape(county.clerk.get(f"{API}/no-such-thing"), 404)


def test_readyz_needs_no_token(client):
    answer = client.get("/readyz")
    assert answer.status_code in (200, 503)
    assert answer.mimetype == "application/json"


def test_posting_to_the_catalogue_answers_405_json(county):
    assert_error_shape(county.clerk.post(PRODUCTS, {"code": "dental"}), 405)


def test_healthz_answers_200_without_a_token(client):
    assert client.get("/healthz").status_code == 200


def test_openapi_document_is_public_and_lists_the_paths(client):
    answer = client.get(f"{API}/openapi.json")
    assert answer.status_code == 200
    paths = answer.json["paths"]
    for path in PROTECTED + [f"{API}/auth/token"]:
        assert path in paths, sorted(paths)


def test_docs_page_loads_its_assets_locally_not_from_a_cdn(client):
    page = client.get(f"{API}/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assets = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', html)
    assert assets, html
    assert not re.search(r"https?://", html), "the docs page names an outside host"
    for asset in assets:
        assert asset.startswith(f"{API}/docs/static/"), asset
        response = client.get(asset)
        try:  # a file answer streams: close it, or its open file outlives the test
            assert response.status_code == 200, asset
            assert len(response.get_data()) > 1000, asset
        finally:
            response.close()


# --- units ----------------------------------------------------------------------------------


def test_a_clerk_registers_a_unit_with_201_and_the_unit(county):
    body = unit_body()
    answer = county.clerk.post(UNITS, body)
    assert answer.status_code == 201, answer.json
    assert {k: answer.json[k] for k in body} == body
    shown = county.clerk.get(f"{UNITS}/{body['code']}")
    assert shown.status_code == 200 and shown.json["name"] == body["name"]


def test_duplicate_unit_code_answers_409(county):
    unit = county.unit()
    answer = county.clerk.post(UNITS, unit_body(unit["code"], name="另一个单位"))
    assert fields_named(answer, 409) == {"code"}


@pytest.mark.parametrize("change, field", [
    ({"code": None}, "code"),
    ({"name": None}, "name"),
    ({"code": ""}, "code"),
    ({"name": "单" * 201}, "name"),
    ({"area": "x" * 201}, "area"),
    ({"employee_count": "12"}, "employee_count"),
    ({"employee_count": -1}, "employee_count"),
    ({"employee_count": True}, "employee_count"),
    ({"employee_count": 1.5}, "employee_count"),
    ({"union_email": "not-an-email"}, "union_email"),
    ({"fax": "0571-7654321"}, "fax"),
], ids=["missing-code", "missing-name", "empty-code", "name-201-chars", "area-201-chars",
        "count-as-string", "count-negative", "count-boolean", "count-fraction", "bad-email",
        "unknown-field"])
def test_bad_unit_input_answers_422_naming_the_field(county, change, field):
    body = {k: v for k, v in (unit_body() | change).items() if v is not None}
    answer = county.clerk.post(UNITS, body)
    assert field in fields_named(answer)
    assert county.clerk.get(f"{UNITS}/NEW01").status_code == 404


@pytest.mark.parametrize("typed", ["t01", "T01 ", " t01\t"],
                         ids=["lower-case", "trailing-space", "padded-lower-case"])
def test_a_unit_code_differing_only_in_case_or_spaces_answers_409(county, typed):
    assert county.clerk.post(UNITS, unit_body("T01")).status_code == 201
    answer = county.clerk.post(UNITS, unit_body(typed, name="另一个单位"))
    assert fields_named(answer, 409) == {"code"}
    assert pagination(county.clerk.get(UNITS))["total"] == 1


def test_a_unit_code_is_kept_upper_cased_and_a_clerk_may_type_it_in_any_case(county):
    answer = county.clerk.post(UNITS, unit_body(" u001 "))
    assert answer.status_code == 201 and answer.json["code"] == "U001", answer.json
    assert county.clerk.get(f"{UNITS}/U001").status_code == 200
    assert county.clerk.get(f"{UNITS}/u001").json["code"] == "U001"
    staff = county.user("staff-typed-lower", "unit_staff", "u001")  # mutualaid users create
    assert [unit["code"] for unit in staff.get(UNITS).json] == ["U001"]
    member = county.clerk.post(MEMBERS, member_body("u001"))
    assert member.status_code == 201 and member.json["unit_code"] == "U001", member.json
    listed = county.clerk.get(MEMBERS, query_string={"unit_code": "u001 "})
    assert [m["id"] for m in listed.json] == [member.json["id"]]


def test_a_unit_code_of_blanks_answers_422(county):
    assert "code" in fields_named(county.clerk.post(UNITS, unit_body("   ")))
    assert pagination(county.clerk.get(UNITS))["total"] == 0


def test_a_unit_name_of_200_characters_is_accepted(county):
    answer = county.clerk.post(UNITS, unit_body(name="单" * 200))
    assert answer.status_code == 201, answer.json


def test_an_admin_registers_units_too(county):
    assert county.admin.post(UNITS, unit_body()).status_code == 201


def test_unit_staff_see_their_own_unit_and_not_another(county):
    own, other = county.unit(), county.unit()
    staff = county.unit_staff(own["code"])
    assert staff.get(f"{UNITS}/{own['code']}").status_code == 200
    assert_error_shape(staff.get(f"{UNITS}/{other['code']}"), 404)
    listed = staff.get(UNITS)
    assert [u["code"] for u in listed.json] == [own["code"]]
    assert pagination(listed)["total"] == 1


def test_unit_staff_may_not_register_units(county):
    staff = county.unit_staff(county.unit()["code"])
    assert_error_shape(staff.post(UNITS, unit_body()), 403)


def test_unit_list_is_a_json_array_paginated_in_x_pagination(county):
    for _ in range(3):
        county.unit()
    answer = county.clerk.get(UNITS, query_string={"page": 2, "page_size": 2})
    assert answer.status_code == 200
    assert isinstance(answer.json, list) and len(answer.json) == 1
    page = pagination(answer)
    assert page["total"] == 3 and page["total_pages"] == 2 and page["page"] == 2


def test_lists_default_to_pages_of_20(county):
    for _ in range(21):
        county.unit()
    answer = county.clerk.get(UNITS)
    assert len(answer.json) == 20
    assert pagination(answer)["total"] == 21


@pytest.mark.parametrize("query", [{"page_size": 101}, {"page": 0}, {"page_size": 0},
                                   {"page": "first"}],
                         ids=["page-size-101", "page-0", "page-size-0", "page-not-a-number"])
@pytest.mark.parametrize("path", [UNITS, MEMBERS, ENROLMENTS, CLAIMS])
def test_bad_pagination_answers_422(county, path, query):
    answer = county.clerk.get(path, query_string=query)
    assert set(query) <= fields_named(answer)


def test_page_size_100_is_allowed(county):
    assert county.clerk.get(UNITS, query_string={"page_size": 100}).status_code == 200


# --- members --------------------------------------------------------------------------------


def test_a_member_answers_201_with_masked_id_and_derived_birth_date_and_sex(county):
    unit = county.unit()
    id_number = new_id_number(sex="F", born=date(1990, 3, 7))
    answer = county.clerk.post(MEMBERS, member_body(unit["code"], id_number))
    assert answer.status_code == 201, answer.json
    body = answer.json
    assert isinstance(body["id"], int)
    assert body["id_number_masked"] == id_number[:6] + "*" * 8 + id_number[-4:]
    assert body["birth_date"] == "1990-03-07"
    assert body["sex"] == "F"
    assert body["unit_code"] == unit["code"]
    male = county.member(unit["code"], sex="M")
    assert male["sex"] == "M"


def test_a_member_shown_again_never_gives_the_birth_date_beside_the_masked_number(county):
    # The mask hides exactly the birth date (6 + 8 * + 4): beside it, the date is the number.
    unit = county.unit()
    id_number = new_id_number(born=date(1974, 1, 19))
    member_id = county.clerk.post(MEMBERS, member_body(unit["code"], id_number)).json["id"]
    staff = county.unit_staff(unit["code"])
    for api in (county.clerk, staff):
        for path in (f"{MEMBERS}?unit_code={unit['code']}", f"{MEMBERS}/{member_id}",
                     f"{MEMBERS}/{member_id}/history"):
            answer = api.get(path)
            assert answer.status_code == 200, (path, answer.json)
            text = answer.get_data(as_text=True)
            assert "1974-01-19" not in text and "19740119" not in text, path
            assert id_number not in text, path
        assert api.get(f"{MEMBERS}/{member_id}").json["birth_year"] == 1974


@pytest.mark.parametrize("phone", ["omitted", None], ids=["omitted", "null"])
def test_a_member_without_a_phone_answers_201_with_no_phone(county, phone):
    unit = county.unit()
    body = member_body(unit["code"])
    if phone == "omitted":
        del body["phone"]
    else:
        body["phone"] = None
    answer = county.clerk.post(MEMBERS, body)
    assert answer.status_code == 201, answer.json
    assert answer.json["phone"] is None
    assert county.clerk.get(f"{MEMBERS}/{answer.json['id']}").json["phone"] is None


def test_a_lower_case_x_check_digit_is_taken_as_x(county):
    unit = county.unit()
    id_number = next(n for n in (new_id_number() for _ in range(200)) if n.endswith("X"))
    answer = county.clerk.post(MEMBERS, member_body(unit["code"], id_number.lower()))
    assert answer.status_code == 201, answer.json
    assert answer.json["id_number_masked"] == mask(id_number)


@pytest.mark.parametrize("spelling", ["same", "lower-case", "padded"])
def test_duplicate_member_id_number_answers_409(county, spelling):
    unit = county.unit()
    id_number = next(n for n in (new_id_number() for _ in range(200)) if n.endswith("X"))
    assert county.clerk.post(MEMBERS, member_body(unit["code"], id_number)).status_code == 201
    again = {"same": id_number, "lower-case": id_number.lower(),
             "padded": f" {id_number} "}[spelling]
    other_unit = county.unit()
    answer = county.clerk.post(MEMBERS, member_body(other_unit["code"], again, name="另一人"))
    assert fields_named(answer, 409) == {"id_number"}
    assert pagination(county.clerk.get(MEMBERS))["total"] == 1


@pytest.mark.parametrize("change, field", [
    ({"id_number": "wrong-check-digit"}, "id_number"),
    ({"id_number": "17-characters"}, "id_number"),
    ({"id_number": "impossible-birth-date"}, "id_number"),
    ({"id_number": "born-1899"}, "id_number"),
    ({"id_number": "33010019850615001"}, "id_number"),
    ({"id_number": "3301001985061500１X"}, "id_number"),
    ({"unit_code": "NO-SUCH-UNIT"}, "unit_code"),
    ({"name": None}, "name"),
    ({"name": "张" * 201}, "name"),
    ({"email": "x@example.org"}, "email"),
], ids=["bad-check-digit", "17-characters", "impossible-birth-date", "born-1899",
        "17-digits",
        "full-width-digit", "unknown-unit", "missing-name", "name-201-chars", "unknown-field"])
def test_bad_member_input_answers_422_naming_the_field(county, change, field):
    unit = county.unit()
    valid = new_id_number()
    id_numbers = {
        "wrong-check-digit": with_wrong_check_digit(valid),
        "17-characters": valid[:17],
        "impossible-birth-date": with_birth_date(valid, "19850230"),
        "born-1899": with_birth_date(valid, "18991231"),
    }
    if "id_number" in change:
        change = {"id_number": id_numbers.get(change["id_number"], change["id_number"])}
    body = {k: v for k, v in (member_body(unit["code"], valid) | change).items() if v is not None}
    answer = county.clerk.post(MEMBERS, body)
    assert field in fields_named(answer)
    assert pagination(county.clerk.get(MEMBERS))["total"] == 0


def test_an_id_number_born_after_today_answers_422(county):
    unit = county.unit()
    unborn = with_birth_date(new_id_number(), f"{county.today + timedelta(days=1):%Y%m%d}")
    answer = county.clerk.post(MEMBERS, member_body(unit["code"], unborn))
    assert "id_number" in fields_named(answer)


def test_a_member_answer_never_shows_the_full_id_number(county):
    unit = county.unit()
    id_number = new_id_number()
    created = county.clerk.post(MEMBERS, member_body(unit["code"], id_number))
    assert created.status_code == 201
    member_id = created.json["id"]
    answers = [
        created,
        county.clerk.get(f"{MEMBERS}/{member_id}"),
        county.clerk.get(MEMBERS),
        county.clerk.get(MEMBERS, query_string={"unit_code": unit["code"]}),
        county.unit_staff(unit["code"]).get(MEMBERS),
        county.clerk.post(MEMBERS, member_body(unit["code"], id_number)),  # the 409
        county.clerk.post(ENROLMENTS, enrolment_body({"id_number": id_number})),
        county.clerk.get(ENROLMENTS),
    ]
    for answer in answers:
        assert answer.status_code < 500
        text = answer.get_data(as_text=True)
        assert id_number not in text and id_number[:17] not in text, text


def test_unit_staff_see_only_their_own_units_members(county):
    own, other = county.unit(), county.unit()
    mine = county.member(own["code"])
    theirs = county.member(other["code"])
    staff = county.unit_staff(own["code"])
    listed = staff.get(MEMBERS)
    assert [m["id"] for m in listed.json] == [mine["id"]]
    assert pagination(listed)["total"] == 1
    assert staff.get(f"{MEMBERS}/{mine['id']}").status_code == 200
    assert_error_shape(staff.get(f"{MEMBERS}/{theirs['id']}"), 404)
    filtered = staff.get(MEMBERS, query_string={"unit_code": other["code"]})
    assert filtered.json == []


def test_unit_staff_may_not_register_members(county):
    unit = county.unit()
    staff = county.unit_staff(unit["code"])
    assert_error_shape(staff.post(MEMBERS, member_body(unit["code"])), 403)


def test_an_unknown_member_answers_404(county):
    assert_error_shape(county.clerk.get(f"{MEMBERS}/999999"), 404)


# --- products -------------------------------------------------------------------------------


@pytest.fixture
def products(county) -> dict[str, dict[str, Any]]:
    answer = county.clerk.get(PRODUCTS)
    assert answer.status_code == 200
    assert isinstance(answer.json, list)
    return {product["code"]: product for product in answer.json}


def test_products_answers_the_four_default_products(products):
    assert set(products) == {"inpatient", "accident", "critical_illness", "female_special"}
    for product in products.values():
        for key in ("code", "name", "kind", "premium_per_share", "max_shares", "waiting_days",
                    "claim_deadline_days", "rules", "required_documents",
                    "conditional_documents"):
            assert key in product, (product["code"], key)
        assert product["max_shares"] == 3
        assert isinstance(product["rules"], list) and product["rules"]
        assert all(isinstance(code, str) for code in product["required_documents"])
        assert re.fullmatch(r"\d+\.\d\d", product["premium_per_share"])


@pytest.mark.parametrize("code, premium, waiting, deadline", [
    ("inpatient", "30.00", 90, 730),
    ("accident", "20.00", 0, 365),
    ("critical_illness", "40.00", 180, 365),
    ("female_special", "20.00", 180, 365),
])
def test_product_numbers_are_those_of_the_default_catalogue(products, code, premium, waiting,
                                                           deadline):
    product = products[code]
    assert product["premium_per_share"] == premium
    assert product["waiting_days"] == waiting
    assert product["claim_deadline_days"] == deadline


def test_product_documents_are_code_lists(products):
    assert products["inpatient"]["name"] == "住院医疗互助保障"
    assert products["inpatient"]["required_documents"] == [
        "claim_form", "id_card", "invoice", "settlement_sheet", "discharge_summary"]
    assert products["inpatient"]["conditional_documents"] == {}
    assert products["accident"]["required_documents"] == ["claim_form", "id_card",
                                                           "accident_proof"]
    assert products["accident"]["conditional_documents"] == {
        "invoice": "medical", "disability_assessment": "disability",
        "death_certificate": "death"}
    for code in ("critical_illness", "female_special"):
        assert products[code]["required_documents"] == [
            "claim_form", "id_card", "diagnosis_certificate", "pathology_report"]


def test_products_are_paginated_like_every_list(county, products):
    answer = county.clerk.get(PRODUCTS, query_string={"page": 2, "page_size": 3})
    assert [p["code"] for p in answer.json] == list(products)[3:]
    assert json.loads(answer.headers["X-Pagination"])["total"] == len(products)
    assert_error_shape(county.clerk.get(PRODUCTS, query_string={"kind": "x"}), 422)


def test_unit_staff_may_read_products(county, products):
    staff = county.unit_staff(county.unit()["code"])
    answer = staff.get(PRODUCTS)
    assert answer.status_code == 200
    assert {p["code"] for p in answer.json} == set(products)


# --- enrolments -----------------------------------------------------------------------------


def test_an_enrolment_answers_201(county):
    member = county.member()
    answer = county.clerk.post(ENROLMENTS, enrolment_body(member, shares=2))
    assert answer.status_code == 201, answer.json
    body = answer.json
    assert body["product_code"] == "inpatient" and body["shares"] == 2
    assert body["start_date"] == "2025-01-01" and body["end_date"] == "2025-12-31"
    assert body["id_number_masked"] == mask(member["id_number"])


def test_an_enrolment_may_start_in_the_past_and_run_longer_than_a_year(county):
    member = county.member()
    start = county.today - timedelta(days=1000)
    answer = county.clerk.post(ENROLMENTS, enrolment_body(
        member, start=start, end=start + timedelta(days=3 * 365)))
    assert answer.status_code == 201, answer.json


def test_a_one_day_enrolment_is_accepted(county):
    member = county.member()
    answer = county.clerk.post(ENROLMENTS, enrolment_body(
        member, start=date(2025, 3, 1), end=date(2025, 3, 1)))
    assert answer.status_code == 201, answer.json


@pytest.mark.parametrize("start, end", [
    (date(2025, 12, 31), date(2026, 6, 30)),   # starts on the first term's last day
    (date(2024, 6, 1), date(2025, 1, 1)),      # ends on the first term's first day
    (date(2025, 3, 1), date(2025, 4, 1)),      # inside the first term
    (date(2024, 1, 1), date(2026, 12, 31)),    # around the first term
    (date(2025, 1, 1), date(2025, 12, 31)),    # the same term again
], ids=["touching-end", "touching-start", "inside", "around", "same"])
def test_overlapping_enrolment_answers_409(county, start, end):
    member = county.member()
    county.enrol(member, start=date(2025, 1, 1), end=date(2025, 12, 31))
    answer = county.clerk.post(ENROLMENTS, enrolment_body(member, start=start, end=end))
    assert_error_shape(answer, 409)


def test_a_second_term_after_the_first_is_201(county):
    member = county.member()
    county.enrol(member, start=date(2025, 1, 1), end=date(2025, 12, 31))
    answer = county.clerk.post(ENROLMENTS, enrolment_body(
        member, start=date(2026, 1, 1), end=date(2026, 12, 31)))
    assert answer.status_code == 201, answer.json


def test_the_same_term_in_another_product_is_201(county):
    member = county.member()
    county.enrol(member, start=date(2025, 1, 1), end=date(2025, 12, 31))
    answer = county.clerk.post(ENROLMENTS, enrolment_body(member, "accident"))
    assert answer.status_code == 201, answer.json


@pytest.mark.parametrize("change, field", [
    ({"shares": 0}, "shares"),
    ({"shares": 4}, "shares"),
    ({"shares": "1"}, "shares"),
    ({"shares": 1.5}, "shares"),
    ({"end_date": "2024-12-31"}, "end_date"),
    ({"product_code": "dental"}, "product_code"),
    ({"start_date": "2026-02-30"}, "start_date"),
    ({"end_date": "2025-13-01"}, "end_date"),
    ({"start_date": "01/01/2025"}, "start_date"),
    ({"start_date": None}, "start_date"),
    ({"note": "late"}, "note"),
], ids=["shares-0", "shares-4", "shares-string", "shares-fraction", "end-before-start",
        "unknown-product", "february-30", "month-13", "not-iso", "missing-start",
        "unknown-field"])
def test_bad_enrolment_input_answers_422_naming_the_field(county, change, field):
    member = county.member()
    body = {k: v for k, v in (enrolment_body(member) | change).items() if v is not None}
    answer = county.clerk.post(ENROLMENTS, body)
    assert field in fields_named(answer)
    assert pagination(county.clerk.get(ENROLMENTS))["total"] == 0


def test_enrolling_an_unregistered_id_number_answers_422_naming_id_number(county):
    answer = county.clerk.post(ENROLMENTS, enrolment_body({"id_number": new_id_number()}))
    assert "id_number" in fields_named(answer)


@pytest.mark.parametrize("born, accepted", [
    (date(2009, 1, 2), False),   # 15 on 1 January 2025, 16 the day after
    (date(2009, 1, 1), True),    # 16 that day
    (date(1964, 1, 2), True),    # 60, 61 the day after
    (date(1964, 1, 1), False),   # 61 that day
], ids=["15", "16-on-the-day", "60-the-day-before-61", "61-on-the-day"])
def test_age_limits_16_to_60_hold_on_the_start_date(county, born, accepted):
    member = county.member(born=born)
    answer = county.clerk.post(ENROLMENTS, enrolment_body(member, start=date(2025, 1, 1)))
    if accepted:
        assert answer.status_code == 201, answer.json
    else:
        assert "id_number" in fields_named(answer)


def test_a_man_may_not_enrol_in_female_special(county):
    man = county.member(sex="M", born=date(1990, 1, 1))
    answer = county.clerk.post(ENROLMENTS, enrolment_body(man, "female_special"))
    assert fields_named(answer)


def test_a_woman_may_enrol_in_female_special(county):
    woman = county.member(sex="F", born=date(1990, 1, 1))
    answer = county.clerk.post(ENROLMENTS, enrolment_body(woman, "female_special"))
    assert answer.status_code == 201, answer.json


def test_accident_enrolment_warns_when_under_half_the_unit_is_enrolled(county):
    unit = county.unit(employee_count=50)
    member = county.member(unit["code"])
    answer = county.clerk.post(ENROLMENTS, enrolment_body(member, "accident"))
    assert answer.status_code == 201, answer.json
    assert answer.json["warnings"], answer.json


def test_accident_enrolment_does_not_warn_when_a_small_unit_is_all_enrolled(county):
    unit = county.unit(employee_count=1)
    member = county.member(unit["code"])
    answer = county.clerk.post(ENROLMENTS, enrolment_body(member, "accident"))
    assert answer.status_code == 201, answer.json
    assert answer.json["warnings"] == []


def test_unit_staff_may_not_enrol(county):
    unit = county.unit()
    member = county.member(unit["code"])
    staff = county.unit_staff(unit["code"])
    assert_error_shape(staff.post(ENROLMENTS, enrolment_body(member)), 403)


def test_unit_staff_see_only_their_own_units_enrolments(county):
    own, other = county.unit(), county.unit()
    mine = county.enrol(county.member(own["code"]))
    theirs = county.enrol(county.member(other["code"]))
    staff = county.unit_staff(own["code"])
    assert [e["id"] for e in staff.get(ENROLMENTS).json] == [mine["id"]]
    assert_error_shape(staff.get(f"{ENROLMENTS}/{theirs['id']}"), 404)


# --- input limits and the error shape -------------------------------------------------------


def test_a_body_over_1_mib_answers_413_json(county):
    body = json.dumps(unit_body(name="x" * (1024 * 1024)))
    answer = county.clerk.post(UNITS, data=body, content_type="application/json")
    assert_error_shape(answer, 413)


def test_invalid_json_answers_400_json(county):
    answer = county.clerk.post(UNITS, data='{"code": "X1", "name": ',
                               content_type="application/json")
    assert_error_shape(answer, 400)


@pytest.mark.parametrize("path", [UNITS, MEMBERS, ENROLMENTS, CLAIMS])
def test_a_json_array_body_answers_422_json(county, path):
    answer = county.clerk.post(path, data="[]", content_type="application/json")
    assert answer.status_code in (400, 422)
    assert_error_shape(answer, answer.status_code)


def test_every_error_answer_has_the_contract_shape(county, client):
    unit = county.unit()
    member = county.member(unit["code"])
    staff = county.unit_staff(unit["code"])
    answers = {
        400: county.clerk.post(UNITS, data="{", content_type="application/json"),
        401: client.get(UNITS),
        403: staff.post(UNITS, unit_body()),
        404: county.clerk.get(f"{UNITS}/NOPE"),
        409: county.clerk.post(UNITS, unit_body(unit["code"])),
        413: county.clerk.post(UNITS, data="x" * (1024 * 1024 + 1),
                               content_type="application/json"),
        422: county.clerk.post(MEMBERS, member_body(unit["code"], member["id_number"][:17])),
    }
    for status, answer in answers.items():
        body = assert_error_shape(answer, status)
        if status in (409, 422):
            assert body["errors"] and all(item["field"] for item in body["errors"]), body


@pytest.mark.parametrize("kind", DATABASES)
def test_the_upgrade_upper_cases_unit_codes_but_those_told_apart_by_case_alone(kind, tmp_path):
    from test_tally import database_at

    from migrations import upgrade

    with contextlib.contextmanager(database_at)(kind, tmp_path, "0007_claim_tally_product") as url:
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            for code in ("u001", "U002", "t01", "T01", "ab", "aB"):
                connection.execute(sa.text(
                    "INSERT INTO unit (code, name, employee_count, created_at) "
                    "VALUES (:code, :code, 0, CURRENT_TIMESTAMP)"), {"code": code})
        upgrade(url)
        with engine.connect() as connection:
            codes = set(connection.execute(sa.text("SELECT code FROM unit")).scalars())
        engine.dispose()
    assert codes == {"U001", "U002", "t01", "T01", "ab", "aB"}


def member_names_after_upgrade(kind: str, tmp_path: Any, revision: str,
                               written: list[str]) -> list[str]:
    """Members named `written` in a database at `revision`, upgraded to head: their names."""
    from test_tally import database_at

    from migrations import upgrade

    with contextlib.contextmanager(database_at)(kind, tmp_path, revision) as url:
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO unit (id, code, name, employee_count, created_at) "
                "VALUES (1, 'U1', 'U1', 0, CURRENT_TIMESTAMP)"))
            for i, name in enumerate(written):
                connection.execute(sa.text(
                    "INSERT INTO member (unit_id, name, id_number, birth_date, sex, created_at) "
                    "VALUES (1, :name, :id_number, '1990-01-01', 'M', CURRENT_TIMESTAMP)"),
                    {"name": name, "id_number": f"ID{i}"})
        upgrade(url)
        with engine.connect() as connection:
            names = list(connection.execute(sa.text("SELECT name FROM member ORDER BY id"))
                         .scalars())
        engine.dispose()
    return names


@pytest.mark.parametrize("kind", DATABASES)
def test_the_upgrade_drops_the_padding_in_names_stored_before(kind, tmp_path):
    written = ["张\u3000三", " 李 四 ", "Aynur  Tursun", "王五"]
    assert member_names_after_upgrade(kind, tmp_path, "0008_unit_codes_upper", written) == [
        "张三", "李四", "Aynur Tursun", "王五"]


@pytest.mark.parametrize("kind", DATABASES)
def test_the_upgrade_writes_one_middle_dot_in_names_stored_before(kind, tmp_path):
    written = ["阿依古丽・买买提", "阿依古丽 • 买买提", "阿依古丽.买买提", "A. Tursun", "王五"]
    assert member_names_after_upgrade(kind, tmp_path, "0011_manifest_digest", written) == [
        "阿依古丽·买买提"] * 3 + ["A. Tursun", "王五"]
