"""The whole game with JavaScript switched off: plain forms, links and progressive HTML."""
from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.adventure import chapter, choose_first, play_to_summary, start


def test_when_javascript_is_off_then_buttons_alone_play_ten_chapters_to_the_summary(page_without_javascript):
    page = page_without_javascript

    play_to_summary(page)

    assert page.evaluate("typeof htmx") == "undefined", "htmx ran although JavaScript was switched off"
    chapters = page.locator("[data-chapter]")
    expect(chapters, "the summary does not list the ten chapters").to_have_count(10)
    expect(page.locator("[data-question]"), "the summary does not list the three questions").to_have_count(3)


def test_when_a_chapter_fails_without_javascript_then_its_retry_button_writes_it(page_without_javascript,
                                                                                 scripted_model):
    page = page_without_javascript
    start(page)
    scripted_model.script.update(fail_status=500, fault_scope="stream")
    chapter(page, 1).get_by_role("button").first.click()
    alert = chapter(page, 2).get_by_role("alert")
    expect(alert, "a failed chapter shows no error message").to_be_visible()

    scripted_model.script.update(fail_status=None)
    alert.get_by_role("button", name="Write this chapter again").click()

    expect(chapter(page, 2).locator("#choices").get_by_role("button"), "the retried chapter offers no choices"
           ).to_have_count(3)
    choose_first(page, 2)
