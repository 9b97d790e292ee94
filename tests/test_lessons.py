import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.lessons import is_correct, sample_questions, shuffled_answers
from service.domain.story import LessonQuestion


def _question(n):
    return LessonQuestion(
        id=f"q{n}", topic="math", subtopic="addition", difficulty="easy",
        question=f"What is {n} + 1?", correct_answer=str(n + 1),
        wrong_answers=(str(n + 2), str(n)), explanation=f"{n} and one more is {n + 1}.",
    )


QUESTIONS = [_question(n) for n in range(10)]


@given(st.integers(0, 10), st.integers())
def test_when_sampling_then_questions_are_distinct_and_from_the_pool(count, seed):
    picked = sample_questions(QUESTIONS, count, random.Random(seed))
    assert len(picked) == count
    assert len({q.id for q in picked}) == count
    assert all(q in QUESTIONS for q in picked)


@given(st.sets(st.sampled_from([q.id for q in QUESTIONS]), max_size=7), st.integers())
def test_when_excluding_ids_then_excluded_questions_never_come_back(exclude, seed):
    picked = sample_questions(QUESTIONS, 3, random.Random(seed), exclude=exclude)
    assert not {q.id for q in picked} & exclude


def test_when_pool_lists_a_question_twice_then_it_is_sampled_once():
    picked = sample_questions(QUESTIONS[:2] * 3, 2, random.Random(0))
    assert {q.id for q in picked} == {"q0", "q1"}


@pytest.mark.parametrize(
    "questions, count, exclude",
    [
        (QUESTIONS, 11, ()),
        (QUESTIONS, 3, [q.id for q in QUESTIONS[:8]]),
        (QUESTIONS[:1] * 5, 2, ()),
        ([], 1, ()),
        (QUESTIONS, -1, ()),
    ],
)
def test_when_too_few_questions_then_value_error(questions, count, exclude):
    with pytest.raises(ValueError):
        sample_questions(questions, count, random.Random(0), exclude=exclude)


def test_when_same_seed_then_same_sample():
    first = sample_questions(QUESTIONS, 3, random.Random(7))
    assert first == sample_questions(QUESTIONS, 3, random.Random(7))


@given(st.integers())
def test_when_answers_shuffled_then_they_are_the_same_three(seed):
    question = QUESTIONS[4]
    answers = shuffled_answers(question, random.Random(seed))
    assert sorted(answers) == sorted(question.answers)


def test_when_many_seeds_then_correct_answer_appears_in_every_position():
    positions = {shuffled_answers(QUESTIONS[4], random.Random(seed)).index("5") for seed in range(100)}
    assert positions == {0, 1, 2}


@pytest.mark.parametrize(
    "answer, expected",
    [("5", True), (" 5 ", True), ("6", False), ("4", False), ("", False), ("55", False)],
)
def test_when_answer_checked_then_only_the_correct_one_counts(answer, expected):
    assert is_correct(QUESTIONS[4], answer) is expected
