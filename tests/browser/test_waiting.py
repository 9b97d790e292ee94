"""Past the cap on chapters written at once, the page says the chapter waits for a storyteller,
until its first text arrives: with JavaScript (htmx) and without (progressive HTML, the
stylesheet hides the note)."""
from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from service.config import Settings
from tests.browser.adventure import TOPIC, WORLD, chapter, start, wait_until_written
from tests.conftest import scripted_settings
from tests.support.database import wait_until

WAITING = "Waiting for a storyteller"


@pytest.fixture
def settings(scripted_model, database_url) -> Settings:
    return scripted_settings(scripted_model, database_url, max_concurrent_chapters=1)


def _another_player_holds_the_storyteller(server, model) -> None:
    model.script.update(stall_before_first=True, stall_seconds=2.5, fail_times=1, fault_scope="stream")
    asked = sum(1 for r in list(model.requests) if r["stream"])
    httpx.post(server.base_url + "/", data={"story_category": "skyshelf-library", "lesson_topic": "plants"})
    wait_until(lambda: sum(1 for r in list(model.requests) if r["stream"]) > asked, 10, "no chapter was held")


def _assert_waits_then_streams(page: Page, number: int) -> None:
    note = chapter(page, number).get_by_text(WAITING)
    expect(note, f"chapter {number} does not say it waits").to_be_visible()
    wait_until_written(page, number)
    expect(note).to_be_hidden()
    expect(chapter(page, number).locator("#chapter-text")).not_to_contain_text(WAITING)


def test_when_every_storyteller_is_busy_without_javascript_then_the_note_shows_until_the_text_comes(
    page_without_javascript: Page, server, scripted_model
):
    page = page_without_javascript
    _another_player_holds_the_storyteller(server, scripted_model)
    page.goto("/")
    page.get_by_role("radio", name=WORLD).check()
    page.get_by_role("radio", name=TOPIC).check()
    page.get_by_role("button", name="Begin the adventure").click()
    _assert_waits_then_streams(page, 1)


def test_when_every_storyteller_is_busy_with_javascript_then_the_note_and_status_show_until_the_text_comes(
    page: Page, server, scripted_model
):
    start(page)
    _another_player_holds_the_storyteller(server, scripted_model)
    chapter(page, 1).get_by_role("button").first.click()
    expect(page.locator("#chapter-status")).to_have_text(f"{WAITING}…")
    _assert_waits_then_streams(page, 2)
    expect(page.locator("#chapter-status")).to_have_text("Chapter 2 is ready.")
