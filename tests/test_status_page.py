"""The workers' pages: / and /status (理赔进度查询), as HTML and in a real phone-sized browser."""

from __future__ import annotations

from typing import Any

from browser import PHONE, horizontal_overflow, open_page, screenshot
from conftest import County
from flask import Flask
from flask.testing import FlaskClient
from test_status_api import ask, claim_in, enrolled

NO_MATCH = "未找到匹配的理赔，请核对后重试"


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


def test_a_wrong_guess_on_the_page_is_told_beside_the_field(client: FlaskClient,
                                                           county: County) -> None:
    member = enrolled(county)
    answer = post_form(client, {"by": "id", "id_number": member["id_number"], "name": "不是我"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 404
    assert f'<p class="field-error" id="name-error" role="alert">{NO_MATCH}</p>' in html
    assert 'aria-describedby="name-hint name-error" aria-invalid="true"' in html
    assert member["id_number"] not in html  # not even the number just typed is echoed


def test_an_empty_or_malformed_form_says_what_to_fix(client: FlaskClient) -> None:
    empty = post_form(client, {"by": "claim", "claim_no": "", "id_last6": " "})
    assert empty.status_code == 422
    assert "请填写理赔编号" in empty.get_data(as_text=True)
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
    assert f"查询过于频繁，请 {seconds} 秒后再试" in limited.get_data(as_text=True)
    assert ask(client, wrong).status_code == 429


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


def test_a_wrong_guess_shows_the_error_beside_the_field(app: Flask, county: County,
                                                       live_server: Any, phone: Any) -> None:
    claim, _member = claim_in(app, county, "logged")
    phone.goto(f"{live_server.url}/status")
    phone.get_by_label("理赔编号").fill(claim["claim_no"])
    phone.get_by_label("身份证号码后六位").fill("000000")
    phone.get_by_role("button", name="查询").first.tap()
    error = phone.locator("#id_last6-error")
    error.wait_for()
    assert error.inner_text() == NO_MATCH
    field, message = phone.locator("#id_last6").bounding_box(), error.bounding_box()
    assert 0 <= message["y"] - (field["y"] + field["height"]) < 24  # right under the field
    assert phone.locator("#id_last6").get_attribute("aria-invalid") == "true"
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
