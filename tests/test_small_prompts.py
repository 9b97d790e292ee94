"""The embedded model's short chapter prompt: labelled lines, directives the screen knows,
story material never among them, and a beginning shared by every chapter so the model keeps it
read."""
from __future__ import annotations

import random
import re

import pytest

from service.content.loader import load_catalog
from service.domain.agency import offer_agency
from service.domain.instructions import PROMPT_LABELS
from service.domain.story import ChapterType
from service.llm.prompts import ChapterBrief, chapter_directives, chapter_messages
from service.llm.small_prompts import opening, system_prompt

CATALOG = load_catalog()
WORLD = CATALOG.worlds["clockwork-harbor"]
QUESTION = CATALOG.topics["plants"].questions[0]
PICKS = tuple(option.label for option in offer_agency(random.Random(4)))


def _brief(number: int = 3, kind: ChapterType = ChapterType.STORY, **fields) -> ChapterBrief:
    values = dict(world=WORLD, topic_name="Plants", number=number, type=kind, compact=True,
                  agency=PICKS[0], characters=(("Tomo", "a small boy with a red cap"),))
    return ChapterBrief(**(values | fields))


BRIEFS = {
    "first": _brief(1, agency=None, characters=(), agency_options=PICKS),
    "story": _brief(previous_choice="Follow the gull to the lighthouse"),
    "lesson": _brief(kind=ChapterType.LESSON, question=QUESTION, previous_choice="Ask Tomo about the rope"),
    "reflect": _brief(kind=ChapterType.REFLECT, previous_question=QUESTION, previous_choice=QUESTION.answers[1],
                      previous_correct=False),
    "conclusion": _brief(10, kind=ChapterType.CONCLUSION, previous_choice="Look under the pier"),
}


@pytest.mark.parametrize("brief", BRIEFS.values(), ids=BRIEFS)
def test_when_a_small_model_is_asked_for_a_chapter_then_every_line_begins_with_a_label(brief):
    system, user, reply = chapter_messages(brief)
    assert system["content"] == system_prompt() and reply["role"] == "assistant"
    for line in user["content"].splitlines():
        assert line.startswith(PROMPT_LABELS), line


@pytest.mark.parametrize("brief", BRIEFS.values(), ids=BRIEFS)
def test_when_a_small_model_is_asked_for_a_chapter_then_its_directives_are_in_its_prompt_and_its_material_is_not(
    brief
):
    prompt = " ".join(m["content"] for m in chapter_messages(brief))
    directives = " ".join(chapter_directives(brief))
    for directive in chapter_directives(brief):
        if directive != "Go on with the story from where it stopped, in the same way.":  # asked only to go on
            assert directive in prompt
    material = [brief.question.question if brief.question else "", brief.previous_choice or "",
                *(pick.split(":")[0] for pick in brief.agency_options)]
    assert not any(text and text in directives for text in material)


def test_when_chapters_follow_each_other_then_their_prompts_share_their_beginning():
    third, fourth = (chapter_messages(_brief(n, previous_choice=choice)) for n, choice in
                     ((3, "Follow the gull"), (4, "Ask Tomo about the rope")))
    other = chapter_messages(ChapterBrief(world=CATALOG.worlds["capwood-hollow"], topic_name="Plants", number=1,
                                          type=ChapterType.STORY, compact=True, agency_options=PICKS))
    assert third[0] == fourth[0] == other[0], "the system prompt is not the same for every chapter"
    # Within an adventure only the reply's beginning, the reader's choice, differs.
    assert third[1] == fourth[1] and "CHARACTERS: Tomo." in third[1]["content"]
    assert third[2] != fourth[2]


@pytest.mark.parametrize("brief", BRIEFS.values(), ids=BRIEFS)
def test_when_a_small_model_is_asked_for_a_chapter_then_no_line_gives_a_number_of_words_or_a_description(brief):
    """Regression: the model wrote "until you have finished all 150 words" into its story, and
    its chapters as "Name: description" lines like its prompt's characters."""
    user = chapter_messages(brief)[1]["content"]
    assert not re.search(r"\d+ words", user) and "a small boy" not in user


@pytest.mark.parametrize("brief, expected", [
    (BRIEFS["first"], "You arrive at the Harbor Clock Tower, full of enormous ticking gears."),
    (BRIEFS["story"], "You decide to follow the gull to the lighthouse."),
    (BRIEFS["reflect"], "You think about the question for a moment, and then you go on."),
    (_brief(2, previous_choice=PICKS[0]), f"You choose your gift: {PICKS[0].split(':')[0]}."),
], ids=["first", "after-a-choice", "after-an-answer", "after-the-special-pick"])
def test_when_a_small_model_writes_a_chapter_then_it_goes_on_from_the_readers_choice(brief, expected):
    assert opening(brief) == expected == chapter_messages(brief)[-1]["content"]


def test_when_the_first_chapter_is_asked_then_it_leads_up_to_the_special_picks():
    user = chapter_messages(BRIEFS["first"])[1]["content"]
    assert all(pick.split(":")[0] in user.splitlines()[-1] for pick in PICKS)
