"""Lessons are judged by the bank: the question is asked word for word, and the feedback on
an answer (the verdict, the right answer, why) is the service's own paragraph."""
from __future__ import annotations

import pytest

from service.domain.fidelity import Legend, asks_verbatim, is_lesson_check, lesson_check, lesson_legend
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
    assert lesson_legend(ChapterType.LESSON, QUESTION, text) == Legend(QUESTION.question, shown=False)


@pytest.mark.parametrize("text", [
    "Mira knelt by the garden and wondered about plants.",
    "Mira asked which bit of a plant drinks water from the ground?",
])
def test_when_a_lesson_omits_or_paraphrases_the_question_then_only_its_legend_shows_it(text):
    assert lesson_legend(ChapterType.LESSON, QUESTION, text) == Legend(QUESTION.question, shown=True)


@pytest.mark.parametrize("answer, correct", [("The roots", True), ("The leaves", False)])
def test_when_the_reader_answers_then_the_feedback_gives_the_bank_verdict_right_answer_and_explanation(answer, correct):
    feedback = lesson_check(QUESTION, answer, correct)
    assert is_lesson_check(feedback)
    assert QUESTION.question in feedback and f"“{answer}”" in feedback and QUESTION.explanation in feedback
    assert ("that is right" in feedback) is correct
    assert ("The right answer is “The roots”" in feedback) is not correct


@pytest.mark.parametrize("kind", [ChapterType.STORY, ChapterType.REFLECT, ChapterType.CONCLUSION])
def test_when_a_chapter_has_no_lesson_then_its_choices_have_no_question_legend(kind):
    assert lesson_legend(kind, QUESTION, "Anything.") is None
