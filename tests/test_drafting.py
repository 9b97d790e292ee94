"""A chapter's draft against a real server: a reply that holds no story text is asked for
again before anything is shown, and a chapter that ends far too short is asked to go on."""
from __future__ import annotations

import html
import json

import pytest
from bs4 import BeautifulSoup

from service.llm.prompts import GO_ON
from tests.support import player
from tests.support.database import rows

WORLD, TOPIC = "clockwork-harbor", "plants"
SHORT = "Mira smiled at the old lantern."


def _second_chapter(client, scripted_model, replies: list[str]) -> tuple[player.SseResult, list[dict]]:
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
    before = len(scripted_model.requests)
    scripted_model.script.stream_replies = list(replies)
    result = player.read_sse(client, player.choose_htmx(client, page.action, page.choices[0]))
    return result, [r for r in scripted_model.requests[before:] if r["stream"]]


def _shown(result: player.SseResult) -> str:
    return html.unescape("".join(e.data for e in result.events if e.event == "chunk"))


def _paragraphs(result: player.SseResult) -> list[str]:
    return [p.get_text() for p in BeautifulSoup(result.data("replace-content"), "html.parser").select("p")]


@pytest.mark.parametrize("blank", [
    "<CHOICES>\nChoice A: Go on\nChoice B: Turn back\nChoice C: Wait here\n</CHOICES>",
    "# Chapter 2: The Harbor\n",
    "LESSON TOPIC: Plants\nSTORY PHASE: Rising Action\n",
], ids=["only-a-choices-block", "only-a-heading", "only-prompt-lines"])
def test_when_a_reply_holds_no_story_text_then_it_is_asked_again_before_anything_is_shown(
    client, scripted_model, blank
):
    result, streamed = _second_chapter(client, scripted_model, [blank])

    assert len(streamed) == 2, "the blank reply was not asked for again"
    story = streamed[1]["reply"].split("<CHOICES>")[0].split()
    assert _shown(result).split() == story[: len(_shown(result).split())] and _shown(result).strip()
    assert " ".join(_paragraphs(result)).split()[: len(story)] == story
    assert result.names[-3:] == ["replace-content", "choices", "close"]


def test_when_a_chapter_ends_far_too_short_then_the_model_is_asked_to_go_on(client, scripted_model, database_url):
    result, streamed = _second_chapter(client, scripted_model, [SHORT])

    assert len(streamed) == 2, "the short chapter was not continued"
    asked = streamed[1]["messages"]
    assert asked[-2] == {"role": "assistant", "content": SHORT} and asked[-1]["content"] == GO_ON
    shown = _shown(result)
    assert shown.startswith(SHORT) and len(shown.split()) > 60
    assert _paragraphs(result)[0] == SHORT
    words = sum(len(p.split()) for p in _paragraphs(result))
    assert words > 60
    quality = json.loads(rows(database_url, "SELECT quality FROM chapters WHERE number = 2")[0][0])
    assert quality["first_text_seconds"] is not None


def test_when_a_chapter_is_long_enough_then_the_model_is_asked_once(client, scripted_model):
    _, streamed = _second_chapter(client, scripted_model, [])
    assert len(streamed) == 1


LOOPING = ("Mira smiled at the old lantern. The gulls cried over the wall. Mira smiled at the old lantern. "
           "Mira smiled at the old lantern. Mira smiled at the old lantern. Mira smiled at the old lantern.")


def test_when_a_loop_cuts_a_chapter_far_too_short_then_it_goes_on_from_the_text_kept(client, scripted_model):
    """Regression: a loop caught early left a chapter of a few dozen words, and only a chapter
    the model ended itself was asked to go on."""
    result, streamed = _second_chapter(client, scripted_model, [LOOPING])

    assert len(streamed) == 2, "the chapter cut short was not continued"
    kept = streamed[1]["messages"][-2]["content"]
    assert kept.startswith("Mira smiled at the old lantern. The gulls cried over the wall.")
    assert kept.count("Mira smiled") < LOOPING.count("Mira smiled"), "the loop was asked to go on"
    paragraphs = _paragraphs(result)
    assert " ".join(paragraphs).startswith(kept.strip()) and sum(len(p.split()) for p in paragraphs) > 60
    # Of the loop no more than its first few words streamed, and of what was kept nothing twice.
    shown = _shown(result)
    assert shown.count("old lantern.") == kept.count("old lantern."), shown


def test_when_the_first_chapter_does_not_name_its_gifts_then_its_last_paragraph_offers_them(client, scripted_model):
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
    paragraphs = [p.get_text() for p in BeautifulSoup(page.html, "html.parser").select("#chapter-text p")]

    assert paragraphs[-1].startswith("A kind guide smiles and holds out three gifts: ")
    for choice in page.choices:  # each button is a gift the page just offered
        assert choice.split(":")[0] in paragraphs[-1]
