"""What streams is what is kept, against a real server: a chapter page streamed without
JavaScript gets its paragraphs as `<p>` elements as they form and ends exactly as the stored
chapter's page, and the text a chapter adds before and after the model's story streams as
chunks."""
from __future__ import annotations

import html
import time

import httpx
import pytest
from bs4 import BeautifulSoup

from service.domain.story import ChapterType
from tests.support import player
from tests.support.seeds import seed_with

WORLD, TOPIC = "brinelight-city", "human-body"
BLOCK = "\n\n<CHOICES>\nChoice A: Go on\nChoice B: Turn back\nChoice C: Wait here\n</CHOICES>"


def _stream_page(client: httpx.Client, url: str) -> tuple[str, list[tuple[float, str]]]:
    """The page as it arrived: the whole of it, and (when, all so far) at every piece."""
    so_far, arrivals = "", []
    with client.stream("GET", url) as response:
        assert response.status_code == 200, f"{url} answered {response.status_code}"
        for piece in response.iter_text():
            so_far += piece
            arrivals.append((time.monotonic(), so_far))
    return so_far, arrivals


def _inner(page_html: str, selector: str) -> str:
    element = BeautifulSoup(page_html, "html.parser").select_one(selector)
    assert element is not None, f"the page has no {selector}"
    return element.decode_contents()


def _paragraphs(page_html: str, selector: str) -> list[str]:
    return [" ".join(p.get_text().split()) for p in BeautifulSoup(page_html, "html.parser").select(f"{selector} p")]


def _normal(text: str) -> str:
    return " ".join(html.unescape(text).split())


def _chunk_text(result: player.SseResult) -> str:
    return _normal("".join(e.data for e in result.events if e.event == "chunk"))


def _final_text(result: player.SseResult) -> str:
    return _normal(BeautifulSoup(result.data("replace-content"), "html.parser").get_text(" "))


def test_when_a_chapter_page_streams_then_its_paragraphs_are_p_elements_before_the_model_has_finished(
    client, scripted_model
):
    """Regression: the streamed page joined escaped chunks with blank lines shown by
    `white-space: pre-wrap`, so screen readers got one block and no paragraph at all."""
    scripted_model.script.token_interval = 0.02
    url = player.start(client, WORLD, TOPIC)

    page, arrivals = _stream_page(client, url)

    model = next(r for r in scripted_model.requests if r["stream"])
    formed = next((at for at, so_far in arrivals if so_far.count("</p>\n<p>") >= 2), None)
    assert formed is not None and formed < model["last_chunk"], "paragraphs formed only after the model finished"
    assert _paragraphs(page, ".chapter-draft") == _paragraphs(page, "#chapter-text")
    stored = client.get(url).text
    assert _inner(page, "#chapter-text") == _inner(stored, "#chapter-text")
    assert _inner(page, "#choices") == _inner(stored, "#choices")


@pytest.mark.parametrize("script", [
    pytest.param({"repeat_loop": True}, id="a loop's first words, which the finished chapter drops"),
    pytest.param({"reply_override": BLOCK.strip()}, id="a sentence added when the model wrote no story"),
    pytest.param({"reply_override": "**Mira** ran to the *old* gate. She waved at the keeper.\n\n"
                                    "The keeper waved back." + BLOCK}, id="markdown"),
])
def test_when_the_finished_chapter_drops_or_adds_text_then_the_streamed_page_ends_as_the_stored_page(
    client, scripted_model, script
):
    scripted_model.script.update(token_interval=0.005, **script)
    url = player.start(client, WORLD, TOPIC)

    page, _ = _stream_page(client, url)
    stored = client.get(url).text

    assert _inner(page, "#chapter-text") == _inner(stored, "#chapter-text")
    assert _inner(page, "#choices") == _inner(stored, "#choices")
    draft = " ".join(_paragraphs(page, ".chapter-draft"))
    kept = " ".join(_paragraphs(stored, "#chapter-text"))
    if script.get("repeat_loop"):
        story = kept.partition(" A kind guide")[0]  # the first chapter's line on its gifts follows the story
        assert draft != kept and draft.startswith(story), "the loop's first words did not stream: nothing to drop"
    if "reply_override" in script and not script["reply_override"].startswith("**"):
        assert draft == kept, "the added sentence did not stream into the page"


def test_when_no_story_is_written_then_the_sentence_added_streams_as_a_chunk(client, scripted_model):
    """Regression: text added after the model's stream arrived only in `replace-content`."""
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
    scripted_model.script.reply_override = BLOCK.strip()

    result = player.read_sse(client, player.choose_htmx(client, page.action, page.choices[0]))

    assert "You pause for a moment" in _chunk_text(result)
    assert _chunk_text(result) == _final_text(result)
    assert result.names[-3:] == ["replace-content", "choices", "close"]


@pytest.mark.parametrize("adventure_seed", [seed_with(TOPIC, 2, ChapterType.LESSON)], ids=["lesson-second"])
def test_when_a_lesson_is_answered_then_the_next_chapter_streams_the_bank_feedback_first_and_keeps_it(
    client, scripted_model
):
    """The bank's feedback on an answer is text of the chapter like any other: the first
    chunk, before the model has written a word, and the finished chapter's first paragraph."""
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
    lesson = player.read_sse(client, player.choose_htmx(client, page.action, page.choices[0]))
    assert _chunk_text(lesson) == _final_text(lesson), "the page's text did not grow to the chapter's end"
    action, answers = player.choices_from_html(lesson.data("choices"))

    result = player.read_sse(client, player.choose_htmx(client, action, answers[0]))

    assert _chunk_text(result) == _final_text(result), "the page's text did not grow to the chapter's end"
    first = [e for e in result.events if e.event == "chunk"][0]
    assert _normal(first.data).startswith("Lesson check:"), f"chapter 3 opened with {first.data!r}"
    final = BeautifulSoup(result.data("replace-content"), "html.parser").select("p")
    assert "lesson-check" in final[0].get("class", [])
    assert _normal(first.data).startswith(_normal(final[0].get_text())), "the feedback streamed is not the one kept"
