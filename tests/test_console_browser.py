"""The staff console in a real browser: a clerk signs in, logs a claim, verifies it."""

from __future__ import annotations

from typing import Any

from browser import horizontal_overflow, open_page, screenshot
from conftest import PASSWORD, County

DESK: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}, "locale": "zh-CN",
                        "timezone_id": "Asia/Shanghai"}


def test_a_clerk_logs_a_claim_and_verifies_it(chromium: Any, live_server: Any,
                                              county: County) -> None:
    member = county.member(name="李娜")
    county.enrol(member)
    body = county.claim_body(member)
    county.claim()  # another claim, so home shows more than one count
    page = open_page(chromium, **DESK)
    try:
        page.goto(f"{live_server.url}/console/")
        page.fill("#username", "clerk")
        page.fill("#password", PASSWORD)
        page.click("button:has-text('登录')")
        page.wait_for_selector("h1:has-text('今日待办')")
        screenshot(page, "console-home.png")

        page.click("nav >> text=登记理赔")
        page.select_option("#choose-product", "inpatient")
        page.click("button:has-text('选择险种')")
        page.fill("#id_number", member["id_number"])
        page.select_option("#cause", "illness")
        for name in ("incident_date", "admission_date", "discharge_date"):
            page.fill(f"#{name}", body[name])
        for name in ("hospital", "diagnosis", "total_expense", "insurance_paid", "self_paid"):
            page.fill(f"#{name}", body[name])
        for code in body["documents"]:
            page.check(f"input[name=documents][value={code}]")
        page.click("form.claim-form button[type=submit]")
        page.wait_for_selector("#state:has-text('已登记')")
        assert member["id_number"] not in page.content()

        page.click("#event-verify button[type=submit]")
        page.wait_for_selector("#state:has-text('待报送')")
        assert "审核通过" in page.inner_text(".timeline")
        screenshot(page, "console-claim.png")

        page.set_viewport_size({"width": 360, "height": 740})
        assert horizontal_overflow(page) == 0
        for path in ("/console/", "/console/claims", "/console/claims/new"):
            page.goto(f"{live_server.url}{path}")
            assert horizontal_overflow(page) == 0, path
    finally:
        page.context.close()
