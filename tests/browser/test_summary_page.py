"""The summary page with JavaScript: summaries still being written fill in by themselves, and
the note that says they are being written goes once the last one is there."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.adventure import start


def test_when_the_last_pending_summary_arrives_then_the_still_being_written_note_goes(
    page: Page, server, scripted_model
):
    """Regression: the summaries filled in, and "still being written… Refresh" stayed above them."""
    scripted_model.script.helper_latency = 1.5
    start(page)
    page.goto(page.url.rsplit("/chapters/", 1)[0] + "/summary")
    note = page.locator("#summaries-pending")
    expect(note, "the page does not say that a summary is being written").to_be_visible()

    item = page.locator('[data-chapter="1"]')
    expect(item).not_to_have_attribute("sse-swap", "summary-1", timeout=15_000)
    expect(note).to_have_count(0)
