"""Choices that belong to the chapter: three complete actions, told by the model as the story's
next sentence (or in a block), combined over tries, and fallback buttons that are whole phrases."""
from __future__ import annotations

import random

import pytest

from service.content.loader import load_catalog
from service.domain.choices import (
    _DANGLING,
    choices_in_sentence,
    is_complete_action,
    merged_choices,
    parse_choice_reply,
    sensible_choices,
    usable_choice,
)
from service.domain.fallback_choices import _place, fallback_choices

CATALOG = load_catalog()
STORY = "You walk along the pier with Tomo. The lighthouse blinks. A gull lands on a rope."


@pytest.mark.parametrize("sentence, expected", [
    (" follow the gull to the lighthouse, ask Tomo about the rope, or look under the pier.",
     ["Follow the gull to the lighthouse", "Ask Tomo about the rope", "Look under the pier"]),
    ("go home, ask, or look", ["Go home", "Ask", "Look"]),
    # Cut where the grammar's cap on an action's words fell: the words it was cut after go.
    (" go to the market to buy some food for, ask the baker, or look at the other side of the",
     ["Go to the market to buy some food", "Ask the baker", "Look at the other side"]),
    (" to the, ask the baker, or look.", []),
    (" follow the gull, or look under the pier.", []),
    (" follow the gull and ask Tomo.", []),
])
def test_when_the_model_tells_its_choices_as_a_sentence_then_each_action_is_a_button(sentence, expected):
    assert choices_in_sentence(sentence) == expected


@pytest.mark.parametrize("reply", [
    '{"choices": ["Follow the gull to the lighthouse", "Ask Tomo about the rope", "Look under the pier"]}',
    '["Follow the gull to the lighthouse", "Ask Tomo about the rope", "Look under the pier"]',
    "<CHOICES>\nChoice A: Follow the gull to the lighthouse\nChoice B: Ask Tomo about the rope\n"
    "Choice C: Look under the pier\n</CHOICES>",
    "Choice A: Follow the gull to the lighthouse\nChoice B: Ask Tomo about the rope\nChoice C: Look under the pier",
], ids=["json-object", "json-list", "block", "labelled-lines"])
def test_when_a_repair_reply_is_json_or_a_block_then_its_three_choices_are_read(reply):
    assert parse_choice_reply(reply) == ["Follow the gull to the lighthouse", "Ask Tomo about the rope",
                                         "Look under the pier"]


@pytest.mark.parametrize("choice", [
    "Go to the next chapter", "Follow the instructions in the story", "Tell me what to do now",
    "Go to the next story you want to read",
    "Help your friend with his sailboat, but you have no money for", "Invite your friend to the planet where",
    "Go", "Ask Tomo",
    "Tell them about the shellsandthebeachtoday", "Walk along the pier with Tomo. The lighthouse blinks",
    "Climb the very tall mast to the top of the old ship and look far out over the sea",
    "Try to find a special lamp that you can't", "Go home and tell your family about what you’ve",
    "Ask which is a special kind of flower that's", "Ask el el el el el el el el",
    # The embedded model's grammar cut this one after a contraction; it was a button once.
    "Try to be happy to be the one who's", "Tell the keeper that we won’t",
], ids=["about-the-book", "about-the-story", "speaks-as-I", "the-next-story", "cut-off",
        "cut-off-at-where", "one-word", "two-words", "run-together", "copied", "over-twelve-words",
        "cut-off-after-can't", "cut-off-after-you've", "cut-off-after-that's", "one-word-again-and-again",
        "cut-off-after-who's", "cut-off-after-won't"])
def test_when_a_choice_is_not_a_complete_action_about_the_story_then_it_is_not_usable(choice):
    assert not usable_choice(choice, STORY, story_words_only=True)


def test_when_a_long_word_is_not_the_storys_then_only_a_small_models_choice_loses_it():
    assert usable_choice("Search the observatory for the chart", STORY)
    assert not usable_choice("Search the observatory for the chart", STORY, story_words_only=True)


@pytest.mark.parametrize("choice", ["Follow the gull to the lighthouse", "Ask Tomo about the rope",
                                    "Look under the pier", "Whisper to the sleepy gull",
                                    "Read a story to your little brother"])
def test_when_a_choice_is_a_complete_action_then_it_is_usable(choice):
    assert usable_choice(choice, STORY)


def test_when_two_choices_begin_alike_then_the_three_are_not_sensible():
    assert sensible_choices(["Ask Tomo about the rope", "Ask Tomo about the gull", "Look under the pier"],
                            STORY) is None


def test_when_two_choices_end_alike_then_the_three_are_not_sensible_and_tries_are_combined_without_it():
    """Regression: "Ask that is a place where people go" and "Touch that is a place where people
    go" were offered side by side."""
    twice = ["Go to the Glowmoss Meadow", "Ask that is a place where people go",
             "Look at that is a place where people go"]
    assert sensible_choices(twice, STORY) is None
    assert merged_choices([twice, ["Go home", "Ask Tomo", "Look under the pier"]], STORY) == [
        "Go to the Glowmoss Meadow", "Ask that is a place where people go", "Look under the pier"]


def test_when_tries_each_have_a_bad_line_then_their_good_lines_are_combined_place_by_place():
    tries = [["Follow the gull to the lighthouse", "Tell me about the story", "Look under the pier, but"],
             ["Go to the next chapter", "Ask Tomo about the rope", "Read the instructions"],
             ["Climb the mast", "Ask Tomo about the rope", "Look under the pier"]]
    assert merged_choices(tries, STORY, story_words_only=True) == [
        "Follow the gull to the lighthouse", "Ask Tomo about the rope", "Look under the pier"]
    assert merged_choices(tries[:2], STORY) is None


@pytest.mark.parametrize("world", sorted(CATALOG.worlds))
def test_when_a_place_becomes_a_fallback_phrase_then_it_is_whole(world):
    for setting in CATALOG.worlds[world].settings:
        place = _place(setting)
        assert place, f"no phrase for {setting!r}"
        assert len(place.split()) <= 6 and place.split()[-1].casefold() not in _DANGLING, place
        assert place.split()[-1].strip(",") in setting


@pytest.mark.parametrize("world", sorted(CATALOG.worlds))
@pytest.mark.parametrize("seed", range(5))
def test_when_fallback_buttons_are_made_then_each_is_a_complete_action(world, seed):
    story = "The sea was calm. You asked about the Dolphin and Mira smiled. You met Tomo and Mira again."
    choices = fallback_choices(story, CATALOG.worlds[world], random.Random(seed), avoid=["Dolphin", "Shark"])
    assert len(set(choices)) == 3
    assert all(is_complete_action(choice) for choice in choices), choices
    assert not any("Dolphin" in choice for choice in choices), "a quiz answer became a character"


def test_when_a_story_names_words_of_an_answer_or_the_topic_then_no_fallback_button_follows_them():
    """Regression: "Follow Solar System toward the Glowmoss Meadow", "Ask Earth what should
    happen next" after a question answered "The tilt of Earth's axis"."""
    story = "The map says The Solar System. You look at Earth, and Earth looks back. Mira waves at Earth."
    choices = fallback_choices(story, CATALOG.worlds["capwood-hollow"], random.Random(1),
                               avoid=["The tilt of Earth's axis", "The Solar System"])
    assert not any(word in choice for choice in choices for word in ("Earth", "Solar", "System")), choices
