"""Chapters streamed over htmx's SSE extension, as a screen reader user lives with them: the
text grows while the model writes, the story is busy until the choices arrive, a status line
speaks, then focus and the title move to the new chapter, and never any text twice."""
from __future__ import annotations

import re

from playwright.sync_api import Page, Route, expect

from tests.browser.adventure import chapter, choose_first, start, wait_until_written
from tests.support.database import wait_until

# Runs in every document from its first byte: one sample of the chapter every 40 ms.
SAMPLER = """
window.samples = [];
setInterval(() => {
  // The text grows in #chapter-text over SSE, or in the draft of a page streamed as HTML.
  const text = document.getElementById("chapter-text") || document.querySelector("#chapter .chapter-draft");
  const status = document.getElementById("chapter-status"), article = document.getElementById("chapter");
  const drafting = text && text.classList.contains("chapter-draft"), caret = text && getComputedStyle(text, "::after");
  if (text) samples.push({chapter: article.dataset.number, length: text.textContent.length,
                          // the final paragraphs came
                          replaced: !drafting && text.querySelector("p") !== null,
                          caret: caret.content === "none" ? null : caret.animationName,
                          busy: text.getAttribute("aria-busy"), status: status ? status.textContent : null});
}, 40);
"""


def _samples(page: Page, number: int) -> list[dict]:
    return [s for s in page.evaluate("samples") if s["chapter"] == str(number)]


def _assert_grew(samples: list[dict], number: int) -> None:
    lengths = [s["length"] for s in samples if not s["replaced"]]
    growing = sorted(set(lengths))
    assert len(growing) >= 4, f"chapter {number} did not grow while written; lengths seen: {lengths}"
    assert lengths == sorted(lengths), f"chapter {number} text shrank while written: {lengths}"
    carets = {s["caret"] for s in samples if s["caret"] is not None}
    assert carets == {"none"}, f"while chapter {number} was written its caret's animation was {carets}, not none"


def _assert_settled(page: Page, number: int) -> None:
    samples = _samples(page, number)
    _assert_grew(samples, number)
    busy = [s["busy"] for s in samples]
    assert busy[0] == "true" and busy[-1] == "false", f"aria-busy of chapter {number} went {busy[0]} -> {busy[-1]}"
    statuses = list(dict.fromkeys(s["status"] for s in samples))[-2:]
    assert statuses == [f"Writing chapter {number}…", f"Chapter {number} is ready."], f"status said {statuses}"
    focused = page.evaluate("document.activeElement.id")
    assert focused == "chapter-heading", f"focus is on #{focused}, not on the new chapter's heading"
    expect(page.locator("#chapter-heading")).to_have_text(f"Chapter {number}")
    expect(page).to_have_title(f"Chapter {number}: Brinelight, the City Beneath the Waves · Lanternpath")
    expect(chapter(page, number).locator("#choices").get_by_role("group").get_by_role("button"),
           f"chapter {number} offers no group of choice buttons").to_have_count(3)
    expect(page.locator("#chapter-text button, #chapter-text form")).to_have_count(0)


def test_when_three_chapters_stream_then_text_grows_and_busy_status_focus_and_title_follow(page, scripted_model):
    scripted_model.script.token_interval = 0.01
    page.emulate_media(reduced_motion="reduce")  # the writing caret shows, and stands still
    page.add_init_script(SAMPLER)
    start(page)
    _assert_grew(_samples(page, 1), 1)  # chapter 1 streams as progressive HTML
    for number in (2, 3):
        choose_first(page, number - 1)
        expect(page.locator("#chapter-heading")).to_be_focused()  # the choices came first
        # One more sample after that: the sampler runs every 40 ms, and on a busy machine its
        # last sample may come from before the choices arrived. (Polled from here: the page's
        # Content-Security-Policy refuses the eval a wait_for_function needs.)
        taken = page.evaluate("samples.length")
        wait_until(lambda taken=taken: page.evaluate("samples.length") > taken, 5, "the sampler took no more samples")
        _assert_settled(page, number)
        assert page.url.endswith(f"/chapters/{number}"), f"the address is {page.url} in chapter {number}"


def test_when_a_chapter_fails_over_sse_then_an_alert_offers_a_retry_that_writes_it(page, scripted_model):
    start(page)
    scripted_model.script.update(fail_status=500, fault_scope="stream")
    chapter(page, 1).get_by_role("button").first.click()

    retry = chapter(page, 2).get_by_role("alert").get_by_role("button", name="Write this chapter again")
    expect(retry, "the failed chapter offers no retry").to_be_visible()
    expect(page.locator("#chapter-text")).to_have_attribute("aria-busy", "false")
    expect(page.locator("#chapter-status")).to_have_text("")
    expect(page.locator("#chapter-heading")).to_be_focused()

    scripted_model.script.update(fail_status=None)
    retry.click()
    wait_until_written(page, 2)
    expect(page.locator("#chapter-status")).to_have_text("Chapter 2 is ready.")


def test_when_htmx_reopens_a_closed_stream_from_its_start_then_no_text_appears_twice(page, scripted_model):
    """htmx-ext-sse re-creates an EventSource that closed without sending Last-Event-ID."""
    start(page)
    scripted_model.script.token_interval = 0.01
    requests = []

    def first_drop_then_fail_then_pass(route: Route) -> None:
        requests.append(route.request.url)
        if len(requests) == 1:  # one chunk, then the connection ends: the browser reconnects
            route.fulfill(status=200, content_type="text/event-stream",
                          body="retry: 50\nid: 1\nevent: chunk\ndata: FIRST CONNECTION \n\n")
        elif len(requests) == 2:  # the browser's reconnect fails: the EventSource is CLOSED
            route.fulfill(status=503, body="")
        else:
            route.continue_()

    page.route(re.compile(r"/chapters/2/stream$"), first_drop_then_fail_then_pass)
    chapter(page, 1).get_by_role("button").first.click()
    # Polled from here: a predicate polled in the page would be eval, which the policy forbids.
    expect(page.locator('#chapter[data-number="2"] #chapter-text')).to_have_text(re.compile(r"[\s\S]{200}"))

    assert len(requests) >= 3, f"the stream was asked for {len(requests)} times, not reopened after it closed"
    text = page.locator("#chapter-text").text_content()
    assert "FIRST CONNECTION" not in text, f"text from the closed stream stayed: {text[:80]!r}"
    wait_until_written(page, 2)
