"""Pictures in a real browser: with JavaScript the chapter's picture appears in its slot
without a reload, and nothing on the page moves when it does; without JavaScript it is
there at the next load, never as a broken image."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page

from service.config import Settings
from tests.browser.adventure import axe_violations, chapter, choose_first, start
from tests.conftest import picture_settings

# What a reader sees move: every box on the page but the picture's own content.
BOXES = """() => Object.fromEntries(
  ["#chapter-heading", "#chapter-picture-2", "#chapter-text", "#choices", "#choices button", "footer, main"]
    .map(s => [s, document.querySelector(s)]).filter(([, e]) => e)
    .map(([s, e]) => { const r = e.getBoundingClientRect(); return [s, [r.x, r.y, r.width, r.height]]; }))"""


pytestmark = pytest.mark.usefixtures("litellm_loaded")


@pytest.fixture
def settings(scripted_model, database_url) -> Settings:
    return picture_settings(scripted_model, database_url)


def _loaded_picture(page: Page, selector: str):
    img = page.locator(selector)
    img.wait_for()
    page.wait_for_function("s => { const i = document.querySelector(s); return i.complete && i.naturalWidth > 0; }",
                           arg=selector)
    return img


def test_when_javascript_is_on_then_the_picture_appears_in_its_slot_without_a_reload_and_nothing_moves(
    page, scripted_model
):
    scripted_model.script.update(image_latency=1.5)
    streams = []
    page.on("request", lambda request: streams.append(request.url) if request.url.endswith("/pictures") else None)
    start(page)
    page.evaluate("window.notReloaded = true")
    for option in (1, 2, 3):  # drawn while chapter 1 was written, they come after its choices
        _loaded_picture(page, f"#choices #option-picture-{option} img")
    choose_first(page, 1)
    slot = chapter(page, 2).locator('[data-image-chapter="2"]')
    assert slot.locator("img").count() == 0, "the picture was there before it could have been drawn"
    before = page.evaluate(BOXES)

    img = _loaded_picture(page, '#chapter-picture-2 img')

    assert page.evaluate("window.notReloaded === true"), "the page was reloaded to show the picture"
    assert img.get_attribute("alt").strip()
    after = page.evaluate(BOXES)
    assert after == before, f"the page moved when the picture came: {before} -> {after}"
    assert page.locator("[data-image-chapter] img").count() == 1
    assert page.locator('[data-image-chapter="1"]').count() == 0
    # One picture stream for the page, opened once it had loaded, went on to chapter 2.
    assert [url.rsplit("/adventures/", 1)[1].split("/", 1)[1] for url in streams] == ["chapters/1/pictures"], streams
    assert axe_violations(page) == []


def test_when_javascript_is_off_then_the_picture_is_there_at_the_next_load(page_without_javascript, scripted_model):
    page = page_without_javascript
    scripted_model.script.update(image_latency=1.0)
    start(page)
    assert page.locator('[data-image-chapter="1"] img').count() == 0
    for _ in range(100):
        page.reload()
        if page.locator('[data-image-chapter="1"] img').count():
            break
        page.wait_for_timeout(200)

    img = _loaded_picture(page, '[data-image-chapter="1"] img')
    assert img.get_attribute("alt").strip()
    assert page.locator("#choices .option-picture img").count() == 3
    choose_first(page, 1)  # the game goes on, pictures or not
