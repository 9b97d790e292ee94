"""Headless Chromium (the Debian package) driving the live server of tests/conftest.py, with
axe-core from npm, which the first browser test installs (`npm ci`) when it is missing.

Where REQUIRE_BROWSER=1 (CI sets it) a missing Chromium or npm fails these tests; elsewhere
they are skipped with a message that names what is missing and how to install it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import NoReturn

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.browser.adventure import AXE_SCRIPT, CHROMIUM

ROOT = AXE_SCRIPT.parents[2]

CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _missing(what: str) -> NoReturn:
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1, but {what}", pytrace=False)
    pytest.skip(f"browser tests skipped: {what}")


def _install_axe_core() -> None:
    """axe-core, pinned in package-lock.json, into node_modules/ the first time it is needed."""
    if AXE_SCRIPT.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        _missing("axe-core is not installed and there is no npm to install it: install Node.js with npm "
                 "(Debian: apt-get install -y npm); the tests then run `npm ci` themselves")
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0 or not AXE_SCRIPT.exists():
        pytest.fail(f"`npm ci` could not install axe-core:\n{done.stdout[-2000:]}{done.stderr[-2000:]}", pytrace=False)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        _missing(f"Chromium is not installed at {CHROMIUM}: install the Debian package (apt-get install -y chromium)")
    _install_axe_core()
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
