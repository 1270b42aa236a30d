"""The console in English in a real browser: the claim form's live estimate (console.js), and
long English words at a desk's 1280 px."""

from __future__ import annotations

import re
from typing import Any

from browser import open_page, sign_in, sign_in_and_fill_a_claim
from conftest import PASSWORD, County
from payout_world import approved_claims, remit

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
        assert preview.startswith("Estimated payout: 1250.00 yuan"), preview
        assert "Still missing: Claim form, ID card copy, Medical invoice" in preview
        assert not re.search(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]", preview), preview
    finally:
        page.context.close()


# Values that read as one piece: a date, a masked ID number, an amount. The script lists those
# of the claim page's facts that the browser broke over two lines.
BROKEN_VALUES = r"""() => {
    const whole = /\d{4}-\d{2}-\d{2}|\d{6}\*{8}\d{3}[\dX]|[\d,]+\.\d{2}/g;
    const broken = [];
    for (const dd of document.querySelectorAll('.facts dd')) {
        const texts = document.createTreeWalker(dd, NodeFilter.SHOW_TEXT);
        for (let node = texts.nextNode(); node; node = texts.nextNode()) {
            for (const found of node.data.matchAll(whole)) {
                const range = document.createRange();
                range.setStart(node, found.index);
                range.setEnd(node, found.index + found[0].length);
                const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
                if (lines.size > 1) broken.push(found[0]);
            }
        }
    }
    return broken;
}"""


def test_english_pages_keep_values_whole_and_figures_in_sight_at_1280(
        app: Any, chromium: Any, live_server: Any, county: County) -> None:
    for lacking in (["claim_form"], ["claim_form", "id_card"]):
        county.claim(documents=lacking)  # logged, documents missing
    woman = county.member(sex="F")
    county.enrol(woman, "female_special")
    county.claim(woman, "female_special")  # the longest product name
    county.fire(county.claim()["claim_no"], "request_materials", documents=["invoice"],
                reason_code="missing_invoice")
    county.ready_claims(1)
    paid = approved_claims(app, county, ["1500.00", "2300.00"])
    assert remit(county, paid[:1]).status_code == 201  # the claim page then has 3 cards
    county.clerk  # noqa: B018 - creates the user
    page = open_page(chromium, **DESK)
    try:
        sign_in(page, live_server.url, "clerk", PASSWORD, lang="en")
        page.goto(f"{live_server.url}/console/claims/{paid[0]['claim_no']}")
        assert page.evaluate(BROKEN_VALUES) == []
        page.goto(f"{live_server.url}/console/claims")
        hidden = page.evaluate("""() => { const wrap = document.querySelector('.table-wrap');
            return wrap.scrollWidth - wrap.clientWidth; }""")
        assert hidden <= 0, f"the claims list scrolls sideways by {hidden}px"
        page.goto(f"{live_server.url}/console/reports")
        state, table, wrap = page.evaluate("""() => {
            const table = [...document.querySelectorAll('table')].find(
                t => t.querySelector('th') && t.querySelector('th').innerText === 'Product');
            const th = [...table.querySelectorAll('th')].find(th => th.innerText === 'State');
            return [th.getBoundingClientRect().width, table.scrollWidth,
                    table.parentElement.clientWidth]; }""")
        assert table <= wrap, f"the products table is {table - wrap}px wider than its box"
        assert state <= 0.4 * table, f"the State column takes {state}px of {table}px"
    finally:
        page.context.close()
