"""The console in Chinese first, English by the switch (Flask-Babel); the catalogue whole."""

from __future__ import annotations

import gettext
import re
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from conftest import County
from flask.testing import FlaskClient
from test_console import post_form, sign_in
from test_console_batches import run_batch, upload
from test_decisions import decisions_sheet, row

from claims.web.console_i18n import SHARED_LABELS
from config.catalogue import load_catalogue
from config.reasons import reason_table
from config.settings import Settings
from workflows.lifecycle import EVENTS, STATES
from workflows.turnaround import STAGES
from workflows.visits import FESTIVALS

TRANSLATIONS = Path(__file__).resolve().parent.parent / "claims" / "translations"
PO = TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po"
MO = TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.mo"
# Chinese characters and the full-width punctuation (，：（）、。) an English page must not show.
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def untagged(html: str) -> str:
    """The text of some markup, as a reader sees it (no tags)."""
    return re.sub(r"<[^>]+>", "", html)


def cjk_in(texts: list[str]) -> list[str]:
    """The texts that still show Chinese (or its punctuation)."""
    return [text for text in texts if CJK.search(text)]


def test_chinese_first_english_by_the_switch_remembered_in_the_session(
        client: FlaskClient, county: County) -> None:
    claim = county.claim()
    sign_in(client, county)
    home = client.get("/console/").get_data(as_text=True)
    assert "今日待办" in home and 'href="?lang=en"' in home and '<html lang="zh-CN">' in home
    english = client.get("/console/?lang=en").get_data(as_text=True)
    assert "s work</h1>" in english and "Log a claim" in english and '<html lang="en">' in english
    page = client.get(f"/console/claims/{claim['claim_no']}").get_data(as_text=True)
    assert "Logged" in page and "Documents" in page and "今日待办" not in page
    assert "Unit code" in client.get("/console/units").get_data(as_text=True)
    assert "今日待办" in client.get("/console/?lang=zh").get_data(as_text=True)
    assert "今日待办" in client.get("/console/").get_data(as_text=True)


def test_english_chosen_on_the_sign_in_page_stays_after_signing_in(client: FlaskClient,
                                                                     county: County) -> None:
    assert "Staff sign-in" in client.get("/console/login?lang=en").get_data(as_text=True)
    sign_in(client, county)
    assert "Log a claim" in client.get("/console/").get_data(as_text=True)


def test_the_language_switch_keeps_the_lists_filters_and_page(client: FlaskClient,
                                                              county: County) -> None:
    county.claim()
    sign_in(client, county)
    listing = client.get("/console/claims?state=logged&unit_code=U%2601&page=1")
    assert 'href="?state=logged&amp;unit_code=U%2601&amp;page=1&amp;lang=en"' in listing.get_data(
        as_text=True)
    english = client.get("/console/claims?state=logged&lang=en").get_data(as_text=True)
    assert 'href="?state=logged&amp;lang=zh"' in english


def test_the_workers_status_page_stays_chinese(client: FlaskClient) -> None:
    assert "理赔进度查询" in client.get("/status?lang=en").get_data(as_text=True)


def test_the_committed_mo_is_compiled_from_the_po() -> None:
    """Edit the .po, then run `pybabel compile -d claims/translations` and commit both."""
    with PO.open("rb") as source:
        catalog = read_po(source, locale="en")
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    with MO.open("rb") as committed:
        # The messages, not the header: its Generated-By names the Babel that compiled it,
        # and a fresh install may bring a newer one than the committer's.
        ours, fresh = (dict(gettext.GNUTranslations(mo)._catalog)  # type: ignore[attr-defined]
                       for mo in (committed, compiled))
    ours.pop("", None)
    fresh.pop("", None)
    assert ours == fresh, "messages.mo is stale: pybabel compile -d claims/translations"


def test_every_extracted_message_has_an_english_translation() -> None:
    # By msgid and context: pgettext('one', '单位') is "Unit" where _('单位') is "Units".
    with (TRANSLATIONS / "messages.pot").open("rb") as source:
        template = {(m.context, m.id) for m in read_po(source) if m.id}
    with PO.open("rb") as source:
        catalog = read_po(source, locale="en")
    translated = {(m.context, m.id) for m in catalog if m.id and m.string and not m.fuzzy}
    assert template - translated == set()


def test_every_label_the_console_shows_from_data_is_in_the_catalogue() -> None:
    """States, events, products, documents, the default reasons, the report's stages and the
    festivals: a county's own wording shows as written, the defaults in English."""
    known = {label._args[0] for label in SHARED_LABELS}  # LazyString keeps its msgid
    settings = Settings.from_env()
    catalogue = load_catalogue(settings.products_file)
    wanted = (set(STATES.values()) | {spec.label for spec in EVENTS}
              | {p.name for p in catalogue.products.values()}
              | set(catalogue.document_names.values())
              | {r.label for r in reason_table(settings.reasons_file).reasons.values()}
              | {stage.label for stage in STAGES} | {name for name, *_ in FESTIVALS.values()})
    assert wanted - known == set()


# --- the pages in English ----------------------------------------------------------------------


def test_the_claim_page_in_english_names_reasons_unit_and_batch_in_english(
        client: FlaskClient, county: County) -> None:
    claim_no = county.claim()["claim_no"]
    sign_in(client, county)
    page = client.get(f"/console/claims/{claim_no}?lang=en").get_data(as_text=True)
    reasons = re.findall(r'<option value="[a-z_]+">([^<]*)</option>', page)
    assert "Insurance settlement sheet missing" in reasons and "Other" in reasons
    assert cjk_in(reasons) == []
    assert "<dt>Unit</dt>" in page and "<dt>Units</dt>" not in page
    # A coded reason's label in English wherever it shows; what the clerk typed, as typed.
    assert county.fire(claim_no, "request_materials", documents=["invoice"],
                       reason_code="missing_invoice").status_code == 200
    page = client.get(f"/console/claims/{claim_no}").get_data(as_text=True)
    assert "Reason: Original medical invoice missing" in page and "缺少" not in page
    assert "缺少医疗费用发票原件" in client.get(f"/console/claims/{claim_no}?lang=zh").get_data(
        as_text=True)
    other = county.claim()["claim_no"]
    assert county.fire(other, "request_materials", documents=["invoice"],
                       reason="发票请加盖公章").status_code == 200
    assert "Reason: 发票请加盖公章" in client.get(f"/console/claims/{other}?lang=en").get_data(
        as_text=True)


def test_the_member_page_in_english_names_products_states_and_reasons(
        client: FlaskClient, county: County) -> None:
    member = county.member()
    county.enrol(member)
    claim_no = county.claim(member)["claim_no"]
    assert county.fire(claim_no, "request_materials", documents=["invoice"], reason="缺发票",
                       reason_code="missing_invoice").status_code == 200
    sign_in(client, county)
    page = client.get(f"/console/members/{member['id']}?lang=en").get_data(as_text=True)
    cells = re.findall(r"<td>([^<]*)</td>", page)
    assert "In-patient medical" in cells and "Awaiting documents" in cells
    assert cjk_in(cells) == []
    # The reason as typed, its code's label in English.
    assert '<td>缺发票 <span class="muted"> (Original medical invoice missing)</span>' in page
    assert "<dt>Unit</dt>" in page
    chinese = client.get(f"/console/members/{member['id']}?lang=zh").get_data(as_text=True)
    assert "<td>待补材料</td>" in chinese and "（缺少医疗费用发票原件）" in chinese


def test_the_reports_page_in_english_charts_and_tables_in_english(
        client: FlaskClient, county: County) -> None:
    county.ready_claims(1)
    county.claim()
    sign_in(client, county)
    run_batch(client)
    page = client.get("/console/reports?lang=en").get_data(as_text=True)
    weekly, trend = re.findall(r'<section class="chart".*?</section>', page, re.DOTALL)[:2]
    labels = re.findall(r"<text[^>]*>([^<]*)</text>", weekly + trend)
    assert {"Week 1", "Claims logged", "Amount paid (yuan)",
            "Logged to batched (median days)"} <= set(labels)
    assert cjk_in(labels) == []
    assert "<td>Logged to batched</td>" in page and "<td>Funds received to collected</td>" in page
    states = re.search(r'<td>In-patient medical</td>.*?<td class="states">(.*?)</td>', page,
                       re.DOTALL)
    assert states and sorted(untagged(states[1]).split(", ")) == ["Batched 1", "Logged 1"]
    assert "Insured (enrolment rate" in page
    assert "Paid on this year's claims (approved 0.00, claimed" in page
    assert "Paid out this year (by payment date" in page
    chinese = client.get("/console/reports?lang=zh").get_data(as_text=True)
    assert "第1周" in chinese and "登记到装批（中位天数）" in chinese
    assert "已装批 1，已登记 1" in untagged(chinese) or "已登记 1，已装批 1" in untagged(chinese)


def test_the_visits_page_in_english_names_festivals_and_reasons(client: FlaskClient,
                                                                county: County) -> None:
    unit = county.unit(union_contact="李红", union_phone="0571-1111111")["code"]
    serious = county.member(unit, name="职工甲")
    county.enrol(serious, "critical_illness")
    county.claim(serious, "critical_illness")
    large = county.member(unit, name="职工乙")
    county.enrol(large, shares=2)
    county.claim(large, self_paid="12000.00", total_expense="20000.00")
    sign_in(client, county)
    page = client.get("/console/visits?lang=en").get_data(as_text=True)
    assert ">Spring Festival</option>" in page and ">Mid-Autumn Festival</option>" in page
    assert "Union contact: 李红 0571-1111111" in page
    reasons = re.findall(r'<td>([^<]*)</td><td class="num">', page)
    assert "Large claim (5000.00 yuan or more)" in reasons
    assert any(reason.startswith("Critical illness") for reason in reasons)
    assert cjk_in(reasons) == []
    chinese = client.get("/console/visits?lang=zh").get_data(as_text=True)
    assert "工会联系人：李红" in chinese and "大额理赔（5000.00元及以上）" in chinese


def test_the_claim_forms_estimate_speaks_the_pages_language(client: FlaskClient,
                                                            county: County) -> None:
    member = county.member()
    county.enrol(member)
    body = county.claim_body(member, documents=["claim_form", "id_card"])
    sign_in(client, county)
    form = client.get("/console/claims/new?lang=en").get_data(as_text=True)
    assert 'data-amount="%(amount)s yuan"' in form and 'data-separator=", "' in form
    assert 'data-missing="Still missing: %(documents)s"' in form
    assert "Estimated payout: <output" in form
    preview = post_form(client, "/console/claims/estimate", body).json
    assert preview["missing_documents"] == ["Medical invoice", "Insurance settlement sheet",
                                            "Discharge summary"]
    late = county.claim_body(member, incident_date="2000-01-01", admission_date="2000-01-01",
                             discharge_date="2000-01-05")
    warnings = post_form(client, "/console/claims/estimate", late).json["warnings"]
    assert warnings == ["The incident date is outside this member's cover for this product: "
                        "the claim will not pass verification."]
    logged = county.claim(member)["claim_no"]
    again = post_form(client, "/console/claims/estimate", county.claim_body(member)).json
    assert again["warnings"] == [f"Claim {logged} already exists for this member, product and "
                                 "incident date: this one cannot pass verification."]
    client.get("/console/?lang=zh")
    form = client.get("/console/claims/new").get_data(as_text=True)
    assert 'data-amount="%(amount)s 元"' in form and "估算互助金：<output" in form
    assert post_form(client, "/console/claims/estimate", body).json["missing_documents"] == [
        "医疗费用发票", "医保结算单", "出院小结"]


def test_the_batch_page_in_english_a_refused_sheet_and_one_batch(client: FlaskClient,
                                                                 county: County) -> None:
    claim_no = county.ready_claims(1)[0]
    sign_in(client, county)
    batch_no = run_batch(client)
    post_form(client, f"/console/batches/{batch_no}/deliver", {})
    client.get("/console/?lang=en")
    answer = upload(client, batch_no, decisions_sheet([row(claim_no, "核准")]), "dec-bad.xlsx")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and " (dec-bad.xlsx)." in page and "（" not in page
    assert f"<title>Batch {batch_no}" in page and "Shared folder: Sent" in page
    client.get("/console/?lang=zh")
    answer = upload(client, batch_no, decisions_sheet([row(claim_no, "核准")]), "dec-bad.xlsx")
    assert "需要更正（dec-bad.xlsx）。" in answer.get_data(as_text=True)
