"""Quality without blocking, end to end: the stream shows the same paragraphs as the
finished chapter, a looping model is cut off before the loop shows (but for its first few
words, which the finished chapter drops), and lesson chapters ask their question word for
word."""
from __future__ import annotations

import html
import json

from bs4 import BeautifulSoup

from service.domain.paragraphs import split_sentences
from service.web.render import DEFAULT_LEGEND
from tests.support import player
from tests.support.database import rows

WORLD, TOPIC = "brinelight-city", "human-body"


def _chapter_two(client, model, **script) -> player.SseResult:
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
    model.script.update(**script)
    return player.read_sse(client, player.choose_htmx(client, page.action, page.choices[0]))


def _final_paragraphs(result: player.SseResult) -> list[str]:
    soup = BeautifulSoup(result.data("replace-content"), "html.parser")
    return [p.get_text() for p in soup.select("p")]


def test_when_a_chapter_streams_then_its_paragraphs_are_those_of_the_finished_chapter(client, scripted_model):
    long_run = " ".join(f"Mira counted the lanterns on bridge number {n}." for n in range(40))
    result = _chapter_two(client, scripted_model, reply_override=long_run + "\n\n<CHOICES>\nChoice A: Go on\n"
                          "Choice B: Turn back\nChoice C: Wait here\n</CHOICES>")

    streamed = html.unescape("".join(e.data for e in result.events if e.event == "chunk"))
    shown = [p.strip() for p in streamed.split("\n\n") if p.strip()]
    final = _final_paragraphs(result)
    assert len(shown) > 2, "a long run was not broken into paragraphs while it streamed"
    assert final[: len(shown)] == shown
    assert len(final) - len(shown) <= 1, "more than a lesson question was added after the stream"


def test_when_the_model_loops_then_the_loop_never_reaches_the_page(client, scripted_model, database_url):
    result = _chapter_two(client, scripted_model, repeat_loop=True, token_interval=0.002)

    streamed = html.unescape("".join(e.data for e in result.events if e.event == "chunk"))
    sentences = [s.strip() for s in split_sentences(" ".join(streamed.split())) if len(s.split()) >= 5]
    assert len(sentences) == len(set(sentences)), "a sentence was shown twice"
    # The first words of the repeat may have streamed; the finished chapter replaces them.
    # What the chapter adds after its story (a lesson chapter's question) streams after them.
    kept, *added = _final_paragraphs(result)
    story, *streamed_added = streamed.split("\n\n")
    assert kept == "Mira walked on and the path went on and on.", f"the chapter kept {kept!r}"
    assert story.split()[:len(kept.split())] == kept.split()
    assert len(story.split()) - len(kept.split()) <= 4, f"streamed past the loop's start: {streamed!r}"
    assert [" ".join(p.split()) for p in streamed_added] == added
    assert result.names[-3:] == ["replace-content", "choices", "close"]
    assert len(player.choices_from_html(result.data("choices"))[1]) == 3
    quality = json.loads(rows(database_url, "SELECT quality FROM chapters WHERE number = 2")[0][0])
    assert quality["stopped"] == "repeated sentence"


def test_when_a_lesson_chapter_paraphrases_its_question_then_the_chapter_ends_with_it_verbatim(
    client, scripted_model
):
    url = player.start(client, WORLD, TOPIC)
    page = player.read_chapter(client, url)
    scripted_model.script.reply_override = "Mira asked you something about the body, but nobody heard it."
    while True:
        result = player.read_sse(client, player.choose_htmx(client, page.action, page.choices[0]))
        action, choices = player.choices_from_html(result.data("choices"))
        legend = BeautifulSoup(result.data("choices"), "html.parser").select_one("legend")
        question = legend.get_text() if legend is not None else ""
        if legend is not None and question != DEFAULT_LEGEND:
            break
        page = player.ChapterPage(page.url, "", choices, action, None, "")
    assert _final_paragraphs(result)[-1] == question


def test_when_choices_are_missing_and_the_repair_fails_then_fallback_choices_are_offered(
    client, scripted_model, database_url
):
    result = _chapter_two(client, scripted_model, choices_style="missing", fail_status=500, fault_scope="helper")
    chapter_type = rows(database_url, "SELECT type FROM chapters WHERE number = 2")[0][0]
    choices = player.choices_from_html(result.data("choices"))[1]

    assert len(set(choices)) == 3
    if chapter_type in ("STORY", "REFLECT"):
        quality = json.loads(rows(database_url, "SELECT quality FROM chapters WHERE number = 2")[0][0])
        assert quality["choices"] == "fallback"
