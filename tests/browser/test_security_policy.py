"""The Content-Security-Policy holds the page's own scripts: playing chapters with JavaScript
(htmx swaps, its SSE extension, lanternpath.js) reports no violation, and the policy is the
one the server sends."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.adventure import choose_first, start

# Runs in every document from its first byte: every violation the browser reports.
VIOLATIONS = """
window.violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.violations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${where}`);
});
"""


def test_when_chapters_are_played_with_javascript_then_no_content_security_policy_violation_is_reported(
    page: Page, scripted_model
):
    console = []
    page.on("console", lambda message: console.append(message.text))
    page.add_init_script(VIOLATIONS)
    scripted_model.script.token_interval = 0.005
    start(page)
    for number in (1, 2):
        choose_first(page, number)
        expect(page.locator(f'#chapter[data-number="{number + 1}"] #chapter-text p').first).to_be_visible()
    page.goto(page.url.rsplit("/chapters/", 1)[0] + "/summary")

    assert page.evaluate("violations") == [], "the page broke its own Content-Security-Policy"
    assert not [m for m in console if "Content Security Policy" in m], console
    assert page.evaluate("window.htmx.config.includeIndicatorStyles") is False
    assert page.evaluate("document.querySelectorAll('style').length") == 0
