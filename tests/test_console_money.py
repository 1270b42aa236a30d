"""Console money: remittance entry, the collection counter, the receipt, sending notices now."""

from __future__ import annotations

from typing import Any

from conftest import County, new_id_number
from flask.testing import FlaskClient
from payout_world import approved_claims, remit
from test_console import post_form, sign_in
from test_decisions import snapshot


def remittance_form(reference: str, total: str, items: list[tuple[str, str]],
                    received_on: str) -> dict[str, str]:
    """The form as typed: the items in rows 1, 3, ... (blank rows between are skipped)."""
    form = {"reference": reference, "received_on": received_on, "total_amount": total}
    for index, (claim_no, amount) in enumerate(items):
        form[f"items-{index * 2}-claim_no"] = claim_no
        form[f"items-{index * 2}-amount"] = amount
    return form


def test_a_remittance_entered_in_the_form_moves_its_claims(app, client: FlaskClient,
                                                           county: County) -> None:
    first, second = approved_claims(app, county, ["1500.00", "800.50"])
    sign_in(client, county)
    page = client.get("/console/remittances/new").get_data(as_text=True)
    assert page.count('name="items-') == 20 and 'id="items-9-amount"' in page  # 10 rows
    answer = post_form(client, "/console/remittances/new", remittance_form(
        "CITY-7", "2300.50", [(first["claim_no"], "1500.00"), (second["claim_no"], "800.50")],
        county.today.isoformat()))
    assert answer.status_code == 303, answer.get_data(as_text=True)
    listing = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "CITY-7" in listing and "2,300.50" in listing and "2 件理赔" in listing
    for claim in (first, second):
        assert county.clerk.get(f"/api/v1/claims/{claim['claim_no']}").json[
            "state"] == "funds_received"


def test_a_remittance_that_does_not_reconcile_is_refused_row_by_row(app, client: FlaskClient,
                                                                    county: County) -> None:
    first, second = approved_claims(app, county, ["1500.00", "800.50"])
    sign_in(client, county)
    before = snapshot(app)
    answer = post_form(client, "/console/remittances/new", remittance_form(
        "CITY-8", "2400.00", [(first["claim_no"], "1500.00"), (second["claim_no"], "900.00"),
                              ("LP1999-000009", "1.00")], county.today.isoformat()))
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    # Typed rows 0, 2 and 4: the errors sit beside the form's own rows.
    assert 'id="items-2-amount-error" role="alert">金额与核准金额不符' in html
    assert 'id="items-4-claim_no-error"' in html
    assert 'id="total_amount-error"' in html
    assert 'value="CITY-8"' in html and 'value="900.00"' in html  # what was typed stays
    assert snapshot(app) == before
    answer = post_form(client, "/console/remittances/new", remittance_form(
        "CITY-9", "15.001", [(first["claim_no"], "1500.00")], county.today.isoformat()))
    assert 'id="total_amount-error" role="alert">金额最多两位小数' in answer.get_data(as_text=True)
    answer = post_form(client, "/console/remittances/new", remittance_form(
        "CITY-9", "1500.00", [(first["claim_no"], "1500.00")], "2999-01-01"))
    assert answer.status_code == 422
    assert 'id="received_on-error" role="alert">日期不能晚于今天' in answer.get_data(as_text=True)
    assert snapshot(app) == before


def test_an_empty_remittance_or_one_paid_already_says_why_in_chinese(
        app, client: FlaskClient, county: County) -> None:
    (claim,) = approved_claims(app, county, ["1500.00"])
    assert remit(county, [claim]).status_code == 201
    sign_in(client, county)
    before = snapshot(app)
    empty = post_form(client, "/console/remittances/new", remittance_form(
        "CITY-10", "", [], county.today.isoformat())).get_data(as_text=True)
    assert "请至少填写一行到账明细" in empty and "Length must be" not in empty
    again = post_form(client, "/console/remittances/new", remittance_form(
        "CITY-11", "1500.00", [(claim["claim_no"], "1500.00")], county.today.isoformat()))
    html = again.get_data(as_text=True)
    assert again.status_code == 422
    assert 'id="items-0-claim_no-error" role="alert">该理赔的互助金已登记到账，不能重复登记' in html
    assert snapshot(app) == before


def test_the_counter_finds_checks_identity_pays_in_full_and_prints_the_receipt(
        app, client: FlaskClient, county: County) -> None:
    claim = approved_claims(app, county, ["1500.00"])[0]
    assert remit(county, [claim]).status_code == 201
    id_number = county.id_numbers[claim["member_id"]]
    sign_in(client, county)
    counter = client.get("/console/counter").get_data(as_text=True)
    assert 'id="dispatch"' in counter and "1 件" in counter
    answer = post_form(client, "/console/jobs/dispatch_notifications", {"next": "/console/counter"})
    assert answer.status_code == 303
    assert "件理赔已通知领取" in client.get(answer.headers["Location"]).get_data(as_text=True)
    found = post_form(client, "/console/counter", {"id_number": id_number})
    html = found.get_data(as_text=True)
    assert found.status_code == 200 and claim["claim_no"] in html
    assert id_number not in html and claim["id_number_masked"] in html
    page = client.get(f"/console/counter?claim_no={claim['claim_no']}").get_data(as_text=True)
    assert f'/console/counter/{claim["claim_no"]}' in page
    path = f"/console/counter/{claim['claim_no']}"
    form = client.get(path).get_data(as_text=True)
    assert 'value="1500.00"' in form and 'name="version"' in form
    version = county.clerk.get(f"/api/v1/claims/{claim['claim_no']}").json["version"]
    wrong = new_id_number()
    answer = post_form(client, path, {"id_number": wrong, "amount": "1000.00",
                                      "receipt_no": "SJ-001", "proxy_name": "李四",
                                      "version": version})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert 'id="id_number-error" role="alert">身份证号码与领取人不符' in html
    assert 'id="amount-error" role="alert">兑付金额须与核准金额一致' in html
    assert 'id="proxy_reference-error"' in html
    assert wrong not in html and id_number not in html
    assert county.clerk.get(f"/api/v1/claims/{claim['claim_no']}").json["state"] == "notified"
    answer = post_form(client, path, {"id_number": id_number, "amount": "1500.00",
                                      "receipt_no": "SJ-001", "version": version})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    receipt = client.get(answer.headers["Location"])
    html = receipt.get_data(as_text=True)
    assert receipt.status_code == 200 and "互助金领取收据" in html and "SJ-001" in html
    assert f'href="/console/claims/{claim["claim_no"]}">返回理赔页</a>' in html  # back to it
    assert "壹仟伍佰元整" in html and id_number not in html
    assert "经办人：<span>clerk</span>" in html  # the clerk signed in at the counter
    assert "'unsafe-hashes'" in receipt.headers["Content-Security-Policy"]
    after = county.clerk.get(f"/api/v1/claims/{claim['claim_no']}").json
    assert after["state"] == "collected" and after["paid_amount"] == "1500.00"


def test_the_counter_refuses_a_malformed_id_number_without_echoing_it(
        client: FlaskClient, county: County) -> None:
    sign_in(client, county)
    typed = "33010219850615001"  # 17 characters
    answer = post_form(client, "/console/counter", {"id_number": typed})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422 and 'id="id_number-error"' in html and typed not in html


def test_money_forms_refuse_a_post_without_the_csrf_token(app, client: FlaskClient,
                                                          county: County) -> None:
    claim = approved_claims(app, county, ["1500.00"])[0]
    sign_in(client, county)
    answer = client.post("/console/remittances/new", data=remittance_form(
        "CITY-1", "1500.00", [(claim["claim_no"], "1500.00")], county.today.isoformat()))
    assert answer.status_code == 400
    assert client.post(f"/console/counter/{claim['claim_no']}", data={}).status_code == 400
    assert client.post("/console/jobs/dispatch_notifications").status_code == 400
    assert county.clerk.get(f"/api/v1/claims/{claim['claim_no']}").json["state"] == "approved"


def test_unit_staff_may_not_use_the_money_pages(app, client: FlaskClient, county: County) -> None:
    claim: dict[str, Any] = approved_claims(app, county, ["1500.00"])[0]
    county.unit_staff(claim["unit_code"])
    sign_in(client, county, f"staff-{claim['unit_code']}")
    for path in ("/console/remittances", "/console/remittances/new", "/console/counter",
                 f"/console/counter/{claim['claim_no']}"):
        assert client.get(path).status_code == 403, path
    assert post_form(client, "/console/jobs/dispatch_notifications", {}).status_code == 403


def test_a_death_claim_logged_in_the_form_is_found_by_the_beneficiary(
        client: FlaskClient, county: County) -> None:
    member = county.member()
    county.enrol(member, "accident")
    beneficiary = new_id_number(sex="F")
    sign_in(client, county)
    form = client.get("/console/claims/new?product_code=accident").get_data(as_text=True)
    assert 'id="death-fields"' in form
    fields = {"product_code": "accident", "id_number": member["id_number"], "cause": "accident",
              "incident_date": county.today.isoformat(), "total_expense": "0",
              "insurance_paid": "0", "self_paid": "0", "death": "1",
              "beneficiary_name": "王秀英", "beneficiary_relation": "配偶",
              "documents": ["claim_form", "id_card", "accident_proof", "death_certificate"]}
    refused = post_form(client, "/console/claims/new",
                        {**fields, "beneficiary_id_number": beneficiary[:-1]})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and 'id="beneficiary_id_number-error"' in html
    assert f'value="{beneficiary[:-1]}"' in html  # back in its box, the typo in sight
    answer = post_form(client, "/console/claims/new",
                       {**fields, "beneficiary_id_number": beneficiary})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    claim = county.clerk.get(f"/api/v1/claims/{answer.headers['Location'].rsplit('/', 1)[-1]}")
    assert claim.json["death"] and claim.json["beneficiary"]["name"] == "王秀英"
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "身故理赔" in page and beneficiary not in page
    assert f'id="beneficiary">王秀英（配偶）{claim.json["beneficiary"]["id_number_masked"]}' in page
    found = post_form(client, "/console/counter", {"id_number": beneficiary})
    html = found.get_data(as_text=True)
    assert claim.json["claim_no"] in html and "王秀英" in html and beneficiary not in html
    # The late member's own number does not find a death claim: the beneficiary collects.
    by_member = post_form(client, "/console/counter", {"id_number": member["id_number"]})
    assert claim.json["claim_no"] not in by_member.get_data(as_text=True)


def test_a_large_claim_is_scheduled_for_on_site_settlement_from_its_page(
        app, client: FlaskClient, county: County) -> None:
    claim = approved_claims(app, county, ["6000.00"])[0]
    assert remit(county, [claim]).status_code == 201
    sign_in(client, county)
    path = f"/console/claims/{claim['claim_no']}"
    html = client.get(path).get_data(as_text=True)
    assert 'id="event-schedule_onsite"' in html and 'type="date"' in html
    version = county.clerk.get(f"/api/v1/claims/{claim['claim_no']}").json["version"]
    answer = post_form(client, f"{path}/events/schedule_onsite", {
        "date": county.today.isoformat(), "place": "县供电公司三楼会议室", "version": version})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    after = county.clerk.get(f"/api/v1/claims/{claim['claim_no']}").json
    assert after["state"] == "onsite_scheduled" and after["onsite_place"] == "县供电公司三楼会议室"
    form = client.get(f"/console/counter/{claim['claim_no']}").get_data(as_text=True)
    assert 'id="collect"' in form and "县供电公司三楼会议室" in form


def test_the_claim_page_says_when_the_money_came_and_where_to_collect_it(
        app, client: FlaskClient, county: County) -> None:
    claim = approved_claims(app, county, ["1500.00"])[0]
    page = f"/console/claims/{claim['claim_no']}"
    sign_in(client, county)
    assert 'id="collection"' not in client.get(page).get_data(as_text=True)  # no money yet
    assert remit(county, [claim]).status_code == 201
    html = client.get(page).get_data(as_text=True)
    today = county.today.isoformat()
    assert f"互助金 1,500.00 元已于 {today} 到账，已等待 0 天。" in html
    settings = app.extensions["mutualaid"].settings
    assert settings.collection_place in html and settings.collection_hours in html
    assert "职工本人携带身份证原件领取" in html and "尚未收到到账通知" in html
    english = client.get(f"{page}?lang=en").get_data(as_text=True)
    assert "arrived on" in english and "职工本人" not in english


def test_the_claim_history_names_the_system_job_in_words(app, client: FlaskClient,
                                                         county: County) -> None:
    claim = approved_claims(app, county, ["1500.00"])[0]
    assert remit(county, [claim]).status_code == 201
    sign_in(client, county)
    assert post_form(client, "/console/jobs/dispatch_notifications",
                     {"next": "/console/counter"}).status_code == 303
    page = f"/console/claims/{claim['claim_no']}"
    html = client.get(page).get_data(as_text=True)
    assert "系统（发送通知）" in html and "job:dispatch_notifications" not in html
    assert "System (Sending notices)" in client.get(f"{page}?lang=en").get_data(as_text=True)

