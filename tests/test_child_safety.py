"""What reaches a child, against a real server and a scripted model that writes what no
story for 8 to 12 year olds may hold: in prose, split across tokens, in a choice, in a
summary and in a character description. Nothing of it reaches an SSE event, a page or the
summary page, and the chapter still goes on to its choices."""
from __future__ import annotations

import html

import pytest

from service.config import Settings
from tests.conftest import scripted_settings
from tests.support import player
from tests.support.database import rows, wait_until

WORLD, TOPIC = "amber-dune-caravan", "animals-and-habitats"
BEFORE = "The caravan stopped beside a dune that sang in the wind."
AFTER = "Mira pointed at a line of footprints that led toward the oasis."
BLOCK = ("\n\n<CHOICES>\nChoice A: Follow the footprints\nChoice B: Climb the singing dune\n"
         "Choice C: Ask the camel driver\n</CHOICES>")
UNFIT = {
    "profanity": ("What the fuck is that noise, the driver shouted.", "fuck"),
    "gore": ("Blood gushed from the wound on his arm.", "gushed"),
    "self-harm": ("The old guard thought about suicide every night.", "suicide"),
    "sexual": ("The sailor stared at her naked body.", "naked"),
    "alcohol": ("The captain drank a whole bottle of whisky.", "whisky"),
    "drugs": ("He lit a cigarette and blew smoke at the moon.", "cigarette"),
    "hate": ("Get away from me, you filthy faggot.", "faggot"),
    "instructions": ("LESSON QUESTION: What is a mammal?", "lesson question"),
}


@pytest.fixture
def settings(scripted_model, database_url) -> Settings:
    return scripted_settings(scripted_model, database_url, job_backoff_seconds=0.2)


def _seen(text: str) -> str:
    return " ".join(html.unescape(text).casefold().split())


def _second_chapter(client) -> tuple[str, player.SseResult]:
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
    stream = player.choose_htmx(client, page.action, page.choices[0])
    return stream, player.read_sse(client, stream)


@pytest.mark.parametrize("category", list(UNFIT))
@pytest.mark.parametrize("chunking", [{"tokens_per_chunk": 1}, {"chunk_chars": 2}], ids=["words", "split-words"])
def test_when_the_model_writes_unfit_prose_then_no_event_or_page_shows_it_and_the_chapter_has_its_choices(
    client, scripted_model, category, chunking
):
    sentence, term = UNFIT[category]
    scripted_model.script.update(reply_override=f"{BEFORE} {sentence} {AFTER}{BLOCK}", **chunking)

    stream, result = _second_chapter(client)

    for event in result.events:
        assert term not in _seen(event.data), f"{term!r} reached a {event.event} event"
    assert result.names[-3:] == ["replace-content", "choices", "close"]
    assert _seen(BEFORE) in _seen(result.data("replace-content"))
    assert _seen(AFTER) in _seen(result.data("replace-content"))
    assert len(player.choices_from_html(result.data("choices"))[1]) == 3
    page = player.read_chapter(client, stream.removesuffix("/stream"))
    assert term not in _seen(page.html) and len(page.choices) == 3


def test_when_a_choice_the_model_writes_is_unfit_then_no_button_carries_it(client, scripted_model):
    block = BLOCK.replace("Climb the singing dune", "Share a cold beer with the driver")
    scripted_model.script.update(reply_override=f"{BEFORE} {AFTER}{block}")

    stream, result = _second_chapter(client)

    buttons = player.choices_from_html(result.data("choices"))[1]
    assert len(buttons) == 3 and not any("beer" in b.casefold() for b in buttons), buttons
    assert "beer" not in _seen(player.read_chapter(client, stream.removesuffix("/stream")).html)


def test_when_a_summary_holds_unfit_sentences_then_the_summary_page_shows_the_rest(client, scripted_model):
    summary = ("Title: The Singing Dune\nSummary: Mira and the reader followed the caravan across the sand. "
               "The driver drank beer until he was drunk. They found footprints that led toward a green oasis "
               "where a tired camel rested in the shade, and they decided to follow the trail together at dawn. "
               "LESSON TOPIC: Animals and Habitats.")
    scripted_model.script.update(helper_replies={"SUMMARY": summary})
    url = player.start(client, WORLD, TOPIC)
    player.read_chapter(client, url)
    adventure = url.split("/")[2]

    page = wait_until(lambda: (p := client.get(f"/adventures/{adventure}/summary").text) and "oasis" in p and p,
                      15, "the chapter's summary never showed")

    assert "beer" not in _seen(page) and "drunk" not in _seen(page) and "lesson topic" not in _seen(page)
    assert "singing dune" in _seen(page)


def test_when_a_character_description_is_unfit_then_it_is_never_stored_nor_sent_to_the_model(
    client, scripted_model, database_url
):
    scripted_model.script.update(helper_replies={"CHARACTERS": (
        '[{"name": "Mira", "description": "A girl who smokes cigarettes. She carries a brass lantern."},'
        ' {"name": "Shithead", "description": "A rude trader."}]')})
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))

    stored = wait_until(lambda: rows(database_url, "SELECT name, description FROM characters"), 15,
                        "no character was stored")
    assert stored == [("Mira", "She carries a brass lantern.")]
    player.read_sse(client, player.choose_htmx(client, page.action, page.choices[0]))
    prompt = str([r["messages"] for r in scripted_model.requests if r["stream"]][-1])
    assert "cigarette" not in prompt.casefold() and "shithead" not in prompt.casefold()
