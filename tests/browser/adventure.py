"""What the browser tests do on Lanternpath's pages, named the way a player would say it."""
from __future__ import annotations

import os
from pathlib import Path

from bs4 import BeautifulSoup
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

from service.web.render import DEFAULT_LEGEND
from tests.support import player

# Debian's package; CHROMIUM_PATH names another build of Chromium.
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
AXE_SCRIPT = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
WORLD, TOPIC = "Brinelight", "The Solar System"


def chapter(page: Page, number: int):
    return page.locator(f'#chapter[data-number="{number}"]')


def start(page: Page) -> None:
    page.goto("/")
    page.get_by_role("radio", name=WORLD).check()
    page.get_by_role("radio", name=TOPIC).check()
    page.get_by_role("button", name="Begin the adventure").click()
    wait_until_written(page, 1)


def wait_until_written(page: Page, number: int) -> None:
    """Until chapter `number` offers its choices (or, the last one, the summary link)."""
    choices = chapter(page, number).locator("#choices")
    # wait_for watches the page; expect() would poll at ever longer intervals, up to a second.
    choices.get_by_role("button").or_(choices.get_by_role("link")).first.wait_for()


def choose_first(page: Page, number: int) -> None:
    chapter(page, number).locator("#choices").get_by_role("button").first.click()
    wait_until_written(page, number + 1)


def is_lesson(page: Page) -> bool:
    return page.locator("#choices legend").inner_text().strip() != DEFAULT_LEGEND


def play_to_first_lesson(page: Page) -> int:
    start(page)
    number = 1
    while not is_lesson(page):
        choose_first(page, number)
        number += 1
    return number


def play_to_summary(page: Page) -> None:
    start(page)
    for number in range(1, 10):
        choose_first(page, number)
    page.get_by_role("link", name="See your journey and your lessons").click()
    expect(page.locator("[data-question]")).to_have_count(3)


def play_to_summary_over_http(page: Page) -> None:
    """The quick way to the summary: the chapters' forms sent by the browser context's own
    HTTP client (same cookies), then the summary opened in the page."""
    start(page)
    current = player.ChapterPage.parse(page.url, page.content())
    while current.choices:
        response = page.request.post(current.action, form={"choice": current.choices[0]})
        assert response.ok, f"choosing in {current.url} answered {response.status}"
        current = player.ChapterPage.parse(response.url, response.text())
    page.goto(current.summary_url)


def axe_violations(page: Page) -> list[str]:
    """axe-core's WCAG 2.x A/AA and best-practice rules: one line per violation and node."""
    # Evaluated by the browser's debugging protocol: a <script> tag added to the page would be
    # an inline script, which the page's Content-Security-Policy rightly refuses.
    page.evaluate(AXE_SCRIPT.read_text())
    result = page.evaluate("axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa',"
                           " 'best-practice']})")
    return [f"{v['id']}: {v['help']} at {node['target']}" for v in result["violations"] for node in v["nodes"]]


def story_paragraphs_read_aloud(page: Page, tries: int = 5) -> list[str]:
    """The chapter's story paragraphs as Chromium's own accessibility tree has them (what a
    screen reader navigates by paragraph), in order: the paragraph nodes inside #chapter that
    are not ignored, less the chapter's progress line and writing note. A page still loading
    may replace its document between two questions: then they are asked again."""
    for _ in range(tries - 1):
        try:
            return _paragraphs_read_aloud(page)
        except PlaywrightError as exc:
            if "Could not find node" not in str(exc):
                raise
    return _paragraphs_read_aloud(page)


def _paragraphs_read_aloud(page: Page) -> list[str]:
    cdp = page.context.new_cdp_session(page)
    try:
        root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        article = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "#chapter"})["nodeId"]
        if not article:
            return []
        nodes = cdp.send("Accessibility.queryAXTree", {"nodeId": article, "role": "paragraph"})["nodes"]
        paragraphs = []
        for node in nodes:
            if node.get("ignored"):
                continue
            html = cdp.send("DOM.getOuterHTML", {"backendNodeId": node["backendDOMNodeId"]})["outerHTML"]
            element = BeautifulSoup(html, "html.parser").p
            if element is not None and not element.get("class"):
                paragraphs.append(" ".join(element.get_text().split()))
        return paragraphs
    finally:
        cdp.detach()
