"""The console in English in a real browser: the claim form's live estimate (console.js)."""

from __future__ import annotations

import re
from typing import Any

from browser import open_page, sign_in_and_fill_a_claim
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
        sign_in_and_fill_a_claim(page, live_server.url, "clerk", PASSWORD, body, lang="en")
        page.wait_for_selector("#estimate:has-text('1250.00 yuan')")
        preview = page.inner_text("#estimate-preview")
        assert preview.startswith("Estimated benefit: 1250.00 yuan"), preview
        assert "Still missing: Claim form, ID card copy, Medical invoice" in preview
        assert not re.search(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]", preview), preview
    finally:
        page.context.close()
