"""The console in English in a real browser: the claim form's live estimate (console.js)."""

from __future__ import annotations

import re
from typing import Any

from browser import open_page
from conftest import PASSWORD, County

DESK: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}, "locale": "en-GB",
                        "timezone_id": "Asia/Shanghai"}


def test_the_live_estimate_follows_the_pages_language(chromium: Any, live_server: Any,
                                                      county: County) -> None:
    member = county.member()
    county.enrol(member)
    body = county.claim_body(member)
    county.clerk  # noqa: B018 - creates the user
    page = open_page(chromium, **DESK)
    try:
        page.goto(f"{live_server.url}/console/login?lang=en")
        page.fill("#username", "clerk")
        page.fill("#password", PASSWORD)
        page.click("button:has-text('Sign in')")
        page.goto(f"{live_server.url}/console/claims/new?product_code=inpatient")
        page.fill("#id_number", member["id_number"])
        for name in ("incident_date", "admission_date", "discharge_date", "hospital",
                     "diagnosis", "total_expense", "insurance_paid", "self_paid"):
            page.fill(f"#{name}", body[name])
        page.wait_for_selector("#estimate:has-text('1250.00 yuan')")
        preview = page.inner_text("#estimate-preview")
        assert preview.startswith("Estimated benefit: 1250.00 yuan"), preview
        assert "Still missing: Claim form, ID card copy, Medical invoice" in preview
        assert not re.search(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]", preview), preview
    finally:
        page.context.close()
