"""The staff console (/console/): sign-in, CSRF, scoping, the claim page and its event forms."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from conftest import PASSWORD, County
from flask.testing import FlaskClient

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/console/login") -> str:
    """The CSRF token of the session, as a console form carries it."""
    match = _TOKEN.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client: FlaskClient, county: County, username: str = "clerk") -> None:
    """Sign in through the form, as a user the county fixture made."""
    if username == "clerk":
        county.clerk  # noqa: B018 - creates the user
    answer = client.post("/console/login", data={
        "username": username, "password": PASSWORD, "csrf_token": csrf_token(client)})
    assert answer.status_code == 302, answer.get_data(as_text=True)


def test_signing_in_goes_to_a_console_page_named_by_next_and_nowhere_else(
        client: FlaskClient, county: County) -> None:
    county.clerk  # noqa: B018 - creates the user
    for target, lands in (("/console/claims", "/console/claims"),
                          ("https://evil.example/", "/console/"),
                          ("/console/\\evil.example", "/console/"),
                          ("/console/%0d%0aSet-Cookie:x=1", "/console/%0d%0aSet-Cookie:x=1"),
                          ("/console/\r\nSet-Cookie: x=1", "/console/")):
        client.get("/console/logout")
        answer = client.post("/console/login", data={
            "username": "clerk", "password": PASSWORD, "next": target,
            "csrf_token": csrf_token(client)})
        assert answer.status_code == 302, (target, answer.status_code)
        assert answer.headers["Location"] == lands, target
        assert "Set-Cookie: x" not in str(answer.headers)


def post_form(client: FlaskClient, path: str, data: dict[str, Any]) -> Any:
    """POST a console form with the session's CSRF token."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client, "/console/")})


def test_the_console_asks_for_sign_in_and_sets_secure_headers(client: FlaskClient) -> None:
    answer = client.get("/console/claims")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/console/login?next=/console/claims")
    page = client.get("/console/login")
    assert page.status_code == 200 and "工作人员登录" in page.get_data(as_text=True)
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_sign_in_sets_an_httponly_lax_cookie_and_sign_out_ends_it(client: FlaskClient,
                                                                  county: County) -> None:
    county.clerk  # noqa: B018
    answer = client.post("/console/login", data={
        "username": "clerk", "password": PASSWORD, "csrf_token": csrf_token(client)})
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/console/").status_code == 200
    assert post_form(client, "/console/logout", {}).status_code == 302
    assert client.get("/console/").status_code == 302


def test_a_wrong_password_is_refused(client: FlaskClient, county: County) -> None:
    county.clerk  # noqa: B018
    answer = client.post("/console/login", data={
        "username": "clerk", "password": "wrong", "csrf_token": csrf_token(client)})
    assert answer.status_code == 401 and "用户名或密码不正确" in answer.get_data(as_text=True)
    assert client.get("/console/").status_code == 302


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
        client: FlaskClient, county: County) -> None:
    claim = county.claim()
    sign_in(client, county)
    answer = client.post(f"/console/claims/{claim['claim_no']}/events/verify",
                         data={"version": claim["version"]})
    assert answer.status_code == 400
    after = county.clerk.get(f"/api/v1/claims/{claim['claim_no']}").json
    assert after["state"] == "logged" and after["version"] == claim["version"]
    assert client.post("/console/login", data={"username": "clerk",
                                               "password": PASSWORD}).status_code == 400


def test_the_api_needs_no_csrf_token(client: FlaskClient, county: County) -> None:
    claim = county.claim()
    sign_in(client, county)  # a console session in the same client changes nothing for the API
    assert county.fire(claim["claim_no"], "verify").status_code == 200


def test_home_counts_what_needs_doing(client: FlaskClient, county: County) -> None:
    county.claim()
    ready = county.claim()
    county.fire(ready["claim_no"], "verify")
    sign_in(client, county)
    html = client.get("/console/").get_data(as_text=True)
    assert "已登记，待核验" in html and "待报送（本周批次）" in html
    assert 'href="/console/claims?state=ready"' in html
    listing = client.get("/console/claims?state=ready").get_data(as_text=True)
    assert ready["claim_no"] in listing and "共 1 件" in listing


def test_the_list_filters_by_claim_number_and_unit(client: FlaskClient, county: County) -> None:
    first, second = county.claim(), county.claim()
    sign_in(client, county)
    html = client.get(f"/console/claims?q={first['claim_no'][-3:]}").get_data(as_text=True)
    assert first["claim_no"] in html and second["claim_no"] not in html
    html = client.get(f"/console/claims?unit_code={second['unit_code'].lower()}").get_data(
        as_text=True)  # a unit code in any case
    assert second["claim_no"] in html and first["claim_no"] not in html
    # A value outside a list (a hand-made post) is told so, not in another form's words.
    body = county.claim_body(county.member(), cause="disease")
    answer = post_form(client, "/console/claims/new", body).get_data(as_text=True)
    assert 'id="cause-error" role="alert">请从列表中选择' in answer and "审核结果" not in answer


def test_the_list_finds_a_workers_claims_by_name(client: FlaskClient, county: County) -> None:
    unit = county.unit()["code"]
    xie, other = county.member(unit, name="谢娜娟"), county.member(unit, name="王强")
    for member in (xie, other):
        county.enrol(member)
    mine, theirs = county.claim(xie), county.claim(other)
    county.unit_staff(unit)
    sign_in(client, county, f"staff-{unit}")
    html = client.get("/console/claims?name=娜娟").get_data(as_text=True)
    assert mine["claim_no"] in html and theirs["claim_no"] not in html
    assert "共 1 件" in html and 'value="娜娟"' in html
    spaced = client.get("/console/claims?name=谢　娜娟").get_data(as_text=True)  # as typed
    assert mine["claim_no"] in spaced


def test_the_list_says_how_many_documents_a_claim_still_lacks(client: FlaskClient,
                                                               county: County) -> None:
    lacking = county.claim(documents=["claim_form", "id_card"])
    complete = county.claim()
    sign_in(client, county)
    html = client.get("/console/claims").get_data(as_text=True)
    row = html[html.index(f">{lacking['claim_no']}</a>"):]
    assert "缺 3 件材料" in row[:row.index("</tr>")]
    row = html[html.index(f">{complete['claim_no']}</a>"):]
    assert "件材料" not in row[:row.index("</tr>")]


def test_the_list_filters_by_product_with_its_total(client: FlaskClient, county: County) -> None:
    member = county.member()
    county.enrol(member, "critical_illness")
    lump_sum = county.claim(member, "critical_illness")
    in_patient = [county.claim(), county.claim()]
    sign_in(client, county)
    html = client.get("/console/claims?product_code=critical_illness").get_data(as_text=True)
    assert lump_sum["claim_no"] in html and "共 1 件" in html
    assert not any(claim["claim_no"] in html for claim in in_patient)
    assert '<option value="critical_illness" selected>' in html
    html = client.get("/console/claims?product_code=inpatient&state=logged").get_data(
        as_text=True)
    assert "共 2 件" in html and lump_sum["claim_no"] not in html
    unknown = client.get("/console/claims?product_code=nonsense").get_data(as_text=True)
    assert "共 3 件" in unknown  # a product not in the catalogue filters nothing


def test_the_list_pages_by_twenty_and_its_links_keep_the_filters(client: FlaskClient,
                                                                 county: County) -> None:
    member = county.member()
    county.enrol(member, "inpatient")
    numbers = [county.claim(member)["claim_no"] for _ in range(21)]
    sign_in(client, county)
    first = client.get("/console/claims?state=logged").get_data(as_text=True)
    assert "共 21 件" in first and numbers[-1] in first and numbers[0] not in first
    assert 'href="?state=logged&amp;page=2"' in first and "第 1 / 2 页" in first
    second = client.get("/console/claims?state=logged&page=2").get_data(as_text=True)
    assert numbers[0] in second and numbers[1] not in second and "第 2 / 2 页" in second
    assert 'href="?state=logged&amp;page=1"' in second
    beyond = client.get("/console/claims?state=logged&page=9").get_data(as_text=True)
    assert "第 2 / 2 页" in beyond  # clamped to the last page


def test_unit_staff_see_only_their_own_unit(client: FlaskClient, county: County) -> None:
    mine, theirs = county.claim(), county.claim()
    county.unit_staff(mine["unit_code"])
    sign_in(client, county, f"staff-{mine['unit_code']}")
    listing = client.get("/console/claims").get_data(as_text=True)
    assert mine["claim_no"] in listing and theirs["claim_no"] not in listing
    assert "共 1 件" in listing  # the total counts their unit's claims only
    home = client.get("/console/").get_data(as_text=True)
    logged = re.search(r'state=logged">\s*<span class="count">(\d+)</span>', home)
    assert logged and logged.group(1) == "1"  # and so do the counts of today's work
    assert client.get(f"/console/claims/{theirs['claim_no']}").status_code == 404
    answer = post_form(client, f"/console/claims/{theirs['claim_no']}/events/withdraw",
                       {"reason": "不要了", "version": theirs["version"]})
    assert answer.status_code == 404
    page = client.get(f"/console/claims/{mine['claim_no']}").get_data(as_text=True)
    assert 'id="event-withdraw"' in page and 'id="event-verify"' not in page


def test_the_claim_page_shows_only_the_masked_id(client: FlaskClient, county: County) -> None:
    member = county.member()
    county.enrol(member)
    claim = county.claim(member)
    sign_in(client, county)
    html = client.get(f"/console/claims/{claim['claim_no']}").get_data(as_text=True)
    assert member["id_number"] not in html
    assert claim["id_number_masked"] in html
    assert "材料清单" in html and "办理经过" in html and "登记" in html


def test_the_claim_page_lists_the_notices_sent_about_it(client: FlaskClient,
                                                       county: County) -> None:
    claim = county.claim(documents=["claim_form"])
    county.fire(claim["claim_no"], "request_materials", reason="发票不清晰",
                documents=["claim_form"])
    run = county.clerk.post("/api/v1/jobs/dispatch_notifications/runs", json={})
    assert run.status_code == 200 and run.json["summary"]["sent"] == 1, run.json
    sign_in(client, county)
    page = client.get(f"/console/claims/{claim['claim_no']}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200, html
    assert "通知已发送" in html and "单位工会：补交材料通知" in html
    assert "材料：互助金申请表" in html  # the document asked for again, named in the history
    english = client.get(f"/console/claims/{claim['claim_no']}?lang=en").get_data(as_text=True)
    assert "Notice sent" in english and "Unit union: documents requested" in english


def test_a_refusal_without_a_box_of_its_own_shows_above_the_form(
        client: FlaskClient, county: County) -> None:
    claim = county.claim(documents=["claim_form"])
    sign_in(client, county)
    answer = post_form(client, f"/console/claims/{claim['claim_no']}/events/verify",
                       {"version": claim["version"]})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    form = html[html.index('id="event-verify"'):]
    assert 'id="_form-error" role="alert">' in form[:form.index("</form>")]
    assert county.clerk.get(f"/api/v1/claims/{claim['claim_no']}").json["state"] == "logged"


def test_a_console_page_that_fails_answers_a_page_with_the_request_id(app, client: FlaskClient,
                                                                      county: County) -> None:
    def broken() -> str:
        raise RuntimeError("a defect")

    app.add_url_rule("/console/broken", endpoint="console.broken", view_func=broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as served, not as the test client re-raises
    sign_in(client, county)
    answer = client.get("/console/broken", headers={"X-Request-ID": "abc123"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 500 and answer.mimetype == "text/html"
    assert "系统出错" in html and "abc123" in html and "a defect" not in html


def test_a_lump_sum_claim_shows_no_expenses_it_was_never_asked_for(
        client: FlaskClient, county: County) -> None:
    member = county.member()
    county.enrol(member, "critical_illness")
    lump_sum = county.claim(member, "critical_illness")
    in_patient = county.claim()
    sign_in(client, county)
    assert "医疗总费用" not in client.get(
        f"/console/claims/{lump_sum['claim_no']}").get_data(as_text=True)
    assert "医疗总费用" in client.get(
        f"/console/claims/{in_patient['claim_no']}").get_data(as_text=True)


def test_an_event_fired_from_the_page_moves_the_claim_and_audits_it(
        client: FlaskClient, county: County) -> None:
    claim = county.claim()
    sign_in(client, county)
    answer = post_form(client, f"/console/claims/{claim['claim_no']}/events/verify",
                       {"version": claim["version"]})
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"/console/claims/{claim['claim_no']}"
    events = county.clerk.get(f"/api/v1/claims/{claim['claim_no']}/events").json
    assert [e["event"] for e in events] == ["log", "verify"]
    assert events[-1]["actor"] == "clerk" and events[-1]["to_state"] == "ready"
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "待报送" in page and "已办理：审核通过" in page


def test_a_stale_version_is_refused(client: FlaskClient, county: County) -> None:
    claim = county.claim()
    county.fire(claim["claim_no"], "attach_documents", documents=["invoice"])
    sign_in(client, county)
    answer = post_form(client, f"/console/claims/{claim['claim_no']}/events/verify",
                       {"version": claim["version"]})
    assert answer.status_code == 412
    assert "该理赔已被他人修改" in answer.get_data(as_text=True)


def test_a_missing_event_field_is_shown_beside_it(client: FlaskClient, county: County) -> None:
    claim = county.claim()
    sign_in(client, county)
    answer = post_form(client, f"/console/claims/{claim['claim_no']}/events/withdraw",
                       {"reason": "", "version": claim["version"]})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert '<p class="field-error" id="reason-error" role="alert">请填写此项</p>' in html
    assert county.clerk.get(f"/api/v1/claims/{claim['claim_no']}").json["state"] == "logged"


def test_an_id_number_in_a_reason_is_refused_in_words_a_clerk_reads(
        client: FlaskClient, county: County) -> None:
    claim = county.claim()
    other = county.member()["id_number"]
    sign_in(client, county)
    answer = post_form(client, f"/console/claims/{claim['claim_no']}/events/withdraw",
                       {"reason": f"重复，见{other}", "version": claim["version"],
                        "confirm": "1"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "此处不能填写身份证号码" in html  # (the box keeps what was typed, to correct it)
    assert county.clerk.get(f"/api/v1/claims/{claim['claim_no']}").json["state"] == "logged"


def test_withdrawing_on_the_page_asks_for_a_tick_first(client: FlaskClient,
                                                        county: County) -> None:
    claim = county.claim()
    sign_in(client, county)
    path = f"/console/claims/{claim['claim_no']}/events/withdraw"
    unticked = post_form(client, path, {"reason": "登记错了", "version": claim["version"]})
    assert unticked.status_code == 422 and "请勾选确认撤回" in unticked.get_data(as_text=True)
    assert county.clerk.get(f"/api/v1/claims/{claim['claim_no']}").json["state"] == "logged"
    ticked = post_form(client, path, {"reason": "登记错了", "version": claim["version"],
                                      "confirm": "1"})
    assert ticked.status_code == 303
    assert county.clerk.get(f"/api/v1/claims/{claim['claim_no']}").json["state"] == "withdrawn"


def test_logging_a_claim_through_the_form(client: FlaskClient, county: County) -> None:
    member = county.member()
    county.enrol(member)
    body = county.claim_body(member)
    sign_in(client, county)
    form = client.get("/console/claims/new?product_code=inpatient").get_data(as_text=True)
    assert 'value="discharge_summary"' in form
    answer = post_form(client, "/console/claims/new", {**body, "documents": body["documents"]})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    claim_no = answer.headers["Location"].rsplit("/", 1)[-1]
    logged = county.clerk.get(f"/api/v1/claims/{claim_no}").json
    assert logged["state"] == "logged" and logged["missing_documents"] == []


def test_the_claim_form_takes_amounts_as_people_write_them(client: FlaskClient,
                                                           county: County) -> None:
    member = county.member()
    county.enrol(member)
    body = county.claim_body(member) | {"total_expense": "12,000.00",
                                        "insurance_paid": "４，０００", "self_paid": " 3000 "}
    sign_in(client, county)
    answer = post_form(client, "/console/claims/new", body)
    assert answer.status_code == 303, answer.get_data(as_text=True)
    logged = county.clerk.get(answer.headers["Location"].replace("/console", "/api/v1")).json
    assert (logged["total_expense"], logged["insurance_paid"], logged["self_paid"]) == (
        "12000.00", "4000.00", "3000.00")
    # A comma that is no thousands separator is not guessed at.
    refused = post_form(client, "/console/claims/new", body | {"total_expense": "12,00"})
    assert refused.status_code == 422


def test_unit_staff_log_a_claim_from_a_members_page_without_the_full_id_number(
        client: FlaskClient, county: County) -> None:
    member = county.member()
    county.enrol(member)
    other = county.member()  # another unit's
    county.unit_staff(member["unit_code"])
    sign_in(client, county, f"staff-{member['unit_code']}")
    page = client.get(f"/console/members/{member['id']}").get_data(as_text=True)
    assert f'href="/console/claims/new?member_id={member["id"]}"' in page
    form = client.get(f"/console/claims/new?member_id={member['id']}").get_data(as_text=True)
    assert member["id_number_masked"] in form and 'name="id_number"' not in form
    assert member["id_number"] not in form
    body = {k: v for k, v in county.claim_body(member).items() if k != "id_number"}
    answer = post_form(client, "/console/claims/new", {**body, "member_id": member["id"]})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    logged = county.clerk.get(f"/api/v1/claims/{answer.headers['Location'].rsplit('/', 1)[-1]}")
    assert logged.json["member_id"] == member["id"]
    # Another unit's member is not theirs to name: the plain form, nothing revealed.
    form = client.get(f"/console/claims/new?member_id={other['id']}").get_data(as_text=True)
    assert 'name="id_number"' in form and other["id_number_masked"] not in form


def test_the_claim_form_shows_the_api_rules_beside_the_fields(client: FlaskClient,
                                                              county: County) -> None:
    member = county.member()
    county.enrol(member)
    body = county.claim_body(member, self_paid="5000.00", total_expense="8000.00")
    sign_in(client, county)
    answer = post_form(client, "/console/claims/new", {**body, "incident_date": "2999-01-01"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert 'id="incident_date-error" role="alert">日期不能晚于今天' in html
    assert 'id="self_paid-error" role="alert">医保支付与个人自付之和不能超过总费用' in html
    # The clerk's own entry comes back in its box, to correct, not to type again; only there.
    assert html.count(member["id_number"]) == 1 and f'value="{member["id_number"]}"' in html
    assert answer.headers["Cache-Control"] == "no-store"
    answer = post_form(client, "/console/claims/new", {**body, "total_expense": "1.234"})
    assert answer.status_code == 422 and 'id="total_expense-error"' in answer.get_data(
        as_text=True)


def test_an_event_the_role_may_not_fire_is_refused_with_a_message(client: FlaskClient,
                                                                   county: County) -> None:
    claim = county.claim()
    county.unit_staff(claim["unit_code"])
    sign_in(client, county, f"staff-{claim['unit_code']}")
    answer = post_form(client, f"/console/claims/{claim['claim_no']}/events/verify",
                       {"version": claim["version"]})
    assert answer.status_code == 403 and "未能办理" in answer.get_data(as_text=True)
    assert county.clerk.get(f"/api/v1/claims/{claim['claim_no']}").json["state"] == "logged"


def test_the_claim_form_shows_the_estimate_logging_would_record_and_saves_nothing(
        client: FlaskClient, county: County) -> None:
    member = county.member()
    county.enrol(member)
    body = county.claim_body(member, documents=["claim_form", "id_card"])
    sign_in(client, county)
    form = client.get("/console/claims/new?product_code=inpatient").get_data(as_text=True)
    assert 'data-estimate-url="/console/claims/estimate"' in form
    preview = post_form(client, "/console/claims/estimate", body)
    assert preview.status_code == 200 and preview.json["errors"] == {}
    # (3000.00 self-paid - 500 deductible) x 50% = 1250.00, as the API will log it
    assert preview.json["estimate"] == "1250.00"
    assert preview.json["missing_documents"] == ["医疗费用发票", "医保结算单", "出院小结"]
    assert county.clerk.get("/api/v1/claims").json == []  # a preview logs nothing
    logged = county.clerk.post("/api/v1/claims", body).json
    assert logged["estimate"] == preview.json["estimate"]
    half_typed = post_form(client, "/console/claims/estimate",
                           {"product_code": "inpatient", "id_number": member["id_number"]})
    assert half_typed.json["estimate"] is None and "incident_date" in half_typed.json["errors"]
    assert member["id_number"] not in half_typed.get_data(as_text=True)
    assert client.post("/console/claims/estimate", data=body).status_code == 400  # no CSRF


def test_home_lists_batches_the_city_office_has_left_undecided(client: FlaskClient,
                                                                county: County) -> None:
    import sqlalchemy as sa

    from claims.db import session_scope
    from claims.models import Batch

    claim_no = county.ready_claims(1)[0]
    batch_no = county.clerk.post("/api/v1/batches", {}).json["batch_no"]
    assert county.clerk.post(f"/api/v1/batches/{batch_no}/events",
                             {"event": "deliver"}).status_code == 200
    sign_in(client, county)
    assert batch_no not in client.get("/console/").get_data(as_text=True)  # delivered today
    engine = county.app.extensions["mutualaid"].engine
    with session_scope(engine) as session:
        session.execute(sa.update(Batch).values(
            delivered_at=sa.func.now() - sa.text("INTERVAL '31 days'")
            if engine.dialect.name == "postgresql" else sa.text("datetime('now', '-31 days')")))
    home = client.get("/console/").get_data(as_text=True)
    assert 'id="overdue-batches"' in home and f">{batch_no}</a>" in home
    assert "1 件未决" in home
    staff_client = county.app.test_client()
    unit_code = county.clerk.get(f"/api/v1/claims/{claim_no}").json["unit_code"]
    county.unit_staff(unit_code)
    sign_in(staff_client, county, f"staff-{unit_code}")
    assert 'id="overdue-batches"' not in staff_client.get("/console/").get_data(as_text=True)


def test_the_attach_form_offers_only_the_documents_still_wanted(client: FlaskClient,
                                                                county: County) -> None:
    claim = county.claim(documents=["claim_form", "id_card"])
    sign_in(client, county)
    page = client.get(f"/console/claims/{claim['claim_no']}").get_data(as_text=True)
    form = page[page.index('id="event-attach_documents"'):]
    form = form[:form.index("</form>")]
    offered = set(re.findall(r'name="documents" value="([a-z_]+)"', form))
    assert offered == {"invoice", "settlement_sheet", "discharge_summary"}
    complete = county.claim()  # every document brought at logging
    page = client.get(f"/console/claims/{complete['claim_no']}").get_data(as_text=True)
    assert 'id="event-attach_documents"' not in page  # nothing left to attach


def test_a_disability_assessed_late_says_why_its_estimate_leaves_the_grade_out(
        client: FlaskClient, county: County) -> None:
    member = county.member()
    county.enrol(member, "accident")
    incident = county.today - timedelta(days=300)
    fields = {"cause": "accident", "incident_date": incident.isoformat(),
              "total_expense": "0", "insurance_paid": "0", "self_paid": "0",
              "disability_grade": 8, "admission_date": None, "discharge_date": None,
              "documents": ["claim_form", "id_card", "accident_proof", "disability_assessment"]}
    late = county.claim(member, "accident", **fields,
                        disability_assessed_on=(incident + timedelta(days=200)).isoformat())
    on_time = county.claim(member, "accident", **fields,
                           disability_assessed_on=(incident + timedelta(days=90)).isoformat())
    sign_in(client, county)
    page = client.get(f"/console/claims/{late['claim_no']}").get_data(as_text=True)
    assert "鉴定晚于意外发生后 180 天，估算未计伤残互助金" in page
    assert f"8 级（{(incident + timedelta(days=200)).isoformat()} 鉴定）" in page
    page = client.get(f"/console/claims/{on_time['claim_no']}").get_data(as_text=True)
    assert "估算未计伤残互助金" not in page


def test_asking_for_materials_offers_the_coded_reasons_and_records_the_chosen_one(
        client: FlaskClient, county: County) -> None:
    claim = county.claim()
    sign_in(client, county)
    page = client.get(f"/console/claims/{claim['claim_no']}").get_data(as_text=True)
    form = page[page.index('id="event-request_materials"'):]
    form = form[:form.index("</form>")]
    assert '<option value="missing_invoice">缺少医疗费用发票原件</option>' in form
    assert 'value="not_covered"' not in form  # a rejection reason, not a document one
    answer = post_form(client, f"/console/claims/{claim['claim_no']}/events/request_materials",
                       {"version": claim["version"], "documents": "invoice",
                        "reason_code": "missing_invoice"})
    assert answer.status_code == 303
    after = county.clerk.get(f"/api/v1/claims/{claim['claim_no']}").json
    assert after["state"] == "pending_materials"
    assert after["reason_code"] == "missing_invoice"
    assert after["reason_label"] == "缺少医疗费用发票原件"
    invoice = next(d for d in after["documents"] if d["code"] == "invoice")
    assert invoice["status"] == "rejected" and invoice["reason"] == "缺少医疗费用发票原件"
    other = county.claim()
    refused = post_form(client, f"/console/claims/{other['claim_no']}/events/request_materials",
                        {"version": other["version"], "reason_code": "no_such_code",
                         "reason": "另需诊断证明"})
    assert refused.status_code == 422
    assert 'id="reason_code-error"' in refused.get_data(as_text=True)
    unchanged = county.clerk.get(f"/api/v1/claims/{other['claim_no']}").json
    assert (unchanged["state"], unchanged["version"]) == ("logged", other["version"])
