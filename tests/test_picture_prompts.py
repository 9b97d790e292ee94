"""What a picture is drawn from: the helper's scene read leniently, one fixed style, the looks
of the characters the scene names, the world's sights; and what a slot shows."""
from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.chapters.screening import ChildSafety
from service.content.loader import load_catalog
from service.content.screen_terms import load_lexicon
from service.domain.agency import AGENCY_OPTIONS, offer_agency
from service.domain.pictures import (
    ILLUSTRATION_STYLE,
    MAX_SCENE_WORDS,
    SlotState,
    named_in,
    option_alt,
    option_prompt,
    parse_scene,
    recurring_parts,
    scene_prompt,
    slot_state,
)

CATALOG = load_catalog()
SAFETY = ChildSafety(load_lexicon())
WORLD = CATALOG.worlds["capwood-hollow"]
LOOKS = [("Mira", "A curious girl in a green cloak who carries a brass lantern."),
         ("Captain Rolo", "A round old frog with a striped scarf.")]


@pytest.mark.parametrize("reply, scene", [
    ("Scene: Mira lifts her lantern on the rope bridge.", "Mira lifts her lantern on the rope bridge."),
    ("**Scene:** \"Mira lifts her lantern on the rope bridge.\"\n", "Mira lifts her lantern on the rope bridge."),
    ("Sure! Here it is.\nscene - Mira lifts her lantern on the rope bridge.", None),
    ("Mira lifts her lantern on the rope bridge.\nExtra line", "Mira lifts her lantern on the rope bridge."),
    ("Scene: A bridge.", None),
    ("", None),
])
def test_a_scene_is_read_from_the_helpers_reply_or_refused_when_too_short(reply, scene):
    assert parse_scene(reply) == scene


@given(st.text(max_size=600))
def test_whatever_the_helper_replies_a_scene_is_none_or_five_to_forty_five_words(reply):
    scene = parse_scene(reply)
    assert scene is None or 5 <= len(scene.split()) <= MAX_SCENE_WORDS


def test_the_prompt_has_the_fixed_style_the_scene_the_named_characters_looks_and_the_worlds_sights():
    prompt = scene_prompt("Mira waves to Rolo from a lily pad", LOOKS, WORLD)
    assert prompt.startswith(ILLUSTRATION_STYLE)
    assert "Mira waves to Rolo from a lily pad." in prompt
    assert "Mira is always drawn as a curious girl in a green cloak who carries a brass lantern." in prompt
    assert "Captain Rolo is always drawn as a round old frog with a striped scarf." in prompt
    assert WORLD.visuals[0] in prompt and WORLD.name in prompt


def test_a_character_the_scene_does_not_name_is_left_out_of_the_prompt():
    assert named_in("Mira crosses the bridge alone", LOOKS) == [LOOKS[0]]
    assert "frog" not in scene_prompt("Mira crosses the bridge alone", LOOKS, WORLD)


def test_the_same_character_is_described_in_the_same_words_in_every_picture():
    first = scene_prompt("Mira finds a key under a mushroom", LOOKS, WORLD)
    second = scene_prompt("Later Mira opens the round door", LOOKS, CATALOG.worlds["brinelight-city"])
    look = "Mira is always drawn as a curious girl in a green cloak who carries a brass lantern."
    assert look in first and look in second


@pytest.mark.parametrize("world", sorted(CATALOG.worlds))
def test_every_choice_picture_prompt_and_alt_pass_the_child_safety_screen_whole(world):
    for options in AGENCY_OPTIONS.values():
        for option in options:
            for text in (option_prompt(option, CATALOG.worlds[world]), option_alt(option, CATALOG.worlds[world])):
                kept, hits = SAFETY.clean(text)
                assert not hits and " ".join(kept.split()) == text, f"the screen changed {text!r}"


def test_a_scene_prompt_passes_the_child_safety_screen_whole():
    prompt = scene_prompt("Mira waves to Rolo from a lily pad on the pond", LOOKS, WORLD)
    kept, hits = SAFETY.clean(prompt)
    assert not hits and " ".join(kept.split()) == prompt


def test_the_choice_pictures_follow_the_offer_order_of_the_first_chapter():
    options = offer_agency(random.Random(11))
    alts = [option_alt(option, WORLD) for option in options]
    assert len(set(alts)) == 3 and all(alt.endswith(f"in {WORLD.name}") for alt in alts)


@pytest.mark.parametrize("has_picture, chapter, job, state", [
    (True, "complete", "done", SlotState.READY),
    (False, "writing", None, SlotState.PENDING),
    (False, "complete", "pending", SlotState.PENDING),
    (False, "complete", "running", SlotState.PENDING),
    (False, "complete", "failed", SlotState.NONE),
    (False, "complete", "done", SlotState.NONE),  # the screen left too little to draw
    (False, "complete", None, SlotState.NONE),  # finished before pictures were switched on
    (False, "failed", None, SlotState.NONE),
    (False, "interrupted", None, SlotState.NONE),
])
def test_a_slot_shows_the_picture_waits_for_it_or_has_none(has_picture, chapter, job, state):
    assert slot_state(has_picture, chapter, job) is state


def test_a_scene_prompt_is_its_scene_and_its_recurring_parts_and_nothing_else():
    # The job screens the recurring parts once each and the scene as it is parsed: together
    # they must be the whole prompt, or words would reach the image model unscreened.
    scene = "Mira waves to Rolo from a lily pad on the pond."
    prompt = scene_prompt(scene, LOOKS, WORLD)
    parts = recurring_parts(scene, LOOKS, WORLD)
    rest = prompt.replace(scene, " ", 1)
    for part in parts:
        assert part in rest, f"a recurring part is not in the prompt: {part!r}"
        rest = rest.replace(part, " ", 1)
    assert not rest.strip(), f"words of the prompt in no part: {rest!r}"
