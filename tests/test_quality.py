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


def _to_first_lesson(client, scripted_model, reply: str) -> player.SseResult:
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
    scripted_model.script.reply_override = reply
    while True:
        result = player.read_sse(client, player.choose_htmx(client, page.action, page.choices[0]))
        action, choices = player.choices_from_html(result.data("choices"))
        legend = BeautifulSoup(result.data("choices"), "html.parser").select_one("legend")
        if legend is not None and legend.get_text() != DEFAULT_LEGEND:
            return result
        page = player.ChapterPage(page.url, "", choices, action, None, "")


def _question_shown(result: player.SseResult) -> tuple[str, list[str], bool]:
    """The lesson question, every place it shows, and whether its legend is for screen readers only."""
    legend = BeautifulSoup(result.data("choices"), "html.parser").select_one("fieldset > legend")
    question = legend.get_text()
    places = [p for p in _final_paragraphs(result) if question in p]
    return question, places, "visually-hidden" in (legend.get("class") or [])


def test_when_a_lesson_chapter_paraphrases_its_question_then_it_shows_once_as_the_legend_of_its_answers(
    client, scripted_model
):
    result = _to_first_lesson(client, scripted_model, "Mira asked you something about the body, but nobody heard it.")

    question, in_text, hidden = _question_shown(result)
    assert in_text == [] and not hidden, "the question is not shown once, over its answers"
    streamed = html.unescape("".join(e.data for e in result.events if e.event == "chunk"))
    assert question not in streamed


def test_when_a_lesson_chapter_asks_its_question_then_its_legend_is_for_screen_readers_only(client, scripted_model):
    result = _to_first_lesson(client, scripted_model, None)  # the scripted model asks it word for word

    question, in_text, hidden = _question_shown(result)
    assert len(in_text) == 1 and in_text[0].endswith(question) and hidden


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


def test_when_a_chapter_says_choice_in_brackets_then_it_is_kept_whole_and_its_real_block_is_hidden(
    client, scripted_model
):
    story = ("Mira thought hard about her [choice] for a while. Then she weighed her <choice> again, "
             "smiled, and walked on toward the lighthouse where the keeper was waiting with tea.")
    result = _chapter_two(client, scripted_model, reply_override=story + "\n\n<CHOICES>\nChoice A: Go on\n"
                          "Choice B: Turn back\nChoice C: Wait here\n</CHOICES>")

    streamed = html.unescape("".join(e.data for e in result.events if e.event == "chunk"))
    # A LESSON chapter may add its question after the story: the story itself is whole.
    assert " ".join(_final_paragraphs(result)).startswith(story)
    assert streamed.strip() == story, f"the chapter streamed {streamed!r}"
