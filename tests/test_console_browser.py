"""The staff console in a real browser: a clerk signs in, logs a claim, verifies it."""

from __future__ import annotations

from typing import Any

from browser import (
    horizontal_overflow,
    open_page,
    screenshot,
    sign_in,
    sign_in_and_fill_a_claim,
)
from conftest import PASSWORD, County
from playwright.sync_api import expect

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
        sign_in(page, live_server.url, "clerk", PASSWORD)
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
        # The estimate follows the typing: 50% of (3000.00 - 500) before anything is saved.
        page.wait_for_selector("#estimate:has-text('1250.00')")
        assert "尚缺材料" in page.inner_text("#estimate-note")
        for code in body["documents"]:
            page.check(f"input[name=documents][value={code}]")
        expect(page.locator("#estimate-note")).not_to_contain_text("尚缺材料")
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


def test_a_claim_walks_from_logging_to_collection_through_the_pages(
        chromium: Any, live_server: Any, county: County, tmp_path: Any) -> None:
    from test_decisions import decisions_sheet, row

    member = county.member(name="陈静")
    county.enrol(member)
    body = county.claim_body(member)
    page = open_page(chromium, **DESK)
    base = live_server.url
    try:
        # Log and verify.
        sign_in_and_fill_a_claim(page, base, "clerk", PASSWORD, body)
        for code in body["documents"]:
            page.check(f"input[name=documents][value={code}]")
        page.click("form.claim-form button[type=submit]")
        page.wait_for_selector("#state:has-text('已登记')")
        claim_no = page.inner_text("h1").split()[0]
        page.click("#event-verify button[type=submit]")
        page.wait_for_selector("#state:has-text('待报送')")
        # The weekly batch, now; delivered; the city's decisions sheet.
        page.click("nav >> text=批次")
        page.click("#run-batch")
        page.wait_for_selector("#batch-state:has-text('未报送')")
        asked: list[str] = []  # "deliver" moves the whole batch: the page asks first
        page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
        page.click("#deliver button[type=submit]")
        page.wait_for_selector("#batch-state:has-text('已报送')")
        assert len(asked) == 1 and "其中 1 件理赔将一起转为“已报送市总”" in asked[0]
        sheet = tmp_path / "审核结果.xlsx"
        sheet.write_bytes(decisions_sheet([row(claim_no, "核准", 1250.0)]))
        page.set_input_files("#file", str(sheet))
        page.click("#decisions button[type=submit]")
        page.wait_for_selector(".flash:has-text('已记录 1 条市总审核结果')")
        assert "已核准" in page.inner_text("#totals-by-state")
        screenshot(page, "console-batch.png")
        # The city's money arrives.
        page.click("nav >> text=到账")
        page.click("text=登记到账")
        page.fill("#reference", "市总拨付-2026-001")
        page.fill("#received_on", county.today.isoformat())
        page.fill("#total_amount", "1250.00")
        page.fill("#items-0-claim_no", claim_no)
        page.fill("#items-0-amount", "1250.00")
        page.click("#remittance button[type=submit]")
        page.wait_for_selector(".flash:has-text('已记录到账')")
        # The notices go out; the worker comes to the counter.
        page.click("nav >> text=领款柜台")
        page.click("#dispatch button[type=submit]")
        page.wait_for_selector(".flash:has-text('1 件理赔已通知领取')")
        page.fill("#id_number", member["id_number"])
        page.click("#find-by-id button[type=submit]")
        page.click(f"#found tr:has-text('{claim_no}') >> text=兑付")
        assert member["id_number"] not in page.content()  # typed to find, never written back
        page.fill("#receipt_no", "SJ-2026-0001")
        screenshot(page, "console-counter.png")  # before the ID number is typed in
        page.fill("#id_number", member["id_number"])
        page.click("#collect button[type=submit]")
        page.wait_for_selector("h1:has-text('互助金领取收据')")
        text = page.inner_text("body")
        assert "SJ-2026-0001" in text and "壹仟贰佰伍拾元整" in text
        assert member["id_number"] not in page.content()
        screenshot(page, "console-receipt.png")
        assert county.clerk.get(f"/api/v1/claims/{claim_no}").json["state"] == "collected"

        page.set_viewport_size({"width": 360, "height": 740})
        for path in ("/console/batches", "/console/remittances/new", "/console/counter",
                     "/console/units", f"/console/claims/{claim_no}"):
            page.goto(f"{base}{path}")
            assert horizontal_overflow(page) == 0, path
    finally:
        page.context.close()


TABLET: dict[str, Any] = {"viewport": {"width": 768, "height": 1024}, "has_touch": True,
                          "is_mobile": True, "locale": "zh-CN", "timezone_id": "Asia/Shanghai"}


def test_on_a_tablet_every_link_a_finger_needs_is_44_px_tall(
        chromium: Any, live_server: Any, county: County) -> None:
    for _ in range(3):
        county.claim()
    county.clerk  # noqa: B018 - creates the user
    page = open_page(chromium, **TABLET)
    try:
        sign_in(page, live_server.url, "clerk", PASSWORD)
        page.wait_for_selector("h1:has-text('今日待办')")
        small = page.evaluate("""() => [...document.querySelectorAll(
                '.nav a, .nav .link, .sublinks a, .links a')]
            .filter(el => el.getBoundingClientRect().height < 44).map(el => el.textContent)""")
        assert small == []
        page.goto(f"{live_server.url}/console/claims")
        rows = page.evaluate("""() => [...document.querySelectorAll('td a')]
            .map(el => el.getBoundingClientRect().height)""")
        assert rows and min(rows) >= 44
    finally:
        page.context.close()
