"""The visible text of a stream: headings and echoed prompt lines never reach the page,
and ordinary first words are never held back."""
from __future__ import annotations

import pytest

from service.domain.stream_text import VisibleText


def _show(tokens: list[str]) -> tuple[list[str], str]:
    visible = VisibleText()
    pieces = [visible.feed(t) for t in tokens] + [visible.finish()]
    return pieces, "".join(pieces)


@pytest.mark.parametrize("tokens", [
    ["Chap", "ter 3: The", " Cave\n", "\nYou", " walk in."],
    ["# The", " Cave\n\nYou walk in."],
    ["THE HERO'S SPECIAL", " PICK (keep it part of the story): a lantern\n", "You walk in."],
    ["STORY SO FAR:", " the cave\nCHAPTER TYPE: STORY\n", "You walk in."],
])
def test_when_a_reply_starts_with_a_heading_or_an_echoed_prompt_line_then_it_is_dropped(tokens):
    assert _show(tokens)[1] == "You walk in."


@pytest.mark.parametrize("first", ["The", "Once", "OH NO,", "Mira"])
def test_when_a_reply_starts_with_story_then_the_first_token_is_shown_at_once(first):
    pieces, text = _show([first, " looked up at the stars."])
    assert pieces[0] == first
    assert text == f"{first} looked up at the stars."


@pytest.mark.parametrize("first", ["I", "A"])
def test_when_a_reply_starts_with_a_lone_capital_then_it_waits_one_token_at_most(first):
    # A lone capital could begin an echoed prompt label ("A..." / "I..."), so it waits for the next token.
    pieces, text = _show([first, " looked up at the stars."])
    assert pieces[:2] == ["", f"{first} looked up at the stars."]
