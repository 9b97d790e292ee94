"""Helper replies are read leniently but capped: a title, a summary, a character's name and
description never grow past their caps in words or characters, whatever the model sends."""
from __future__ import annotations

import json

import pytest
from bs4 import BeautifulSoup
from hypothesis import given
from hypothesis import strategies as st

from service.domain.choices import valid_choices
from service.domain.summaries import (
    CHARACTER_DESCRIPTION,
    MAX_WORD_CHARS,
    SUMMARY,
    TITLE,
    capped,
    extract_summary,
    parse_characters,
    parse_summary,
)
from tests.support import player
from tests.support.database import rows, wait_until

STORY = " ".join(["Mira and Tomas crossed the dunes to find the hidden well of the caravan."] * 4)
HUGE_WORD = "a" * 200_000


def _longest_word(text: str) -> int:
    return max(map(len, text.split()), default=0)


@pytest.mark.parametrize("title, expected", [
    (f"The {HUGE_WORD} dunes", "The dunes"),
    (" ".join(["Sand"] * 5_000), " ".join(["Sand"] * TITLE.words) + "…"),
    ("Sandy " * 12 + "x" * 80, " ".join(["Sandy"] * TITLE.words) + "…"),
])
def test_when_a_summary_reply_has_a_huge_title_then_the_parsed_title_is_within_its_caps(title, expected):
    parsed_title, _ = parse_summary(f"Title: {title}\nSummary: {STORY}")

    assert parsed_title == expected
    assert len(parsed_title) <= TITLE.chars


@pytest.mark.parametrize("title, expected", [
    ("The stars are so happy and they", "The stars are so happy"),
    ("The lamp that you can't", "The lamp"),
])
def test_when_a_title_stops_in_the_middle_of_a_phrase_then_the_words_it_was_cut_after_go(title, expected):
    """Regression: the embedded model's titles, cut where its grammar's cap fell, reached the
    summary page as "The stars are so happy and they"."""
    assert parse_summary(f"Title: {title}\nSummary: {STORY}")[0] == expected


def test_when_a_title_is_one_huge_word_then_the_reply_is_unusable_and_an_extract_stands_in():
    assert parse_summary(f"Title: {'T' * 30_000}\nSummary: {STORY}") is None


@pytest.mark.parametrize("summary", [f"{STORY} {HUGE_WORD} {STORY}", " ".join([STORY] * 500), STORY + "x" * 50_000])
def test_when_a_summary_reply_is_huge_then_the_parsed_summary_is_within_its_caps(summary):
    title, text = parse_summary(f"Title: The well\nSummary: {summary}")

    assert title == "The well"
    assert len(text) <= SUMMARY.chars and len(text.split()) <= SUMMARY.words + 1
    assert _longest_word(text) <= MAX_WORD_CHARS + 1  # "…" may follow the last word


def test_when_a_chapter_holds_a_huge_word_then_its_extract_is_within_the_caps():
    title, text = extract_summary(f"{HUGE_WORD} {STORY}", 3)

    assert len(title) <= TITLE.chars and len(text) <= SUMMARY.chars
    assert HUGE_WORD[:100] not in title + text


def test_when_characters_are_huge_then_they_are_dropped_or_capped():
    reply = json.dumps([
        {"name": "N" * 30_000, "description": "A tall guide."},
        {"name": "Mira", "description": f"A brave {HUGE_WORD} girl. " + "She laughs. " * 5_000},
        {"name": " ".join(["Tomas"] * 50), "description": "A friend."},
    ])
    characters = parse_characters(reply)

    assert list(characters) == ["Mira"]
    assert len(characters["Mira"]) <= CHARACTER_DESCRIPTION.chars and HUGE_WORD[:100] not in characters["Mira"]


@given(st.text(max_size=400), st.integers(1, 30), st.integers(2, 200))
def test_when_any_text_is_capped_then_it_is_within_the_cap_and_keeps_whole_words(text, words, chars):
    from service.domain.summaries import Cap

    out = capped(text, Cap(words, chars))
    kept = out.removesuffix("…").split()
    assert len(out) <= chars and len(kept) <= words
    assert all(word in text.split() and len(word) <= MAX_WORD_CHARS for word in kept)


@pytest.mark.parametrize("label", ["Go " + "o" * 200_000, "Run " * 60, "Follow " + "M" * 31])
def test_when_a_model_choice_is_over_its_caps_then_it_is_not_usable(label):
    assert valid_choices(["Follow Mira", label, "Ask the guide"]) is None


def test_when_the_helper_model_sends_a_huge_title_and_word_then_the_summary_page_stays_small(
    client, scripted_model, database_url
):
    scripted_model.script.update(
        helper_replies={"SUMMARY": f"Title: {'T' * 30_000} well\nSummary: {HUGE_WORD} {STORY}"})
    url = player.start(client, "amber-dune-caravan", "animals-and-habitats")
    player.read_chapter(client, url)
    wait_until(lambda: rows(database_url, "SELECT count(*) FROM summaries")[0][0] == 1, 30, "no summary was stored")

    title, summary = rows(database_url, "SELECT title, summary FROM summaries")[0]
    page = client.get(url.rsplit("/chapters/", 1)[0] + "/summary")
    item = BeautifulSoup(page.text, "html.parser").select_one('[data-chapter="1"]')
    assert len(title) <= TITLE.chars and len(summary) <= SUMMARY.chars
    assert len(page.text) < 20_000 and _longest_word(item.get_text(" ")) <= MAX_WORD_CHARS + 1


@pytest.mark.parametrize("reply", [
    '{"title": "The Mirror Oasis", "summary": "You walked to the oasis with Tomo. A little boat floated there."}',
    "Title: The Mirror Oasis\nSummary: You walked to the oasis with Tomo. A little boat floated there.",
    '```json\n{"title": "The Mirror Oasis", "summary": "You walked to the oasis with Tomo. A little boat '
    'floated there."}\n```',
], ids=["json", "plain", "fenced-json"])
def test_when_a_summary_reply_is_json_or_plain_then_it_is_read_and_a_short_good_summary_counts(reply):
    assert parse_summary(reply) == ("The Mirror Oasis",
                                    "You walked to the oasis with Tomo. A little boat floated there.")


def test_when_an_extract_stands_in_then_it_reads_as_a_summary():
    chapter = ("LESSON TOPIC: Plants. You walk to the Mirror Oasis with Tomo. \"Look!\" The water shines "
               "like glass. " + "You see a tiny boat floating near the edge of the pool and you smile at it. " * 8)
    title, summary = extract_summary(chapter, 3)

    assert title == "Chapter 3: The Mirror Oasis"
    assert "LESSON TOPIC" not in summary and "…" not in summary and "Look!" not in summary
    assert summary.startswith("You walk to the Mirror Oasis with Tomo.") and summary.endswith(".")
    assert len(summary.split()) <= 60


@pytest.mark.parametrize("title, fits", [
    ("The Mirror Oasis", True), ("Song of the Little Boat", True), ("Tweet ik eet", False),
    ("Which fraction is larger inable or a-lamb", False),
])
def test_when_a_title_uses_words_the_chapter_never_did_then_it_does_not_fit(title, fits):
    from service.domain.summaries import title_fits

    assert title_fits(title, "You walk to the Mirror Oasis. A little boat floats. Which one is larger?") is fits


def test_when_a_title_repeats_another_in_other_letters_then_it_is_the_same_title():
    from service.domain.summaries import same_title

    assert same_title("the mirror oasis!", ["A Boat", "The Mirror Oasis"])
    assert not same_title("The Mirror Oasis at Night", ["The Mirror Oasis"])


def test_when_the_model_gives_two_chapters_one_title_then_the_second_is_asked_again(
    client, scripted_model, database_url
):
    scripted_model.script.update(helper_replies={
        "SUMMARY": '{"title": "Mira on her way", "summary": "Mira went on her way with you and found '
                   'something new to wonder about."}'})
    page = player.read_chapter(client, player.start(client, "amber-dune-caravan", "animals-and-habitats"))
    wait_until(lambda: rows(database_url, "SELECT count(*) FROM summaries")[0][0] == 1, 30, "no first summary")
    player.read_sse(client, player.choose_htmx(client, page.action, page.choices[0]))
    wait_until(lambda: rows(database_url, "SELECT count(*) FROM summaries")[0][0] == 2, 30, "no second summary")

    titles = [t for (t,) in rows(database_url, "SELECT title FROM summaries ORDER BY chapter_number")]
    sources = [json.loads(q).get("summary") for (q,) in rows(database_url, "SELECT quality FROM chapters "
                                                                           "ORDER BY number")]
    summary_calls = [r for r in scripted_model.requests if r["kind"] == "SUMMARY"]
    assert titles[0] == "Mira on her way" and titles[1].startswith("Chapter 2")
    assert sources == ["model", "extract"] and len(summary_calls) == 1 + 3
    # Asked again, the model samples warmer: the same reply again would be no use.
    assert [r["temperature"] for r in summary_calls] == [None, None, 0.8, 0.8]
