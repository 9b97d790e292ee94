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
