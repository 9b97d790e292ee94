"""Lesson fidelity: the bank question is asked word for word, the explanation given."""
from __future__ import annotations

import pytest

from service.domain.fidelity import Legend, asks_verbatim, explains, lesson_additions, lesson_legend
from service.domain.story import ChapterType, LessonQuestion

QUESTION = LessonQuestion(
    id="t:1", topic="Plants", subtopic="roots", difficulty="easy",
    question="Which part of a plant takes in water from the soil?", correct_answer="The roots",
    wrong_answers=("The flowers", "The leaves"),
    explanation="Roots grow down into the soil and soak up water and minerals that travel up the stem.",
)


@pytest.mark.parametrize("text", [
    "Mira knelt. Which part of a plant takes in water from the soil?",
    "Mira asked:   which part of a PLANT takes in water\nfrom the soil?",
])
def test_when_a_lesson_asks_the_question_then_nothing_is_added_and_its_legend_is_for_screen_readers_only(text):
    assert asks_verbatim(text, QUESTION.question)
    assert lesson_additions(ChapterType.LESSON, QUESTION, text) == []
    assert lesson_legend(ChapterType.LESSON, QUESTION, text) == Legend(QUESTION.question, shown=False)


@pytest.mark.parametrize("text", [
    "Mira knelt by the garden and wondered about plants.",
    "Mira asked which bit of a plant drinks water from the ground?",
])
def test_when_a_lesson_omits_or_paraphrases_the_question_then_only_its_legend_shows_it(text):
    assert lesson_additions(ChapterType.LESSON, QUESTION, text) == []
    assert lesson_legend(ChapterType.LESSON, QUESTION, text) == Legend(QUESTION.question, shown=True)


def test_when_a_reflection_explains_the_answer_then_nothing_is_added():
    text = "You remembered how the roots grow down into the soil and soak up water and minerals for the stem."
    assert explains(text, QUESTION.explanation)
    assert lesson_additions(ChapterType.REFLECT, QUESTION, text) == []


def test_when_a_reflection_skips_the_explanation_then_a_marked_reflection_is_added():
    added = lesson_additions(ChapterType.REFLECT, QUESTION, "You walked on through the quiet forest.")
    assert len(added) == 1
    assert added[0].startswith("Thinking back:") and QUESTION.explanation in added[0]


@pytest.mark.parametrize("kind", [ChapterType.STORY, ChapterType.CONCLUSION])
def test_when_a_chapter_has_no_lesson_then_nothing_is_added(kind):
    assert lesson_additions(kind, QUESTION, "Anything.") == []
    assert lesson_legend(kind, QUESTION, "Anything.") is None
