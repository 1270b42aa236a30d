"""The workers' pages: / and /status (理赔进度查询), as HTML and in a real phone-sized browser."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from browser import PHONE, horizontal_overflow, open_page, screenshot
from conftest import County, new_id_number
from flask import Flask
from flask.testing import FlaskClient
from test_status_api import ask, by_claim, chinese_date, claim_in, enrolled

NO_MATCH_BY_CLAIM = "未找到匹配的理赔，请核对理赔编号和身份证号后六位"
NO_MATCH_BY_ID = "未找到匹配的理赔，请核对身份证号和姓名"
ERROR_TITLE = "<title>查询失败 - "


def input_tag(html: str, name: str) -> str:
    """The <input> of field `name` in a page."""
    match = re.search(f'<input id="{name}"[^>]*>', html)
    assert match, name
    return match.group(0)


def summary(html: str) -> str | None:
    """The error summary above the form, or None."""
    match = re.search(r'<div class="error-summary" id="error-summary" role="alert"><p>(.*?)</p>',
                      html)
    return match.group(1) if match else None


def post_form(client: FlaskClient, data: dict[str, str], address: str = "127.0.0.1") -> Any:
    return client.post("/status", data=data, environ_base={"REMOTE_ADDR": address})


# --- the HTML, through the test client -------------------------------------------------------

def test_the_landing_page_links_to_the_status_check_and_the_console(client: FlaskClient) -> None:
    page = client.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert '<html lang="zh-CN">' in html
    assert 'href="/status"' in html and 'href="/console/"' in html
    assert "http://" not in html and "https://" not in html  # no CDN, no external fonts
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert client.get("/", headers={"Accept": "application/json"}).json["status"] == "/status"


def test_the_form_works_without_javascript(client: FlaskClient, app: Flask,
                                           county: County) -> None:
    form = client.get("/status?by=id").get_data(as_text=True)
    assert 'data-panel="id" novalidate>' in form  # the ID tab is the one shown
    assert '<label for="id_number">身份证号码</label>' in form
    claim, member = claim_in(app, county, "notified")
    answer = post_form(client, {"by": "claim", "claim_no": claim["claim_no"],
                                "id_last6": member["id_number"][-6:]})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert "已通知领取" in html and "办理经过" in html and "已通知单位工会" in html
    assert "身份证原件；代领需授权委托书" in html and "到哪里领取" in html
    assert member["id_number"] not in html


def test_an_amount_is_shown_only_while_money_may_come(client: FlaskClient, app: Flask,
                                                     county: County) -> None:
    def page(state: str) -> str:
        claim, member = claim_in(app, county, state)
        return post_form(client, {"by": "claim", "claim_no": claim["claim_no"],
                                  "id_last6": member["id_number"][-6:]}).get_data(as_text=True)

    assert "预估互助金" in page("submitted")
    notified = page("notified")
    assert "市总核准" in notified and "预估互助金" not in notified
    for state in ("rejected", "withdrawn"):
        html = page(state)
        assert "预估互助金" not in html and "市总核准" not in html and " 元" not in html


def test_the_form_asks_a_phone_for_the_latin_keyboard(client: FlaskClient) -> None:
    form = client.get("/status").get_data(as_text=True)
    for name in ("claim_no", "id_last6", "id_number"):
        tag = input_tag(form, name)
        assert 'inputmode="url"' in tag and 'autocapitalize="characters"' in tag, tag
        assert 'autocomplete="off"' in tag and "placeholder" not in tag, tag
    assert "由单位工会告知，如 LP2026-000123" in form  # the example stays, as a hint
    maxlength = re.search(r'maxlength="(\d+)"', input_tag(form, "id_last6"))
    assert maxlength and int(maxlength.group(1)) >= 22  # a whole ID number, pasted with spaces
    assert 'inputmode="text"' in input_tag(form, "name")  # a Chinese name: the usual keyboard


def test_a_wrong_guess_on_the_page_names_both_fields_above_the_form(
        client: FlaskClient, county: County) -> None:
    member = enrolled(county)
    claim = county.claim(member)
    answer = post_form(client, {"by": "id", "id_number": member["id_number"], "name": "不是我"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 404 and ERROR_TITLE in html
    assert summary(html) == NO_MATCH_BY_ID
    assert html.index('id="error-summary"') < html.index('data-panel="id"')  # above the form
    assert "aria-invalid" not in html and "field-error" not in html  # no one field blamed
    assert member["id_number"] not in html  # not even the number just typed is echoed
    by_number = post_form(client, {"by": "claim", "claim_no": claim["claim_no"],
                                   "id_last6": "000000"}).get_data(as_text=True)
    assert summary(by_number) == NO_MATCH_BY_CLAIM
    assert "aria-invalid" not in by_number and ERROR_TITLE in by_number
    assert ERROR_TITLE not in client.get("/status").get_data(as_text=True)


def test_an_empty_or_malformed_form_says_what_to_fix(client: FlaskClient) -> None:
    empty = post_form(client, {"by": "claim", "claim_no": "", "id_last6": " "})
    assert empty.status_code == 422
    html = empty.get_data(as_text=True)
    assert '<p class="field-error" id="claim_no-error" role="alert">请填写理赔编号</p>' in html
    assert 'aria-describedby="claim_no-hint claim_no-error" aria-invalid="true"' in html
    assert ERROR_TITLE in html and summary(html) is None  # told under the field, not above
    malformed = post_form(client, {"by": "claim", "claim_no": "LP2026-1", "id_last6": "12"})
    assert "身份证号码的最后六位" in malformed.get_data(as_text=True)


def test_the_page_and_the_api_count_wrong_guesses_together(client: FlaskClient) -> None:
    wrong = {"claim_no": "LP2099-000001", "id_last6": "000000"}
    for _ in range(5):
        assert ask(client, wrong).status_code == 404
        assert post_form(client, {"by": "claim", **wrong}).status_code == 404
    limited = post_form(client, {"by": "claim", **wrong})
    seconds = int(limited.headers["Retry-After"])
    assert limited.status_code == 429 and 1 <= seconds <= 60
    assert ask(client, wrong).status_code == 429


def test_the_wait_after_too_many_guesses_blames_no_one(client: FlaskClient) -> None:
    """The limit counts a whole network's guesses: the worker who sees it may have typed
    nothing wrong, so no field is marked and the message says when to try again."""
    wrong = {"by": "claim", "claim_no": "LP2099-000001", "id_last6": "000000"}
    for n in range(10):
        assert post_form(client, wrong | {"claim_no": f"LP2099-{n:06d}"}).status_code == 404
    limited = post_form(client, {"by": "id", "id_number": new_id_number(), "name": "张伟"})
    html = limited.get_data(as_text=True)
    seconds = int(limited.headers["Retry-After"])
    assert limited.status_code == 429 and ERROR_TITLE in html
    told = summary(html)
    assert told and f"请 {seconds} 秒后再试" in told and "同一网络中其他人的查询也计算在内" in told
    assert "过于频繁" not in html  # not the worker's fault
    assert "aria-invalid" not in html and "field-error" not in html


def test_the_result_page_tells_days_in_chinese(client: FlaskClient, app: Flask,
                                               county: County) -> None:
    claim, member = claim_in(app, county, "onsite_scheduled")
    html = post_form(client, {"by": "claim", **by_claim(claim, member)}).get_data(as_text=True)
    today, meeting = county.today, county.today + timedelta(days=7)
    assert f'<time datetime="{today.isoformat()}">{chinese_date(today)}</time>' in html
    assert (f'<time datetime="{meeting.isoformat()}">{chinese_date(meeting, weekday=True)}'
            "</time>") in html  # the on-site box
    shown = re.sub(r"<[^>]*>", " ", html)  # the text, without the tags' attributes
    assert not re.search(r"\d{4}-\d{2}-\d{2}", shown), shown


def test_padding_a_guess_past_what_the_page_keeps_does_not_escape_the_limits(
        client: FlaskClient, county: County) -> None:
    """The page keeps 100 characters of a field; the limits key on what it keeps, so a claim
    or ID number padded with blanks and a character cut off counts as itself."""
    member = enrolled(county, name="吴敏")
    claim = county.claim(member)
    for n in range(10):
        assert post_form(client, {"by": "claim", "claim_no": claim["claim_no"],
                                  "id_last6": "000000"}, f"10.1.0.{n}").status_code == 404
    padded = claim["claim_no"] + " " + "\t" * 94 + "Z"
    assert post_form(client, {"by": "claim", "claim_no": padded,
                              "id_last6": member["id_number"][-6:]},
                     "10.1.1.1").status_code == 429
    for n in range(10):  # wrong names, each beside a decoy claim number of its own
        assert post_form(client, {"by": "id", "id_number": member["id_number"],
                                  "name": f"吴{n}", "claim_no": f"Z{n}"},
                         f"10.1.2.{n}").status_code == 404
    assert post_form(client, {"by": "id", "id_number": member["id_number"] + " " * 30,
                              "name": "吴敏", "claim_no": "Z99"},
                     "10.1.3.1").status_code == 429


def test_an_ipv6_client_counts_by_its_64(client: FlaskClient) -> None:
    wrong = {"by": "claim", "claim_no": "LP2099-000001", "id_last6": "000000"}
    for n in range(10):
        assert post_form(client, wrong, f"2001:db8::1:{n:x}").status_code == 404
    assert post_form(client, wrong | {"claim_no": "LP2099-000002"},
                     "2001:db8::ffff:1").status_code == 429
    assert post_form(client, wrong | {"claim_no": "LP2099-000002"},
                     "2001:db8:0:1::1").status_code == 404  # another /64


# --- a worker's phone, in a real browser ------------------------------------------------------

def test_a_worker_checks_a_claim_on_a_phone(app: Flask, county: County, live_server: Any,
                                             phone: Any) -> None:
    claim, member = claim_in(app, county, "notified")
    phone.goto(f"{live_server.url}/status")
    assert phone.locator("html").get_attribute("lang") == "zh-CN"
    assert horizontal_overflow(phone) == 0
    screenshot(phone, "status-phone.png")

    phone.get_by_label("理赔编号").fill(claim["claim_no"].lower())
    # Typed (or pasted) with a space either side: the box keeps all six, the server trims.
    phone.get_by_label("身份证号码后六位").press_sequentially(f" {member['id_number'][-6:]} ")
    phone.get_by_role("button", name="查询").first.tap()
    state = phone.locator(".state")
    state.wait_for()
    assert "已通知领取" in state.inner_text()
    steps = phone.locator(".timeline li")
    assert steps.count() == 7
    assert "已登记" in steps.first.inner_text()
    assert "已通知单位工会" in steps.last.inner_text()
    assert "身份证原件" in phone.locator(".collect").inner_text()
    assert horizontal_overflow(phone) == 0
    height = phone.get_by_role("link", name="查询其他理赔").bounding_box()["height"]
    assert height >= 44  # a thumb-sized tap target
    screenshot(phone, "status-result-phone.png")
    assert member["id_number"] not in phone.content()


def test_a_wrong_guess_shows_one_message_above_the_form(app: Flask, county: County,
                                                        live_server: Any, phone: Any) -> None:
    claim, _member = claim_in(app, county, "logged")
    phone.goto(f"{live_server.url}/status")
    phone.get_by_label("理赔编号").fill(claim["claim_no"])
    phone.get_by_label("身份证号码后六位").fill("000000")
    phone.get_by_role("button", name="查询").first.tap()
    error = phone.get_by_role("alert")
    error.wait_for()
    assert error.inner_text() == NO_MATCH_BY_CLAIM
    assert phone.title().startswith("查询失败 - ")
    message, form = error.bounding_box(), phone.locator("form[data-panel=claim]").bounding_box()
    assert message["y"] + message["height"] <= form["y"]  # above the form, seen first
    for name in ("claim_no", "id_last6"):
        assert phone.locator(f"#{name}").get_attribute("aria-invalid") is None
    assert horizontal_overflow(phone) == 0


def test_the_id_number_tab_switches_in_place_and_lists_the_claims(
        app: Flask, county: County, live_server: Any, phone: Any) -> None:
    claim_in(app, county, "submitted")
    member = enrolled(county, name="陈静")
    county.claim(member)
    phone.goto(f"{live_server.url}/status")
    phone.get_by_role("link", name="按身份证号码").tap()
    assert phone.locator("form[data-panel=id]").is_visible()
    assert not phone.locator("form[data-panel=claim]").is_visible()
    phone.get_by_label("身份证号码", exact=True).fill(member["id_number"])
    phone.get_by_label("姓名").fill("陈静")
    phone.locator("form[data-panel=id]").get_by_role("button", name="查询").tap()
    phone.locator(".state").first.wait_for()
    assert phone.locator("article.claim").count() == 1
    assert "已登记" in phone.locator(".state").inner_text()
    # The caps table at 360 px: no amount breaks over two lines, nothing overflows the page.
    assert "住院医疗互助保障" in phone.locator(".caps").inner_text()
    assert phone.evaluate("""[...document.querySelectorAll('.caps td')].every(td => {
        const range = document.createRange(); range.selectNodeContents(td);
        return range.getClientRects().length <= 1; })""")
    assert horizontal_overflow(phone) == 0


def test_with_large_text_each_value_goes_under_its_label(app: Flask, county: County,
                                                        live_server: Any, phone: Any) -> None:
    """Root font at 200% on a 360 px phone: the boxes' label-value lists stack rather than
    squeeze a value to one character a line; at the usual size label and value share a line."""
    claim, member = claim_in(app, county, "onsite_scheduled")
    phone.goto(f"{live_server.url}/status")
    phone.get_by_label("理赔编号").fill(claim["claim_no"])
    phone.get_by_label("身份证号码后六位").fill(member["id_number"][-6:])
    phone.get_by_role("button", name="查询").first.tap()
    phone.locator(".onsite dl").wait_for()
    pairs = """() => [...document.querySelectorAll('.box dd, .amounts dd')].map(dd => {
        const dt = dd.previousElementSibling.getBoundingClientRect();
        const box = dd.getBoundingClientRect();
        return {beside: Math.abs(box.top - dt.top) < 2, under: box.top >= dt.bottom - 1,
                chars: box.width / parseFloat(getComputedStyle(dd).fontSize)}; })"""
    usual = phone.evaluate(pairs)
    assert len(usual) >= 5 and all(p["beside"] for p in usual), usual
    phone.evaluate("document.documentElement.style.fontSize = '200%'")
    large = phone.evaluate(pairs)
    assert all(p["under"] and p["chars"] >= 4 for p in large), large
    assert horizontal_overflow(phone) == 0
    screenshot(phone, "status-result-phone-large-text.png")


def test_two_claims_on_one_page_each_have_a_heading_and_regions_of_their_own(
        app: Flask, county: County, live_server: Any, phone: Any) -> None:
    member = enrolled(county, name="陈静")
    first, second = county.claim(member), county.claim(member)
    phone.goto(f"{live_server.url}/status?by=id")
    phone.get_by_label("身份证号码", exact=True).fill(member["id_number"])
    phone.get_by_label("姓名").fill("陈静")
    phone.locator("form[data-panel=id]").get_by_role("button", name="查询").tap()
    phone.locator(".state").first.wait_for()
    claims = phone.locator("article.claim")
    assert claims.count() == 2
    for n, claim in enumerate((second, first)):  # newest first
        article = claims.nth(n)
        heading = article.get_by_role("heading", level=2)
        assert heading.inner_text() == f"理赔编号 {claim['claim_no']}"
        assert article.get_attribute("aria-labelledby") == heading.get_attribute("id")
        assert article.get_by_role("heading", level=3).all_inner_texts() == ["下一步", "办理经过"]
    # axe's landmark-unique: no two regions share a name (as the browser computes it).
    regions = re.findall(r'- region "([^"]*)"', phone.locator("main").aria_snapshot())
    assert len(regions) == len(set(regions)) and len(regions) >= 5, regions
    assert f"下一步 {first['claim_no']}" in regions and f"下一步 {second['claim_no']}" in regions


def test_without_javascript_the_tabs_are_links(app: Flask, county: County, live_server: Any,
                                               chromium: Any) -> None:
    page = open_page(chromium, java_script_enabled=False, **PHONE)
    try:
        page.goto(f"{live_server.url}/status")
        page.get_by_role("link", name="按身份证号码").click()
        page.wait_for_url("**/status?by=id")
        assert page.locator("form[data-panel=id]").is_visible()
        assert not page.get_by_role("button", name="打印本页").is_visible()
    finally:
        page.context.close()
