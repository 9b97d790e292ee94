"""Every kind of page, as a screen reader and axe-core see it: zero axe violations, and an
accessibility tree with the page's heading, its question as a named group, and buttons."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from service.domain.story import ChapterType
from tests.browser.adventure import (
    TOPIC_KEY,
    axe_violations,
    chapter,
    play_to_chapter_two,
    play_to_summary_over_http,
    start,
)
from tests.support.seeds import seed_with


@pytest.fixture
def adventure_seed() -> int:
    # Chapter 2 is a lesson: the lesson chapter's page is one choice away.
    return seed_with(TOPIC_KEY, 2, ChapterType.LESSON)


def _start_page(page: Page, model) -> None:
    page.goto("/")


def _story_chapter(page: Page, model) -> None:
    start(page)  # chapter 1 is always a STORY chapter


def _lesson_chapter(page: Page, model) -> None:
    play_to_chapter_two(page)


def _summary(page: Page, model) -> None:
    play_to_summary_over_http(page)


def _not_found(page: Page, model) -> None:
    assert page.goto("/adventures/nowhere").status == 404


def _chapter_error(page: Page, model) -> None:
    start(page)
    model.script.update(fail_status=500, fault_scope="stream")
    chapter(page, 1).get_by_role("button").first.click()
    expect(chapter(page, 2).get_by_role("alert")).to_be_visible()


def _failed_chapter_page(page: Page, model) -> None:
    _chapter_error(page, model)
    page.reload()
    expect(page.get_by_role("alert")).to_be_visible()


VISITS = {"start": _start_page, "story chapter": _story_chapter, "lesson chapter": _lesson_chapter,
          "summary": _summary, "not found": _not_found, "chapter error": _chapter_error,
          "failed chapter page": _failed_chapter_page}

EXPECTED_TREE = {
    "start": """
- heading "Start an adventure" [level=1]
- group "Choose a story world":
  - radio
- group "Choose a lesson topic":
  - radio
- button "Begin the adventure"
""",
    "story chapter": """
- heading "Chapter 1" [level=1]
- group "What do you do next?":
  - button
  - button
  - button
""",
    "lesson chapter": """
- heading "Chapter 2" [level=1]
- group /\\?$/:
  - button
  - button
  - button
""",
    "summary": """
- heading /Your journey through/ [level=1]
- region "The chapters":
  - list:
    - listitem:
      - heading [level=3]
- region "The lessons":
  - list:
    - listitem
- paragraph:
  - link "Start a new adventure"
""",
    "not found": """
- heading "Not found" [level=1]
- paragraph:
  - link "Back to the start page"
""",
    "chapter error": """
- heading "Chapter 2" [level=1]
- alert:
  - button "Write this chapter again"
""",
}
EXPECTED_TREE["failed chapter page"] = EXPECTED_TREE["chapter error"]


@pytest.mark.parametrize("kind", VISITS)
def test_when_each_kind_of_page_is_checked_then_axe_finds_nothing_and_its_tree_has_heading_group_buttons(
        page, scripted_model, kind):
    VISITS[kind](page, scripted_model)

    violations = axe_violations(page)

    assert violations == [], f"axe found problems on the {kind} page:\n" + "\n".join(violations)
    expect(page.locator("body"), f"the {kind} page lacks the skip link or the banner").to_match_aria_snapshot("""
- link "Skip to the main content"
- banner:
  - link "Lanternpath"
  - group: Text size and contrast
""")
    expect(page.get_by_role("main"), f"the {kind} page's main content reads wrong").to_match_aria_snapshot(
        EXPECTED_TREE[kind])


def test_when_high_contrast_and_the_largest_text_are_chosen_then_axe_still_finds_no_violation(page, server):
    page.context.add_cookies([{"name": "lanternpath_text_size", "value": "larger", "url": server.base_url},
                              {"name": "lanternpath_contrast", "value": "high", "url": server.base_url}])
    start(page)

    assert page.evaluate("document.documentElement.className") == "text-larger contrast-high"
    violations = axe_violations(page)
    assert violations == [], "axe found problems with high contrast:\n" + "\n".join(violations)
