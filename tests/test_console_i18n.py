"""The console in Chinese first, English by the switch (Flask-Babel); the catalogue whole."""

from __future__ import annotations

import gettext
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from conftest import County
from flask.testing import FlaskClient
from test_console import sign_in

from claims.web.console_i18n import SHARED_LABELS
from config.catalogue import load_catalogue
from config.settings import Settings
from workflows.lifecycle import EVENTS, STATES

TRANSLATIONS = Path(__file__).resolve().parent.parent / "claims" / "translations"
PO = TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po"
MO = TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.mo"


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
        assert gettext.GNUTranslations(committed)._catalog == gettext.GNUTranslations(
            compiled)._catalog, "messages.mo is stale: pybabel compile -d claims/translations"


def test_every_extracted_message_has_an_english_translation() -> None:
    with (TRANSLATIONS / "messages.pot").open("rb") as source:
        template = {m.id for m in read_po(source) if m.id}
    with PO.open("rb") as source:
        translated = {m.id for m in read_po(source, locale="en") if m.id and m.string}
    assert template - translated == set()


def test_every_state_event_product_and_document_label_is_in_the_catalogue() -> None:
    known = {label._args[0] for label in SHARED_LABELS}  # LazyString keeps its msgid
    catalogue = load_catalogue(Settings.from_env().products_file)
    wanted = (set(STATES.values()) | {spec.label for spec in EVENTS}
              | {p.name for p in catalogue.products.values()}
              | set(catalogue.document_names.values()))
    assert wanted - known == set()
