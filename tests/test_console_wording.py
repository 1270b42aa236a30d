"""The console's words: the language link after a form, its error pages, the rules' refusals
in the page's language, plurals, labels for codes, messages that say what to do, amounts."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta
from io import BytesIO
from typing import Any

import pytest
from conftest import County, new_id_number
from flask import Flask
from flask.testing import FlaskClient
from payout_world import approved_claims, remit
from test_console import csrf_token, post_form, sign_in
from test_console_batches import run_batch, upload
from test_decisions import decisions_sheet, row
from test_roster import console_send, xlsx

from claims.db import session_scope
from claims.idcard import age_on
from claims.models import Notification
from claims.rules import RULE_TEXTS
from claims.web.console_rules import RULE_SENTENCES, rule_message

_LANGUAGE_LINK = re.compile(r'<a class="lang" href="([^"]+)"')
_FIELD_ERROR = re.compile(r'<p class="field-error" id="[^"]+" role="alert">([^<]*)</p>')


def language_link(answer: Any) -> str:
    """Where the header's language switch of a page leads."""
    found = _LANGUAGE_LINK.search(answer.get_data(as_text=True))
    assert found, "no language link"
    return html.unescape(found[1])


def form_errors(page: str, form_id: str) -> list[str]:
    """The messages shown inside one of a page's forms."""
    form = page[page.index(f'id="{form_id}"'):]
    return [html.unescape(text) for text in _FIELD_ERROR.findall(form[:form.index("</form>")])]


def verify_on_the_page(client: FlaskClient, claim: dict[str, Any]) -> Any:
    """Press 审核通过 on the claim's page (the browser names the page as the Referer)."""
    page = f"/console/claims/{claim['claim_no']}"
    return client.post(f"{page}/events/verify", data={
        "version": claim["version"], "csrf_token": csrf_token(client, page)},
        headers={"Referer": f"http://localhost{page}?lang=zh"})


# --- the language link and the error pages ------------------------------------------------


def test_the_language_link_after_a_refused_form_goes_back_to_the_page_it_came_from(
        client: FlaskClient, county: County) -> None:
    claim = county.claim(documents=["claim_form"])
    sign_in(client, county)
    refused = verify_on_the_page(client, claim)
    assert refused.status_code == 422
    link = language_link(refused)
    assert link == f"/console/claims/{claim['claim_no']}?lang=en"
    # No Referer (a browser setting), or one that is itself a form's address: the home page.
    bare = post_form(client, f"/console/claims/{claim['claim_no']}/events/verify",
                     {"version": claim["version"]})
    assert language_link(bare) == "/console/?lang=en"
    again = client.post(f"/console/claims/{claim['claim_no']}/events/verify", data={
        "version": claim["version"], "csrf_token": csrf_token(client, "/console/")},
        headers={"Referer": f"http://localhost/console/claims/{claim['claim_no']}/events/verify"})
    assert language_link(again) == "/console/?lang=en"
    other_site = client.post(f"/console/claims/{claim['claim_no']}/events/verify", data={
        "version": claim["version"], "csrf_token": csrf_token(client, "/console/")},
        headers={"Referer": "http://evil.example/console/claims"})
    assert language_link(other_site) == "/console/?lang=en"
    assert "Documents" in client.get(link).get_data(as_text=True)  # a page, in English


def test_the_language_link_after_a_refused_decisions_sheet_goes_back_to_the_batch(
        client: FlaskClient, county: County) -> None:
    claim_no = county.ready_claims(1)[0]
    sign_in(client, county)
    batch_no = run_batch(client)
    post_form(client, f"/console/batches/{batch_no}/deliver", {})
    page = f"/console/batches/{batch_no}"
    refused = client.post(f"{page}/decisions", data={
        "csrf_token": csrf_token(client, page),
        "file": (BytesIO(decisions_sheet([row(claim_no, "核准")])), "dec.xlsx")},
        content_type="multipart/form-data", headers={"Referer": f"http://localhost{page}"})
    assert refused.status_code == 422
    link = language_link(refused)
    assert link == f"{page}?lang=en"
    assert "Claims in this batch" in client.get(link).get_data(as_text=True)


def test_a_form_address_opened_as_a_link_answers_the_consoles_page_not_json(
        client: FlaskClient, county: County) -> None:
    claim = county.claim()
    sign_in(client, county)
    answer = client.get(f"/console/claims/{claim['claim_no']}/events/verify?lang=en")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 405 and answer.mimetype == "text/html"
    assert "method_not_allowed" not in page and "This page cannot be opened this way" in page
    assert 'href="/console/claims"' in page  # the signed-in menu, to carry on from
    chinese = client.get(f"/console/batches/{'2026-W01'}/deliver?lang=zh")
    assert chinese.status_code == 405 and "不能这样打开此页" in chinese.get_data(as_text=True)
    unknown = client.get("/console/no-such-page")
    assert unknown.status_code == 404 and "没有找到这一页" in unknown.get_data(as_text=True)
    # The API still answers in JSON.
    api = client.get("/api/v1/auth/token")
    assert api.status_code == 405 and api.json["code"] == "method_not_allowed"


def test_signing_out_keeps_the_language_chosen(client: FlaskClient, county: County) -> None:
    sign_in(client, county)
    client.get("/console/?lang=en")
    answer = post_form(client, "/console/logout", {})
    assert answer.status_code == 302
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Staff sign-in" in page and '<html lang="en">' in page
    assert client.get("/console/").status_code == 302  # signed out all the same


# --- the rules' refusals ----------------------------------------------------------------------


def test_a_refused_verify_names_documents_and_dates_in_the_pages_language(
        client: FlaskClient, county: County) -> None:
    member = county.member()
    enrolment = county.enrol(member)
    claim = county.claim(member, incident_date="2000-01-01", admission_date="2000-01-01",
                         discharge_date="2000-01-05", documents=["claim_form", "id_card"])
    sign_in(client, county)
    cover = f"{enrolment['start_date']} 至 {enrolment['end_date']}"
    messages = form_errors(verify_on_the_page(client, claim).get_data(as_text=True),
                           "event-verify")
    assert f"出险日期 2000-01-01 不在保障期内（{cover}）。" in messages
    assert "已超过申请时限：应自出院之日起 730 天内，即最迟 2002-01-04（含当日）申请。" in messages
    assert "理赔材料不齐，尚缺：医疗费用发票、医保结算单、出院小结。" in messages
    assert not any("invoice" in text or "年1月" in text for text in messages)
    client.get("/console/?lang=en")
    messages = form_errors(verify_on_the_page(client, claim).get_data(as_text=True),
                           "event-verify")
    assert messages == [
        f"The incident date 2000-01-01 is outside the cover ({enrolment['start_date']} to "
        f"{enrolment['end_date']}).",
        "The claim deadline has passed: a claim must be made within 730 days of discharge, "
        "by 2002-01-04 at the latest.",
        "Documents incomplete; still missing: Medical invoice, Insurance settlement sheet, "
        "Discharge summary."]
    # The API answers as before: Chinese, documents by code (what its clients read).
    api = county.fire(claim["claim_no"], "verify").json
    assert "理赔材料不齐，尚缺：invoice、settlement_sheet、discharge_summary。" in [
        e["message"] for e in api["errors"]]


def test_a_lump_sum_paid_once_is_refused_with_the_products_name_in_english(
        app: Flask, client: FlaskClient, county: County) -> None:
    member = county.member()
    county.enrol(member, "critical_illness", start=county.today - timedelta(days=400))
    documents = ["claim_form", "id_card", "diagnosis_certificate", "pathology_report"]
    first = county.claim(member, "critical_illness", documents=documents)["claim_no"]
    assert county.fire(first, "verify").status_code == 200
    second = county.claim(member, "critical_illness", documents=documents,
                          incident_date=(county.today - timedelta(days=5)).isoformat())
    sign_in(client, county)
    client.get("/console/?lang=en")
    messages = form_errors(verify_on_the_page(client, second).get_data(as_text=True),
                           "event-verify")
    assert messages == ["Critical illness pays once per member, and this member has a claim "
                        "in progress already."]


def test_every_rule_sentence_has_the_consoles_words_in_both_languages(app: Flask) -> None:
    """claims/rules.py's RULE_TEXTS and the console's RULE_SENTENCES stay in step: each
    variant read back from its message, with the same values, in Chinese and in English."""
    fields = re.compile(r"\{(\w+)\}")
    samples = {"product": "住院医疗互助保障", "incident": "2026年3月1日", "start": "2025年1月1日",
               "end": "2025年12月31日", "since": "2024年1月1日", "covered_from": "2026年4月1日",
               "last_day": "2026年5月1日", "documents": "invoice、claim_form", "days": "90",
               "max_shares": "3", "age": "61", "low": "16", "high": "60"}
    for lang, product, date_shown, documents in (
            ("zh", "住院医疗互助保障", "2026-03-01", "医疗费用发票、互助金申请表"),
            ("en", "In-patient medical", "2026-03-01", "Medical invoice, Claim form")):
        with app.test_request_context(f"/console/?lang={lang}"):
            for code, variants in RULE_TEXTS.items():
                for variant, template in variants.items():
                    assert set(fields.findall(template)) == set(
                        re.findall(r"%\((\w+)\)s", str(RULE_SENTENCES[variant]))), variant
                    shown = rule_message(code, template.format(**samples))
                    assert shown is not None, (lang, variant)
                    assert not re.search(r"\d年|invoice、", shown), shown
                    if "{product}" in template:
                        assert product in shown, shown
                    if "{incident}" in template:
                        assert date_shown in shown, shown
                    if "{documents}" in template:
                        assert documents in shown, shown
    with app.test_request_context("/console/?lang=en"):
        assert rule_message("documents_incomplete", "not a rule's sentence") is None


def test_the_roster_names_the_allowed_shares_and_ages_in_the_pages_language(
        app: Flask, county: County) -> None:
    unit = county.unit()["code"]
    start, end = county.today, county.today + timedelta(days=364)
    born = date(1950, 1, 1)
    roster = xlsx([("老张", new_id_number(born=born), None, unit, "inpatient", 1,
                    start.isoformat(), end.isoformat()),
                   ("小李", new_id_number(), None, unit, "inpatient", 5,
                    start.isoformat(), end.isoformat())])
    age = age_on(born, start)
    client = county.client
    sign_in(client, county)
    page = console_send(client, roster).get_data(as_text=True)
    assert f"保障起始日该职工 {age} 周岁，住院医疗互助保障参保年龄为 16 至 60 周岁。" in page
    assert "参保份数须为 1 至 3 份。" in page and "参保份数超出允许范围" not in page
    client.get("/console/?lang=en")
    page = console_send(client, roster).get_data(as_text=True)
    assert (f"On the start date this member is {age}; In-patient medical enrols members aged "
            "16 to 60.") in page
    assert "Number of shares must be 1 to 3." in page and "units" not in page.lower().split(
        "number of shares")[1][:40]


# --- English in the Chinese console -----------------------------------------------------------


def test_a_bad_email_on_the_unit_form_is_told_in_the_pages_language(
        client: FlaskClient, county: County) -> None:
    sign_in(client, county)
    answer = post_form(client, "/console/units/new", {"code": "U950", "name": "县水务局",
                                                      "union_email": "not-an-address"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert 'id="union_email-error" role="alert">电子邮箱格式不正确' in page
    assert "Not a valid email" not in page
    client.get("/console/?lang=en")
    english = post_form(client, "/console/units/new", {"code": "U950", "name": "县水务局",
                                                       "union_email": "not-an-address"})
    assert "Not a valid e-mail address" in english.get_data(as_text=True)


def test_a_cancelled_notices_reason_is_in_the_pages_language(app: Flask, client: FlaskClient,
                                                             county: County) -> None:
    with session_scope(app.extensions["mutualaid"].engine) as session:
        session.add(Notification(recipient_kind="unit", template="remind_uncollected",
                                 state="cancelled",
                                 last_error="not sent: the claim is now collected"))
    sign_in(client, county)
    page = client.get("/console/notifications?state=cancelled").get_data(as_text=True)
    assert "未发送：理赔已转为“已领取”" in page and "the claim is now" not in page
    english = client.get("/console/notifications?lang=en").get_data(as_text=True)
    assert "Not sent: the claim is now “Collected”" in english


def test_the_batches_name_the_transmission_not_its_code(client: FlaskClient,
                                                        county: County) -> None:
    county.ready_claims(1)
    sign_in(client, county)
    batch_no = run_batch(client)
    page = client.get(f"/console/batches/{batch_no}").get_data(as_text=True)
    listing = client.get("/console/batches").get_data(as_text=True)
    for shown in (page, listing):
        assert "共享文件夹：已传送" in shown and "folder" not in shown
    english = client.get(f"/console/batches/{batch_no}?lang=en").get_data(as_text=True)
    assert "Shared folder: Sent" in english
    assert "Shared folder: Sent" in client.get("/console/batches").get_data(as_text=True)


# --- plurals ----------------------------------------------------------------------------------


def test_english_counts_read_right_for_one_and_for_many(client: FlaskClient,
                                                        county: County) -> None:
    county.claim(documents=["claim_form", "id_card", "invoice", "settlement_sheet"])
    county.claim(documents=["claim_form", "id_card", "invoice"])
    sign_in(client, county)
    chinese = client.get("/console/claims").get_data(as_text=True)
    assert "共 2 件" in chinese and "缺 1 件材料" in chinese and "缺 2 件材料" in chinese
    english = client.get("/console/claims?lang=en").get_data(as_text=True)
    assert ">2 claims<" in english
    assert ">1 document missing<" in english and ">2 documents missing<" in english
    one = client.get("/console/claims?state=logged&q=000001").get_data(as_text=True)
    assert ">1 claim<" in one and "1 claims" not in one
    assert ">1 unit<" in client.get("/console/units?q=U001").get_data(as_text=True)


def test_a_batch_of_one_claim_is_spoken_of_in_the_singular(client: FlaskClient,
                                                           county: County) -> None:
    claim_no = county.ready_claims(1)[0]
    sign_in(client, county)
    client.get("/console/?lang=en")
    answer = post_form(client, "/console/batches/run", {})
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Sealed 1 claim into batch" in page and "1 claims" not in page
    assert "Its 1 claim moves to “Submitted to the city office”" in html.unescape(page)
    batch_no = answer.headers["Location"].rsplit("/", 1)[-1]
    delivered = post_form(client, f"/console/batches/{batch_no}/deliver", {})
    page = client.get(delivered.headers["Location"]).get_data(as_text=True)
    assert "1 claim awaits the city office" in html.unescape(page)
    refused = upload(client, batch_no, decisions_sheet([row(claim_no, "核准")]), "one.xlsx")
    page = html.unescape(refused.get_data(as_text=True))
    assert "No decision was recorded: correct this problem (one.xlsx)." in page
    # Chinese unchanged.
    client.get("/console/?lang=zh")
    refused = upload(client, batch_no, decisions_sheet([row(claim_no, "核准")]), "one.xlsx")
    assert "以下 1 处需要更正（one.xlsx）" in refused.get_data(as_text=True)


# --- wording ----------------------------------------------------------------------------------


def test_the_english_words_of_home_errors_and_forms(client: FlaskClient,
                                                    county: County) -> None:
    claim_no = county.ready_claims(1)[0]
    withdrawable = county.claim()
    sign_in(client, county)
    home = client.get("/console/?lang=en").get_data(as_text=True)
    assert "Funds received, awaiting collection" in home
    assert "Logged, awaiting verification" in home
    missing = client.get("/console/claims/LP1999-999999").get_data(as_text=True)
    assert "There is no such page, or you do not have access to it." in missing
    page = client.get(f"/console/claims/{withdrawable['claim_no']}").get_data(as_text=True)
    assert "Confirm: a withdrawn claim cannot be restored" in page
    assert "Paid by basic medical insurance / self-paid" in page
    reports = client.get("/console/reports").get_data(as_text=True)
    assert ">Year summary<" in reports and "Complete on first submission (%)" in reports
    batch_no = run_batch(client)
    post_form(client, f"/console/batches/{batch_no}/deliver", {})
    refused = upload(client, batch_no, decisions_sheet([row(claim_no, "通过", 1000.0)]))
    assert ("The outcome must be 核准, 不予赔付 or 退回 (approve / reject / return)"
            in refused.get_data(as_text=True))


def test_the_chinese_words_for_the_payout_the_estimate_and_the_check(
        client: FlaskClient, county: County) -> None:
    member = county.member()
    county.enrol(member)
    county.claim(member)
    sign_in(client, county)
    home = client.get("/console/").get_data(as_text=True)
    assert "互助金已到账，待领取" in home and "已登记，待核验" in home
    assert "理赔金已到账，" not in home
    reports = client.get("/console/reports").get_data(as_text=True)
    assert "材料一次齐全率" in reports and "待领取互助金" in reports and "资料" not in reports
    assert "市总核准与估算对比" in reports and "测算" not in reports and "时效" not in reports
    page = client.get(f"/console/members/{member['id']}").get_data(as_text=True)
    assert '<th class="num">估算</th>' in page and "测算" not in page
    form = client.get("/console/claims/new").get_data(as_text=True)
    assert "估算互助金：" in form and "预估" not in form


# --- messages that say what to do ------------------------------------------------------------


def test_refusals_say_what_to_do(app: Flask, client: FlaskClient, county: County) -> None:
    claim = county.claim(documents=["claim_form"])
    sign_in(client, county)
    unticked = post_form(client, f"/console/claims/{claim['claim_no']}/events/attach_documents",
                         {"version": claim["version"]})
    assert unticked.status_code == 422
    assert form_errors(unticked.get_data(as_text=True),
                       "event-attach_documents") == ["请至少勾选一项材料"]
    negative = post_form(client, "/console/units/new", {"code": "U960", "name": "县林业局",
                                                        "employee_count": "-3"})
    assert 'id="employee_count-error" role="alert">请填写 0 或正整数' in negative.get_data(
        as_text=True)
    county.ready_claims(1)
    batch_no = run_batch(client)
    post_form(client, f"/console/batches/{batch_no}/deliver", {})
    no_file = client.post(f"/console/batches/{batch_no}/decisions", data={
        "csrf_token": csrf_token(client, "/console/"), "file": (BytesIO(b""), "")},
        content_type="multipart/form-data")
    assert no_file.status_code == 422
    assert "请选择要上传的审核结果表（.xlsx）" in no_file.get_data(as_text=True)


@pytest.mark.parametrize(("lang", "expected"), [
    ("zh", "现场理赔仅适用于大额理赔（核准金额 5,000.00 元及以上）"),
    ("en", "On-site settlement is for large claims only (approved 5,000.00 yuan or more)")])
def test_on_site_settlement_refused_names_the_threshold(app: Flask, client: FlaskClient,
                                                        county: County, lang: str,
                                                        expected: str) -> None:
    claim = approved_claims(app, county, ["1500.00"])[0]
    assert remit(county, [claim]).status_code == 201
    sign_in(client, county)
    client.get(f"/console/?lang={lang}")
    version = county.clerk.get(f"/api/v1/claims/{claim['claim_no']}").json["version"]
    answer = post_form(client, f"/console/claims/{claim['claim_no']}/events/schedule_onsite", {
        "date": county.today.isoformat(), "place": "县总工会", "version": version})
    assert answer.status_code == 422
    assert expected in form_errors(answer.get_data(as_text=True), "event-schedule_onsite")


# --- amounts ----------------------------------------------------------------------------------


def test_amounts_show_thousands_separators_but_form_boxes_hold_plain_amounts(
        app: Flask, client: FlaskClient, county: County) -> None:
    county.claim()  # estimate 1250.00
    claim = approved_claims(app, county, ["1500.00"])[0]
    assert remit(county, [claim]).status_code == 201
    sign_in(client, county)
    listing = client.get("/console/claims").get_data(as_text=True)
    assert '<td class="num">1,250.00</td>' in listing and ">1250.00<" not in listing
    post_form(client, "/console/jobs/dispatch_notifications", {"next": "/console/counter"})
    form = client.get(f"/console/counter/{claim['claim_no']}").get_data(as_text=True)
    assert "<strong>1,500.00 元</strong>" in form and "须等于核准金额 1,500.00 元" in form
    assert 'value="1500.00"' in form  # the box, as the API reads it
