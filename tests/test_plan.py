import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.content.loader import load_catalog
from service.domain.plan import PHASE_GUIDANCE, TWIST_CHAPTER, make_plan, phase_for, plot_twist, validate_plan
from service.domain.story import CHAPTER_COUNT, ChapterType, StoryPhase

S, L, R, C = ChapterType.STORY, ChapterType.LESSON, ChapterType.REFLECT, ChapterType.CONCLUSION
VALID = (S, L, R, S, S, L, S, L, S, C)


def _block_start(plan):
    return plan.index(R)  # REFLECT's 0-based index is the 1-based chapter of the block's LESSON


@given(st.integers())
def test_when_plan_made_from_any_seed_then_it_is_valid(seed):
    plan = make_plan(random.Random(seed))
    assert validate_plan(plan) == []
    assert len(plan) == CHAPTER_COUNT
    assert plan.count(L) == 3 and plan.count(R) == 1 and plan.count(C) == 1


@given(st.integers())
def test_when_plan_made_twice_from_same_seed_then_plans_are_equal(seed):
    assert make_plan(random.Random(seed)) == make_plan(random.Random(seed))


def test_when_many_seeds_used_then_every_block_start_and_every_layout_appears():
    plans = [make_plan(random.Random(seed)) for seed in range(400)]
    assert {_block_start(plan) for plan in plans} == {2, 3, 4, 5}
    assert len(set(plans)) == 8  # all layouts the rules allow


def test_when_valid_plan_given_then_no_violations():
    assert validate_plan(VALID) == []


@pytest.mark.parametrize(
    "plan, fragment",
    [
        (VALID[:9], "10 chapters"),
        (VALID + (S,), "10 chapters"),
        ((L, S, R, S, S, L, S, L, S, C), "chapter 1 must be STORY"),
        ((S, L, R, S, S, L, S, S, L, C), "chapter 9 must be STORY"),
        ((S, L, R, S, S, L, S, L, S, S), "chapter 10 must be CONCLUSION"),
        ((S, L, R, S, C, L, S, L, S, C), "only chapter 10"),
        ((S, L, R, S, S, L, S, S, S, C), "expected 3 LESSON"),
        ((S, L, R, S, L, S, L, S, L, C), "expected 3 LESSON"),
        ((S, L, R, S, L, L, S, S, S, C), "in a row"),
        ((S, L, S, S, L, S, S, L, S, C), "exactly 1 REFLECT"),
        ((S, L, R, S, R, L, S, L, S, C), "exactly 1 REFLECT"),
        ((S, S, R, S, L, S, L, S, L, C), "directly follow a LESSON"),
        ((S, L, R, L, S, L, S, S, S, C), "directly followed by a STORY"),
        ((S, S, S, S, L, S, L, R, S, C), "within chapters 2-7"),
        ((S, S, L, S, S, S, L, R, S, C), "within chapters 2-7"),
    ],
)
def test_when_plan_breaks_a_rule_then_violation_reported(plan, fragment):
    problems = validate_plan(plan)
    assert any(fragment in problem for problem in problems), problems


def test_when_plan_has_unknown_type_then_violation_reported():
    assert validate_plan(VALID[:9] + ("EPILOGUE",)) != []


@pytest.mark.parametrize(
    "chapter, phase",
    [
        (1, StoryPhase.EXPOSITION),
        (2, StoryPhase.RISING),
        (3, StoryPhase.RISING),
        (4, StoryPhase.TRIALS),
        (7, StoryPhase.TRIALS),
        (8, StoryPhase.CLIMAX),
        (9, StoryPhase.CLIMAX),
        (10, StoryPhase.RETURN),
    ],
)
def test_when_chapter_number_given_then_phase_matches(chapter, phase):
    assert phase_for(chapter) == phase


@pytest.mark.parametrize("chapter", [0, -1, 11, 100])
def test_when_chapter_number_out_of_range_then_value_error(chapter):
    with pytest.raises(ValueError):
        phase_for(chapter)


def test_when_guidance_looked_up_then_every_phase_has_one_sentence():
    assert set(PHASE_GUIDANCE) == set(StoryPhase)
    for sentence in PHASE_GUIDANCE.values():
        assert sentence.endswith(".") and sentence.count(". ") == 0


def test_when_a_chapter_is_not_the_twist_chapter_then_it_has_no_plot_twist():
    world = load_catalog().worlds["amber-dune-caravan"]
    assert [n for n in range(1, CHAPTER_COUNT + 1) if plot_twist(world, 11, n)] == [TWIST_CHAPTER]


def test_when_the_twist_chapter_comes_then_its_twist_is_the_worlds_and_the_seed_decides_which():
    world = load_catalog().worlds["amber-dune-caravan"]
    twists = {plot_twist(world, seed, TWIST_CHAPTER) for seed in range(200)}
    assert twists == set(world.plot_twists), "some of the world's twists are never told"
    assert plot_twist(world, 5, TWIST_CHAPTER) == plot_twist(world, 5, TWIST_CHAPTER)
