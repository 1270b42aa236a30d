"""Real-browser tests: the app served on a free loopback port, and Debian's chromium.

tests/conftest.py imports the fixtures once (imported into each test module they would be
separate session fixtures, and a second Playwright cannot start beside the first). Tests
get `live_server.url` (the app of the test's `app` fixture, against the test database)
and `phone` (a Playwright page on a 360x740 touch screen). Without /usr/bin/chromium or the
playwright package the tests are skipped with the reason; CI installs both (.ci/run,
pyproject's test extra). Playwright's own browser download is never used. Screenshots show
Chinese only with a CJK font installed (apt-get install fonts-wqy-microhei); the tests
themselves read text, not pixels, and pass without one.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PHONE: dict[str, Any] = {
    "viewport": {"width": 360, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "zh-CN",
    "timezone_id": "Asia/Shanghai",
}
# The README's pictures are refreshed on purpose (`make screenshots`), not by every test run:
# a run leaves the work tree as it found it. Otherwise they go to a folder in the temp dir.
SCREENSHOTS = Path(os.environ.get("MUTUALAID_SCREENSHOT_DIR")
                   or Path(tempfile.gettempdir()) / "mutualaid-screenshots")


def missing_browser() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


class LiveServer:
    """A Flask app served by werkzeug in a thread on 127.0.0.1, on a port the OS picks."""

    def __init__(self, app: Flask) -> None:
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                        name="live-server")

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    """The test's app, served for real until the test ends."""
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless chromium for the session (Playwright driving Debian's build)."""
    reason = missing_browser()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(chromium: Any, **context: Any) -> Any:
    """A page in a fresh browser context (its own cookies), e.g. open_page(chromium, **PHONE)."""
    page = chromium.new_context(**context).new_page()
    page.set_default_timeout(10_000)
    return page


@pytest.fixture
def phone(chromium: Any) -> Iterator[Any]:
    """A page on a 360x740 touch phone; its context is closed after the test."""
    page = open_page(chromium, **PHONE)
    try:
        yield page
    finally:
        page.context.close()


def horizontal_overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than its viewport (0: no sideways scrolling)."""
    width = page.evaluate("document.scrollingElement.scrollWidth")
    return max(0, int(width) - int(page.viewport_size["width"]))


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as NAME in SCREENSHOTS (docs/screenshots under
    `make screenshots`)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


STAY_FIELDS = ("incident_date", "admission_date", "discharge_date", "hospital", "diagnosis",
               "total_expense", "insurance_paid", "self_paid")


def sign_in(page: Any, base: str, username: str, password: str, *, lang: str = "zh") -> None:
    """Sign in at the console's form, as a user would; on the home page when it returns."""
    page.goto(f"{base}/console/login?lang={lang}")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{base}/console/")


def sign_in_and_fill_a_claim(page: Any, base: str, username: str, password: str,
                             body: dict[str, Any], *, lang: str = "zh") -> None:
    """Sign in, open the in-patient claim form and type `body` in it (the ID number and the
    stay's fields; documents and submitting are the test's)."""
    sign_in(page, base, username, password, lang=lang)
    page.goto(f"{base}/console/claims/new?product_code=inpatient")
    page.fill("#id_number", body["id_number"])
    for name in STAY_FIELDS:
        page.fill(f"#{name}", body[name])
