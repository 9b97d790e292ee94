import itertools
import random

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from service.domain.choices import (
    BLOCK_START,
    ChoiceBlockFilter,
    block_start,
    split_choices,
    valid_choices,
)
from service.domain.fallback_choices import fallback_choices
from service.domain.story import StoryWorld

# Story text built from pieces that look like the start of a block without being one.
STORY_PIECES = [
    "The", " ", "  ", "choice", "choices", "Choice", "CHOICES", "option", "your", "she had a", " to make",
    "A", "B", "1", ".", ",", "<", ">", "[", "]", "/", "*", "**", ":", "#", "-", "_", ")", "\n", "\n\n",
    "Mira", " sang", "!",
]
BLOCK_BODY = "Follow Mira\nChoice B: Climb the tower\nChoice C: Ask the guide\n"
TAG_BLOCKS = [
    "<CHOICES>\nChoice A: " + BLOCK_BODY + "</CHOICES>",
    "<choices>\nChoice A: " + BLOCK_BODY,
    "< Choices >\n1. Follow Mira\n2. Climb\n3. Ask\n< /Choices >",
    "[CHOICES]\n- Follow Mira\n- Climb\n- Ask\n[/CHOICES]",
    "</CHOICES>\nChoice A: " + BLOCK_BODY,
]
LINE_BLOCKS = [
    "Choice A: " + BLOCK_BODY,
    "Choice 1: Follow Mira\nChoice 2: Climb\nChoice 3: Ask",
    "Choice A) Follow Mira\nChoice B) Climb\nChoice C) Ask",
    "**Choice A:** " + BLOCK_BODY,
    "**Choices:**\n1. Follow Mira\n2. Climb\n3. Ask",
    "Choices:\n- Follow Mira\n- Climb\n- Ask",
    "## Choices\nA) Follow Mira\nB) Climb\nC) Ask",
    "> Choice A: " + BLOCK_BODY,
    "  - Choice A - " + BLOCK_BODY,
]
BLOCKS_WITH_SEPARATORS = [(block, sep) for block in TAG_BLOCKS for sep in ("", " ", "\n", "\n\n")] + [
    (block, sep) for block in LINE_BLOCKS for sep in ("\n", "\n\n", "\r\n")
]

story_texts = st.lists(st.sampled_from(STORY_PIECES), max_size=40).map("".join)
any_texts = st.lists(st.sampled_from(STORY_PIECES + TAG_BLOCKS + LINE_BLOCKS), max_size=30).map("".join)


def _chunks(text, cuts):
    points = sorted({0, len(text), *(min(c, len(text)) for c in cuts)})
    return [text[a:b] for a, b in itertools.pairwise(points)]


def _stream(chunks):
    filt = ChoiceBlockFilter()
    out = "".join(filt.feed(chunk) for chunk in chunks) + filt.finish()
    return out, filt


def _expected(text):
    start = block_start(text)
    return text if start is None else text[:start]


@given(story_texts, st.sampled_from(BLOCKS_WITH_SEPARATORS), st.lists(st.integers(0, 400), max_size=25))
def test_when_reply_split_anywhere_then_output_is_exactly_text_before_block(story, block_sep, cuts):
    block, sep = block_sep
    assume(block_start(story + sep) is None)
    reply = story + sep + block
    out, filt = _stream(_chunks(reply, cuts))
    assert out == story + sep
    assert out == _stream([reply])[0]
    assert filt.story_text == story + sep and filt.raw_text == reply and filt.has_block


@given(any_texts, st.lists(st.integers(0, 600), max_size=25))
def test_when_any_text_split_anywhere_then_output_matches_one_chunk_and_reference(text, cuts):
    out, filt = _stream(_chunks(text, cuts))
    assert out == _stream([text])[0] == _expected(text) == filt.story_text


@given(story_texts)
def test_when_text_fed_char_by_char_then_output_matches_reference(text):
    assert _stream(list(text))[0] == _expected(text)


@given(story_texts, st.lists(st.integers(0, 400), max_size=25))
def test_when_reply_has_no_block_then_everything_is_emitted(story, cuts):
    assume(block_start(story) is None)
    out, filt = _stream(_chunks(story, cuts))
    assert out == story and not filt.has_block


@pytest.mark.parametrize(
    "chunks, expected",
    [
        (["The end.\n<CHO", "ICES>\nChoice A: x"], "The end.\n"),
        (["The end. <", "CHOICES>"], "The end. "),
        (["The end. <", "b>bold</b>"], "The end. <b>bold</b>"),
        (["The end.\n<choices>\n1. x"], "The end.\n"),
        (["The end.\n", "Choice A: Run\nChoice B: Hide"], "The end.\n"),
        (["The end.\nCho", "ice ", "1", ")", " Run"], "The end.\n"),
        (
            ["She had a choice to make.", " The choices were hard."],
            "She had a choice to make. The choices were hard.",
        ),
        (["The end.\nThe choices", " were hard."], "The end.\nThe choices were hard."),
        (["The end.\nChoices", " were hard."], "The end.\nChoices were hard."),
        (["Choice A: Run"], ""),
        (["Story\n**Choices:**\n"], "Story\n"),
        (["Trailing <"], "Trailing <"),
        (["Trailing\n**Choi"], "Trailing\n**Choi"),
    ],
)
def test_when_explicit_chunks_fed_then_output_is_story_only(chunks, expected):
    assert _stream(chunks)[0] == expected


def test_when_token_ends_with_lt_then_it_is_held_until_decided():
    filt = ChoiceBlockFilter()
    assert filt.feed("Once upon a time <") == "Once upon a time "
    assert filt.feed("3 friends met.") == "<3 friends met."


def test_when_block_started_then_later_feeds_and_finish_emit_nothing():
    filt = ChoiceBlockFilter()
    assert filt.feed("Story.\n<CHOICES>") == "Story.\n"
    assert filt.feed("\nChoice A: Go\nmore story") == ""
    assert filt.finish() == ""
    assert filt.story_text == "Story.\n"


@pytest.mark.parametrize(
    "line",
    [
        "She had a choice to make.",
        "The choices were hard.",
        "Choices matter, she thought.",
        "Choice is freedom.",
        "Options were few.",
        "A choice: run or hide, she thought",
        "<b>bold</b>",
    ],
)
def test_when_ordinary_sentence_then_no_block_start(line):
    assert BLOCK_START.search(f"Story.\n{line}\nMore.") is None
    assert BLOCK_START.search(f"Story. {line} More.") is None


LOOK_ALIKES = [
    "Mira thought hard about her [choice] for a while.",
    "Mira thought hard about her <choice> for a while.",
    "Mira thought hard about her [CHOICES] and smiled.",
    "The sign said <choices> in big letters, and [choice] below it.",
    "She wrote [choice] A on the map, then [choices]: none.",
]


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_when_a_choice_tag_look_alike_sits_inside_a_sentence_then_the_chapter_is_not_cut_there(text):
    reply = f"The sea was calm.\n\n{text} Then the boat drifted home.\n\n"
    for chunks in ([reply], list(reply), [reply[:37], reply[37:41], reply[41:]]):
        out, filt = _stream(chunks)
        assert out == reply and not filt.has_block, f"the chapter was cut to {out!r}"
    assert split_choices(reply + "<CHOICES>\nChoice A: Go\nChoice B: Stay\nChoice C: Sing\n</CHOICES>") == (
        reply.rstrip(), ["Go", "Stay", "Sing"])


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_when_a_look_alike_is_followed_by_a_real_block_then_nothing_of_the_block_streams(text):
    story = f"The sea was calm. {text}\n"
    reply = story + "<choice>\nChoice A: Go\nChoice B: Stay\nChoice C: Sing"
    for chunks in ([reply], list(reply)):
        out, filt = _stream(chunks)
        assert out == story and filt.has_block


@pytest.mark.parametrize("ending", ["<CHOICES>", "[CHOICES]  ", "<choices>\n", " [choice]"])
def test_when_a_reply_ends_right_after_a_tag_then_the_tag_is_not_shown(ending):
    out, filt = _stream(list("The end." + ending))
    assert out.rstrip() == "The end." and filt.has_block
    assert split_choices("The end." + ending) == ("The end.", [])


@pytest.mark.parametrize(
    "text",
    [
        "x <CHOICES>", "x <choices>", "x < Choices >", "x </CHOICES>", "x [CHOICES]", "x [/choices]",
        "x\nChoice A: go", "x\nChoice 1: go", "x\nChoice A) go", "x\nchoice b. go", "x\n**Choice A:** go",
        "x\n- Choice A: go", "x\nChoices:", "x\n**Choices:**", "x\n**Choices**:", "x\n## Choices\n",
        "x\n**Choices**\n", "x\nYour choices:", "Choice A: go", "x\nOption 2) go",
    ],
)
def test_when_block_variant_present_then_block_start_found(text):
    assert block_start(text) is not None


@pytest.mark.parametrize("text", ["x <CHOICES>\n", "x [choices] Choice A: go", "x\n<choices>Go", "[Choice]\n",
                                  "x </choices>\n", "x <CHOICES> **Choice 1.** go"])
def test_when_a_tag_has_the_shape_of_a_block_then_it_starts_one_in_any_prefix_that_holds_it(text):
    match = BLOCK_START.search(text)
    assert match is not None
    assert all(BLOCK_START.search(text[:end] + more) is not None
               for end in range(match.end(), len(text) + 1) for more in ("", " and more", "\nmore"))


# --- split_choices / valid_choices ------------------------------------------------------------

THREE = ["Follow Mira", "Climb the tower", "Ask the guide"]


@pytest.mark.parametrize(
    "block",
    [
        "<CHOICES>\nChoice A: Follow Mira\nChoice B: Climb the tower\nChoice C: Ask the guide\n</CHOICES>",
        "<choices>\nChoice A: Follow Mira\nChoice B: Climb the tower\nChoice C: Ask the guide",
        "**Choices:**\n1. Follow Mira\n2. **Climb the tower**\n3. \"Ask the guide\"\n",
        "Choices:\nWhat will you do?\nA) Follow Mira\nB) Climb the tower\n(C) Ask the guide",
        (
            "- **Choice A:** Follow Mira\n- **Choice B**: Climb the tower\n"
            "- Choice C - Ask the guide\n</CHOICES>\nP.S."
        ),
        "<CHOICES> Choice A: Follow Mira Choice B: Climb the tower Choice C: Ask the guide </CHOICES>",
        "[CHOICES]\n* Follow Mira\n\n* Climb the tower\n* Ask the guide\n[/CHOICES]",
        "## Choices\n1) [Follow Mira]\n2) Climb the tower\n3) Ask the guide",
        "<CHOICES>\nFollow Mira\nClimb the tower\nAsk the guide\n</CHOICES>",
    ],
)
def test_when_block_in_any_variant_then_story_and_choices_split(block):
    story, choices = split_choices("The sea was calm.  \n\n" + block)
    assert story == "The sea was calm."
    assert choices == THREE
    assert valid_choices(choices) == THREE


@pytest.mark.parametrize(
    "line, choice",
    [
        ("* Go north (carefully)", "Go north (carefully)"),
        ('* "Go" or "Stay"', '"Go" or "Stay"'),
        ("* **[Hide]**", "Hide"),
        ("* 'Run'", "Run"),
        ("* “Swim”", "Swim"),
        ("- __Dive__", "Dive"),
    ],
)
def test_when_choice_wrapped_in_markdown_or_quotes_then_only_matching_wrappers_removed(line, choice):
    _, choices = split_choices(f"Story.\nChoices:\nWhat now?\n{line}\n* Wait\n* Rest")
    assert choices == [choice, "Wait", "Rest"]


def test_when_no_block_then_all_text_is_story_and_no_choices():
    assert split_choices("The sea was calm.\nShe had a choice to make.\n") == (
        "The sea was calm.\nShe had a choice to make.",
        [],
    )


@pytest.mark.parametrize(
    "choices",
    [
        [],
        ["Follow Mira", "Climb the tower"],
        ["Follow Mira", "follow mira", "Ask the guide"],
        ["Follow Mira", "", "Ask the guide"],
        ["Follow Mira", "x", "Ask the guide"],
        ["Follow Mira", "y" * 161, "Ask the guide"],
        ["Follow Mira", "...", "Ask the guide"],
        ["Follow Mira", "Go to the…", "Ask the guide"],
        ["Follow Mira", "[insert choice]", "Ask the guide"],
        ["Follow Mira", "<choice>", "Ask the guide"],
        ["Follow Mira", "Choice B", "Ask the guide"],
        ["Follow Mira", "TBD", "Ask the guide"],
    ],
)
def test_when_choices_unusable_then_valid_choices_is_none(choices):
    assert valid_choices(choices) is None


def test_when_more_than_three_choices_then_first_three_cleaned_are_returned():
    assert valid_choices(["  Follow Mira ", *THREE[1:], "Swim away"]) == THREE


# --- fallback_choices -------------------------------------------------------------------------

def _world(settings=("The Coral Gate", "sunken market, where merchants trade pearls")):
    return StoryWorld(
        key="ocean", name="Ocean", description="An ocean world.", settings=tuple(settings),
        themes=(), moral_teachings=(), plot_twists=(), visuals=(), sounds=("whale song",), smells=(),
    )


def test_when_story_names_someone_then_fallback_uses_name_and_settings():
    story = "Mira swam ahead. The crab waved at Mira, and Tomas laughed."
    choices = fallback_choices(story, _world(), random.Random(1))
    assert any("Mira" in choice for choice in choices)
    assert any("Coral Gate" in choice or "sunken market" in choice for choice in choices)
    assert valid_choices(choices) == choices


@given(
    st.text(max_size=300),
    st.lists(st.text(max_size=80), max_size=5),
    st.integers(),
)
def test_when_anything_given_then_fallback_is_three_valid_choices_deterministically(story, settings, seed):
    choices = fallback_choices(story, _world(settings), random.Random(seed))
    assert len(choices) == 3
    assert valid_choices(choices) == choices
    assert fallback_choices(story, _world(settings), random.Random(seed)) == choices


def test_when_a_choice_copies_a_story_sentence_then_the_choices_are_not_sensible():
    from service.domain.choices import sensible_choices

    story = "Mira opened the heavy door to the tower. The wind howled."
    copied = ["Mira opened the heavy door to the tower.", "Climb the stairs", "Wait for the wind"]
    fresh = ["Climb the winding stairs", "Wait for the wind to calm", "Call out to the keeper"]
    assert sensible_choices(copied, story) is None
    assert sensible_choices(fresh, story) == fresh
