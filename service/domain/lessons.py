"""Lesson questions during a story: picking fresh questions, ordering answers and marking them.

Randomness always comes from the caller's rng so a seeded story is reproducible.
"""
from __future__ import annotations

import random
from collections.abc import Collection, Sequence

from service.domain.story import LessonQuestion


def sample_questions(
    questions: Sequence[LessonQuestion],
    count: int,
    rng: random.Random,
    exclude: Collection[str] = (),
) -> list[LessonQuestion]:
    """`count` distinct questions whose ids are not in `exclude`, in random order."""
    if count < 0:
        raise ValueError(f"count must not be negative, got {count}")
    excluded = set(exclude)
    # Keyed by id so a question listed twice cannot be asked twice.
    candidates = list({q.id: q for q in questions if q.id not in excluded}.values())
    if len(candidates) < count:
        raise ValueError(f"need {count} questions but only {len(candidates)} are available")
    return rng.sample(candidates, count)


def shuffled_answers(question: LessonQuestion, rng: random.Random) -> list[str]:
    answers = list(question.answers)
    rng.shuffle(answers)
    return answers


def _normalise(answer: str) -> str:
    return " ".join(answer.split())


def is_correct(question: LessonQuestion, answer: str) -> bool:
    """Exact match up to surrounding and repeated whitespace: answers come back from our own form."""
    return _normalise(answer) == _normalise(question.correct_answer)
