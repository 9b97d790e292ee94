"""The game with the keyboard alone: Tab, Enter and Space, with the focus always visible."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.adventure import chapter, wait_until_written


def _tab_to(page: Page, name: str, limit: int = 30) -> None:
    """Press Tab until the focused element's accessible text starts with `name`."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate("(e => (e.labels?.length ? e.labels[0] : e).innerText)(document.activeElement)")
        if focused.strip().startswith(name):
            outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
            assert outline != "none", f"{name!r} has the focus but shows no focus outline"
            return
    raise AssertionError(f"{limit} presses of Tab never reached {name!r}")


def _focused_id(page: Page) -> str:
    return page.evaluate("document.activeElement.id")


def test_when_only_the_keyboard_is_used_then_an_adventure_starts_and_two_chapters_are_chosen(page):
    page.goto("/")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to the main content")).to_be_focused()
    page.keyboard.press("Enter")
    assert _focused_id(page) == "main", "the skip link did not move the focus to the main content"
    _tab_to(page, "Brinelight")  # the checked world
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("radio", name="Capwood Hollow")).to_be_checked()
    _tab_to(page, "Begin the adventure")
    page.keyboard.press("Enter")
    wait_until_written(page, 1)

    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the skip link again, on the new page
    buttons = chapter(page, 1).locator("#choices button")
    page.keyboard.press("Tab")
    expect(buttons.first, "Tab from the main content does not reach the first choice").to_be_focused()
    page.keyboard.press("Space")
    for number in (2, 3):
        wait_until_written(page, number)
        expect(page.locator("#chapter-heading")).to_be_focused()
        page.keyboard.press("Tab")
        expect(chapter(page, number).locator("#choices button").first,
               f"Tab from chapter {number}'s heading does not reach its first choice").to_be_focused()
        page.keyboard.press("Enter" if number == 2 else "Space")
    wait_until_written(page, 4)
