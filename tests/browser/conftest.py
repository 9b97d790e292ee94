"""Headless Chromium (the Debian package, installed by .ci/run) driving the live server of
tests/conftest.py. A missing browser or axe-core fails these tests: nothing is skipped."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.browser.adventure import AXE_SCRIPT, CHROMIUM

CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: install the Debian package `chromium` (.ci/run does)"
    assert AXE_SCRIPT.exists(), f"{AXE_SCRIPT} is missing: run `npm ci` at the repository root (.ci/run does)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _page(browser: Browser, base_url: str, **options) -> Iterator[Page]:
    context = browser.new_context(base_url=base_url, viewport={"width": 1024, "height": 768}, **options)
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()  # before the server stops: an open event stream would hold it up


@pytest.fixture
def page(browser, server) -> Iterator[Page]:
    yield from _page(browser, server.base_url)


@pytest.fixture
def page_without_javascript(browser, server) -> Iterator[Page]:
    yield from _page(browser, server.base_url, java_script_enabled=False)
