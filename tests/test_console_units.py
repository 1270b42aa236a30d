"""Console units and members: lists with the enrolment rate, unit pages, adding both."""

from __future__ import annotations

from datetime import date

from conftest import County, new_id_number
from flask.testing import FlaskClient
from test_console import post_form, sign_in


def test_the_units_list_shows_members_insured_and_the_enrolment_rate(
        client: FlaskClient, county: County) -> None:
    unit = county.unit(name="县第一中学", area="城东", employee_count=4)
    for _ in range(2):
        county.enrol(county.member(unit["code"]))
    county.member(unit["code"])  # registered, not insured
    sign_in(client, county)
    html = client.get("/console/units").get_data(as_text=True)
    assert "县第一中学" in html and "城东" in html and "王芳" in html
    assert '<td class="num">2</td><td class="num">50.0%</td>' in html
    assert 'href="/console/members/import"' in html
    page = client.get(f"/console/units/{unit['code']}").get_data(as_text=True)
    assert page.count('href="/console/members/') >= 3 and "50.0%" in page


def test_the_unit_page_masks_every_id_number(client: FlaskClient, county: County) -> None:
    unit = county.unit()
    members = [county.member(unit["code"]) for _ in range(3)]
    sign_in(client, county)
    html = client.get(f"/console/units/{unit['code']}").get_data(as_text=True)
    for member in members:
        assert member["id_number"] not in html and member["id_number_masked"] in html


def test_member_pages_show_the_year_of_birth_not_the_date_the_mask_hides(
        client: FlaskClient, county: County) -> None:
    unit = county.unit()
    member = county.member(unit["code"], born=date(1974, 1, 19))
    sign_in(client, county)
    for path in (f"/console/units/{unit['code']}", f"/console/members/{member['id']}"):
        html = client.get(path).get_data(as_text=True)
        assert member["id_number_masked"] in html and "1974" in html, path
        assert "1974-01-19" not in html and "19740119" not in html, path


def test_adding_a_unit_and_a_member_through_the_forms(client: FlaskClient,
                                                      county: County) -> None:
    sign_in(client, county)
    answer = post_form(client, "/console/units/new", {
        "code": "U900", "name": "县供电公司", "area": "城西", "union_contact": "赵敏",
        "union_phone": "0571-1234567", "union_email": "union@example.org",
        "employee_count": "120"})
    assert answer.status_code == 303 and answer.headers["Location"] == "/console/units/U900"
    id_number = new_id_number(sex="F")
    answer = post_form(client, "/console/members/new", {  # the code as a clerk may type it
        "unit_code": "u900 ", "name": "钱红", "id_number": id_number, "phone": "13900000000"})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    assert answer.headers["Location"] == "/console/units/U900"
    assert client.get("/console/units/u900").status_code == 200
    member = county.clerk.get("/api/v1/members?unit_code=U900").json[0]
    assert member["name"] == "钱红" and member["sex"] == "F"
    page = client.get("/console/units/U900").get_data(as_text=True)
    assert "钱红" in page and id_number not in page


def test_refusals_stand_beside_the_field_and_the_id_number_is_not_echoed(
        client: FlaskClient, county: County) -> None:
    unit = county.unit()
    taken = county.member(unit["code"])["id_number"]
    sign_in(client, county)
    answer = post_form(client, "/console/units/new", {
        "code": unit["code"], "name": "重复", "employee_count": "-3"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422 and 'id="employee_count-error"' in html
    answer = post_form(client, "/console/units/new", {"code": unit["code"], "name": "重复"})
    assert answer.status_code == 409
    assert 'id="code-error" role="alert">已登记，不能重复' in answer.get_data(as_text=True)
    bad = taken[:-1] + ("0" if taken[-1] != "0" else "1")
    answer = post_form(client, "/console/members/new", {
        "unit_code": unit["code"], "name": "孙丽", "id_number": bad})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422 and 'id="id_number-error"' in html and bad not in html
    answer = post_form(client, "/console/members/new", {
        "unit_code": unit["code"], "name": "孙丽", "id_number": taken})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 409 and taken not in html
    assert len(county.clerk.get(f"/api/v1/members?unit_code={unit['code']}").json) == 1


def test_unit_staff_see_their_own_unit_only_and_may_not_add(client: FlaskClient,
                                                            county: County) -> None:
    mine, theirs = county.unit(), county.unit()
    county.unit_staff(mine["code"])
    sign_in(client, county, f"staff-{mine['code']}")
    html = client.get("/console/units").get_data(as_text=True)
    assert mine["code"] in html and theirs["code"] not in html
    assert client.get(f"/console/units/{theirs['code']}").status_code == 404
    page = client.get(f"/console/units/{mine['code']}")
    assert page.status_code == 200
    # Their own roster they import themselves: linked from their pages, the county's forms not.
    assert 'href="/console/members/import' in page.get_data(as_text=True)
    assert 'href="/console/members/import"' in html and "/console/units/new" not in html
    assert client.get("/console/units/new").status_code == 403
    answer = post_form(client, "/console/members/new", {
        "unit_code": mine["code"], "name": "周杰", "id_number": new_id_number()})
    assert answer.status_code == 403


def test_unit_forms_refuse_a_post_without_the_csrf_token(client: FlaskClient,
                                                         county: County) -> None:
    sign_in(client, county)
    assert client.post("/console/units/new", data={"code": "U901", "name": "x"}).status_code == 400
    assert county.clerk.get("/api/v1/units").json == []
