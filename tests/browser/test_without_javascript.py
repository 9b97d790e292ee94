"""The whole game with JavaScript switched off: plain forms, links and progressive HTML."""
from __future__ import annotations

import time

from playwright.sync_api import expect

from tests.browser.adventure import (
    TOPIC,
    WORLD,
    chapter,
    choose_first,
    play_to_summary,
    start,
    story_paragraphs_read_aloud,
    wait_until_written,
)


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


def test_when_a_chapter_streams_without_javascript_then_the_accessibility_tree_has_its_paragraphs_as_they_form(
    page_without_javascript, scripted_model
):
    """Regression: the streamed page was one block of text with blank lines, no paragraphs."""
    page = page_without_javascript
    scripted_model.script.update(token_interval=0.03)
    page.goto("/")
    page.get_by_role("radio", name=WORLD).check()
    page.get_by_role("radio", name=TOPIC).check()
    page.get_by_role("button", name="Begin the adventure").click(no_wait_after=True)

    while_streaming = []
    deadline = time.monotonic() + 20
    while len(while_streaming) < 2 and time.monotonic() < deadline:
        read_aloud = story_paragraphs_read_aloud(page)
        if page.locator("#chapter-text").count() == 0:  # the finished chapter has not come yet
            while_streaming = read_aloud
        time.sleep(0.05)
    assert len(while_streaming) >= 2, f"while the chapter streamed a screen reader got {while_streaming}"

    wait_until_written(page, 1)
    finished = [" ".join(p.split()) for p in page.locator("#chapter-text p").all_inner_texts()]
    assert story_paragraphs_read_aloud(page) == finished, "the finished page reads differently from its chapter"
    *whole, last = while_streaming
    assert whole == finished[:len(whole)], "a paragraph read while streaming is not one of the chapter's"
    assert finished[len(whole)].startswith(last), "the paragraph being written is not the chapter's next one"
